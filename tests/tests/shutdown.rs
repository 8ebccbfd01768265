//! Smart and fast shutdown of the SQL servers, as PostgreSQL's postmaster: SIGTERM refuses new
//! connections and waits for the connected clients to leave; SIGINT (also after a SIGTERM) ends
//! the sessions at once. A coordinator's idle pooled connections do not hold a datanode's smart
//! shutdown up.

use rxc_tests::sql::{connect, rows, table};
use rxc_tests::{Cluster, Datanode, Process, SingleNode};
use std::time::{Duration, Instant};

/// Waits until the server refuses new connections (its listener is closed).
async fn wait_refusing(server: &Datanode) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if tokio_postgres::connect(&server.conninfo(), tokio_postgres::NoTls)
            .await
            .is_err()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits up to `timeout` for the process to exit; whether it did.
async fn exits_within(process: &mut Process, timeout: Duration) -> bool {
    tokio::task::block_in_place(|| process.wait_exit(timeout)).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_shutdown_waits_for_the_clients_and_fast_ends_them() {
    let mut node = SingleNode::start("shutdown-smart");
    let client = connect(&node.datanode).await;
    client
        .batch_execute("CREATE TABLE t (k int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();

    node.datanode.process.signal("TERM");
    wait_refusing(&node.datanode).await;
    // The connected client is served on, and the server waits for it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rows(&client, "SELECT k FROM t").await, table(&[&["1"]]));
    client
        .batch_execute("INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    assert!(node.datanode.process.is_running(), "smart shutdown waits");
    drop(client);
    assert!(
        exits_within(&mut node.datanode.process, Duration::from_secs(15)).await,
        "the server exits once its last client has left"
    );
    assert!(node.datanode.process.log().contains("smart shutdown"));

    // Restarted, what the client committed during the smart shutdown is there; then a fast
    // shutdown after a smart one ends a connected session.
    let dn = &mut node.datanode;
    let (dir, addr) = (dn.dir.clone(), dn.addr.clone());
    *dn = Datanode::start("dn1", &dir, &addr, &node.gtm.addr);
    let client = connect(dn).await;
    assert_eq!(
        rows(&client, "SELECT k FROM t ORDER BY k").await,
        table(&[&["1"], &["2"]])
    );
    client
        .batch_execute("BEGIN; INSERT INTO t VALUES (3)")
        .await
        .unwrap();
    dn.process.signal("TERM");
    wait_refusing(dn).await;
    dn.process.signal("INT");
    assert!(
        exits_within(&mut dn.process, Duration::from_secs(15)).await,
        "SIGINT ends the sessions"
    );
    assert!(client.batch_execute("SELECT 1").await.is_err());

    // A fast shutdown from the start; the open transaction was aborted.
    *dn = Datanode::start("dn1", &dir, &addr, &node.gtm.addr);
    let client = connect(dn).await;
    assert_eq!(
        rows(&client, "SELECT k FROM t ORDER BY k").await,
        table(&[&["1"], &["2"]])
    );
    dn.process.signal("INT");
    assert!(exits_within(&mut dn.process, Duration::from_secs(15)).await);
    assert!(client.batch_execute("SELECT 1").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinators_idle_pool_does_not_hold_up_a_smart_shutdown() {
    let mut cluster = Cluster::start("shutdown-pool", 1);
    let c = connect(cluster.coord()).await;
    cluster.register(&c).await;
    c.batch_execute("CREATE TABLE p (k int PRIMARY KEY); INSERT INTO p VALUES (1), (2)")
        .await
        .unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM p").await, table(&[&["2"]]));

    // The coordinator's session is idle, so its pooled datanode connections are too.
    cluster.dns[0].process.signal("TERM");
    assert!(
        exits_within(&mut cluster.dns[0].process, Duration::from_secs(15)).await,
        "the datanode's only sessions are the coordinator's idle pool"
    );

    // The coordinator itself waits for its client, then stops.
    cluster.coords[0].process.signal("TERM");
    wait_refusing(cluster.coord()).await;
    assert!(
        cluster.coords[0].process.is_running(),
        "smart shutdown waits"
    );
    drop(c);
    assert!(exits_within(&mut cluster.coords[0].process, Duration::from_secs(15)).await);
}
