//! The coordinator interface of the datanode: a test plays the coordinator — GXIDs and
//! snapshots from the GTM, `SET TRANSACTION CONTEXT` in the same round trip as the statement,
//! two-phase commit over two datanodes — and direct clients check the visibility rule of the
//! design brief: a transaction committed on every datanode stays invisible until its commit is
//! reported to the GTM, and then is visible everywhere at once.

use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::txn::Isolation;
use rxc_tests::sql::{connect, connect_to, rows, sqlstate, table};
use rxc_tests::{free_addr, Datanode, Gtm, TempDir};
use tokio_postgres::{Client, SimpleQueryMessage};

/// A coordinator's connection to a datanode.
async fn coordinator_connection(dn: &Datanode) -> Client {
    connect_to(&format!(
        "{} options='-c rxc.remotetype=coordinator'",
        dn.conninfo()
    ))
    .await
}

/// Runs a simple query (maybe several statements) and returns each statement's row count
/// (what tokio-postgres reports of a CommandComplete).
async fn counts(client: &Client, sql: &str) -> Vec<u64> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(n),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_context_and_atomic_two_phase_commit() {
    let dir = TempDir::new("dn-context");
    let gtm = Gtm::start("gtm", &dir.join("gtm"), &free_addr(), None);
    let dn1 = Datanode::start("dn1", &dir.join("dn1"), &free_addr(), &gtm.addr);
    let dn2 = Datanode::start("dn2", &dir.join("dn2"), &free_addr(), &gtm.addr);
    let direct = [connect(&dn1).await, connect(&dn2).await];
    for c in &direct {
        c.batch_execute("CREATE TABLE t (k int PRIMARY KEY, v text)")
            .await
            .unwrap();
    }
    let coord = [
        coordinator_connection(&dn1).await,
        coordinator_connection(&dn2).await,
    ];
    let gtm_client = GtmClient::connect(vec![gtm.addr.clone()], ClientOptions::new("coord-test"))
        .await
        .unwrap();
    let session = gtm_client.new_session();

    // A multi-node write: GXID and snapshot in one GTM round trip, the context travelling with
    // each datanode's statements in one simple Query.
    let (gxid, _, snapshot) = gtm_client
        .begin_with_snapshot(session, Isolation::ReadCommitted)
        .await
        .unwrap();
    for (i, c) in coord.iter().enumerate() {
        let sql = format!(
            "BEGIN; SET TRANSACTION CONTEXT (GXID {}, SNAPSHOT '{}', GLOBAL_XMIN {}); \
             INSERT INTO t VALUES ({i}, 'dn{}')",
            gxid.0,
            snapshot.to_text(),
            snapshot.global_xmin.0,
            i + 1
        );
        assert_eq!(counts(c, &sql).await, vec![0, 0, 1]);
    }
    gtm_client
        .prepare(gxid, "tx1", vec!["dn1".into(), "dn2".into()], "coord-test")
        .await
        .unwrap();
    for c in &coord {
        assert_eq!(counts(c, "PREPARE TRANSACTION 'tx1'").await, vec![0]);
    }
    gtm_client.decide("tx1", true).await.unwrap();
    for c in &coord {
        assert_eq!(counts(c, "COMMIT PREPARED 'tx1'").await, vec![0]);
    }
    // Committed on both datanodes, but not yet reported: no snapshot sees it anywhere.
    for c in &direct {
        assert_eq!(rows(c, "SELECT count(*) FROM t").await, table(&[&["0"]]));
    }
    gtm_client.commit(gxid).await.unwrap();
    let _ = gtm_client.forget("tx1").await;
    // Reported: every new snapshot sees it on both.
    for (i, c) in direct.iter().enumerate() {
        assert_eq!(
            rows(c, "SELECT k, v FROM t").await,
            table(&[&[&i.to_string(), &format!("dn{}", i + 1)]])
        );
    }

    // A read in the extended protocol, its context pipelined as a Query message before the
    // Parse/Bind/Execute: one round trip. The snapshot is older than the commit above, so the
    // read does not see the row.
    let c = &coord[0];
    let old = format!(
        "SET TRANSACTION CONTEXT (SNAPSHOT '{}')",
        snapshot.to_text()
    );
    let (set, read) = tokio::join!(
        c.simple_query(&old),
        c.query("SELECT v FROM t WHERE k = $1", &[&0i32])
    );
    set.unwrap();
    assert!(read.unwrap().is_empty());
    let fresh = gtm_client.snapshot(session).await.unwrap();
    let now = format!("SET TRANSACTION CONTEXT (SNAPSHOT '{}')", fresh.to_text());
    let (set, read) = tokio::join!(
        c.simple_query(&now),
        c.query("SELECT v FROM t WHERE k = $1", &[&0i32])
    );
    set.unwrap();
    let read = read.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].get::<_, String>(0), "dn1");

    // A one-phase commit on one node: local at COMMIT, visible at the GTM report.
    let (gxid, _, snapshot) = gtm_client
        .begin_with_snapshot(session, Isolation::ReadCommitted)
        .await
        .unwrap();
    let sql = format!(
        "BEGIN; SET TRANSACTION CONTEXT (GXID {}, SNAPSHOT '{}'); \
         UPDATE t SET v = 'changed' WHERE k = 0; COMMIT",
        gxid.0,
        snapshot.to_text()
    );
    assert_eq!(counts(c, &sql).await, vec![0, 0, 1, 0]);
    assert_eq!(
        rows(&direct[0], "SELECT v FROM t").await,
        table(&[&["dn1"]])
    );
    gtm_client.commit(gxid).await.unwrap();
    assert_eq!(
        rows(&direct[0], "SELECT v FROM t").await,
        table(&[&["changed"]])
    );

    // What a coordinator connection refuses, and what a client connection refuses.
    let snap = gtm_client.snapshot(session).await.unwrap().to_text();
    let e = c
        .simple_query(&format!(
            "SET TRANSACTION CONTEXT (SNAPSHOT '{snap}'); INSERT INTO t VALUES (5, 'x')"
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "08P01", "a write without a GXID: {e}");
    let e = coord[1].simple_query("SELECT * FROM t").await.unwrap_err();
    assert_eq!(sqlstate(&e), "08P01", "no context: {e}");
    let e = direct[0]
        .simple_query(&format!("SET TRANSACTION CONTEXT (SNAPSHOT '{snap}')"))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "a client connection: {e}");
    let e = c
        .simple_query("SET TRANSACTION CONTEXT (SNAPSHOT 'nonsense')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22023", "{e}");
}

/// `SNAPSHOT LATEST`: a READ COMMITTED statement that leaves its snapshot to the datanode sees
/// what the GTM counts committed when it began — however old the node's newest snapshot is —
/// and nothing the GTM does not count committed yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_latest_sees_what_the_gtm_counts_committed() {
    let dir = TempDir::new("dn-latest");
    let gtm = Gtm::start("gtm", &dir.join("gtm"), &free_addr(), None);
    let dn = Datanode::start("dn1", &dir.join("dn1"), &free_addr(), &gtm.addr);
    let direct = connect(&dn).await;
    direct
        .batch_execute("CREATE TABLE t (k int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')")
        .await
        .unwrap();
    let reader = coordinator_connection(&dn).await;
    let writer = coordinator_connection(&dn).await;
    let gtm_client = GtmClient::connect(vec![gtm.addr.clone()], ClientOptions::new("coord-test"))
        .await
        .unwrap();
    let session = gtm_client.new_session();
    let read = |sql: &str| {
        format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET TRANSACTION CONTEXT (SNAPSHOT LATEST); \
             {sql}; COMMIT"
        )
    };
    let value = |messages: Vec<SimpleQueryMessage>| -> Vec<String> {
        messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
                _ => None,
            })
            .collect()
    };
    let point = read("SELECT v FROM t WHERE k = 1");
    assert_eq!(value(reader.simple_query(&point).await.unwrap()), ["a"]);

    // A write whose GXID the node's snapshots count as running: committed here but not yet
    // reported, it stays invisible; once reported, the next statement sees it.
    let (gxid, _) = gtm_client
        .begin(session, Isolation::ReadCommitted)
        .await
        .unwrap();
    let update = format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED; \
         SET TRANSACTION CONTEXT (GXID {}, SNAPSHOT LATEST); \
         UPDATE t SET v = 'b' WHERE k = 1; INSERT INTO t VALUES (2, 'c'); COMMIT",
        gxid.0
    );
    assert_eq!(counts(&writer, &update).await, vec![0, 0, 1, 1, 0]);
    assert_eq!(value(reader.simple_query(&point).await.unwrap()), ["a"]);
    let count = read("SELECT count(*) FROM t");
    assert_eq!(value(reader.simple_query(&count).await.unwrap()), ["1"]);
    gtm_client.commit(gxid).await.unwrap();
    assert_eq!(value(reader.simple_query(&point).await.unwrap()), ["b"]);
    assert_eq!(value(reader.simple_query(&count).await.unwrap()), ["2"]);

    // In a block each statement brings its own: the second sees a commit reported between.
    let (gxid, _) = gtm_client
        .begin(session, Isolation::ReadCommitted)
        .await
        .unwrap();
    let first = "BEGIN ISOLATION LEVEL READ COMMITTED; \
                 SET TRANSACTION CONTEXT (SNAPSHOT LATEST); SELECT v FROM t WHERE k = 2";
    assert_eq!(value(reader.simple_query(first).await.unwrap()), ["c"]);
    let change = format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED; \
         SET TRANSACTION CONTEXT (GXID {}, SNAPSHOT LATEST); \
         UPDATE t SET v = 'd' WHERE k = 2; COMMIT",
        gxid.0
    );
    counts(&writer, &change).await;
    gtm_client.commit(gxid).await.unwrap();
    let second = "SET TRANSACTION CONTEXT (SNAPSHOT LATEST); SELECT v FROM t WHERE k = 2; COMMIT";
    assert_eq!(value(reader.simple_query(second).await.unwrap()), ["d"]);

    // The node's choice of snapshot is READ COMMITTED's only.
    let e = reader
        .simple_query(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; \
             SET TRANSACTION CONTEXT (SNAPSHOT LATEST); SELECT v FROM t",
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "08P01", "{e}");
    reader.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        rows(&direct, "SELECT k, v FROM t ORDER BY k").await,
        table(&[&["1", "b"], &["2", "d"]])
    );
}
