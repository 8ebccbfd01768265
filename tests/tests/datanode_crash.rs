//! Crash safety of the datanode under load: writers commit transactions of two statements
//! while the node is killed with SIGKILL; after the restart every acknowledged commit is
//! there, no transaction is half there, and a prepared transaction survived with its writes
//! and can still be committed.

use rxc_tests::sql::{connect, rows, table};
use rxc_tests::{Datanode, SingleNode};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: i32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_keeps_acknowledged_commits_and_prepared_transactions() {
    let mut cluster = SingleNode::start("dn-crash");
    let setup = connect(&cluster.datanode).await;
    setup
        .batch_execute(
            "CREATE TABLE acct (k int PRIMARY KEY, v int NOT NULL);
             CREATE TABLE log (id int PRIMARY KEY, k int NOT NULL);
             INSERT INTO acct SELECT g, 0 FROM (VALUES (0), (1), (2), (3)) AS t(g)",
        )
        .await
        .unwrap();
    // A prepared transaction, in doubt when the node dies.
    setup
        .batch_execute(
            "BEGIN; INSERT INTO log VALUES (-1, 0); UPDATE acct SET v = v + 100 WHERE k = 0;
             PREPARE TRANSACTION 'crash_gid'",
        )
        .await
        .unwrap();

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let client = connect(&cluster.datanode).await;
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let id = n * WRITERS + w;
                // k = 0 waits for the prepared transaction's lock: the writers use 1..=3.
                let k = 1 + w % 3;
                let txn = format!(
                    "BEGIN; INSERT INTO log VALUES ({id}, {k}); \
                     UPDATE acct SET v = v + 1 WHERE k = {k}; COMMIT"
                );
                if client.batch_execute(&txn).await.is_err() {
                    break;
                }
                acknowledged.lock().unwrap().push(id);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.datanode.process.kill9();
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "too few commits before the kill to test anything: {}",
        acknowledged.len()
    );

    let addr = cluster.datanode.addr.clone();
    let dir = cluster.datanode.dir.clone();
    cluster.datanode = Datanode::start("dn1", &dir, &addr, &cluster.gtm.addr);
    let client = connect(&cluster.datanode).await;
    // Every acknowledged commit is there.
    let present: Vec<i32> = client
        .query("SELECT id FROM log ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in &acknowledged {
        assert!(present.contains(id), "acknowledged commit {id} lost");
    }
    // No transaction is half there: each account moved once per log row of it.
    assert_eq!(
        rows(
            &client,
            "SELECT a.k, a.v, (SELECT count(*) FROM log l WHERE l.k = a.k)
             FROM acct a WHERE a.k > 0 AND a.v <> (SELECT count(*) FROM log l WHERE l.k = a.k)"
        )
        .await,
        Vec::<Vec<String>>::new()
    );
    // The prepared transaction survived, invisible, with its locks and writes.
    assert_eq!(
        rows(&client, "SELECT gid FROM pg_prepared_xacts").await,
        table(&[&["crash_gid"]])
    );
    assert_eq!(
        rows(&client, "SELECT count(*) FROM log WHERE id = -1").await,
        table(&[&["0"]])
    );
    client
        .batch_execute("COMMIT PREPARED 'crash_gid'")
        .await
        .unwrap();
    assert_eq!(
        rows(&client, "SELECT v FROM acct WHERE k = 0").await,
        table(&[&["100"]])
    );
    assert_eq!(
        rows(&client, "SELECT count(*) FROM log WHERE id = -1").await,
        table(&[&["1"]])
    );
}
