//! The coordinator end to end: a GTM, two datanodes and a coordinator as real processes;
//! clients on the coordinator see one database. Node DDL and the pool, distributed tables
//! (where rows go, checked on each datanode with EXECUTE DIRECT and direct connections),
//! routing, queries combining both nodes, multi-node transactions with two-phase commit,
//! DDL on every node, and the errors a Postgres-XC user expects.

use rxc_tests::sql::{connect, error_code, rows, table};
use rxc_tests::Cluster;
use tokio_postgres::Client;

async fn count_on(c: &Client, node: &str, table_name: &str) -> i64 {
    rows(
        c,
        &format!("EXECUTE DIRECT ON ({node}) 'SELECT count(*) FROM {table_name}'"),
    )
    .await[0][0]
        .parse()
        .unwrap()
}

/// A cluster of two datanodes and a coordinator knowing them, with table `name (k int PRIMARY
/// KEY, v int)` hash-distributed on `k` holding `(1, 0) .. (rows, 0)`; and a client on it.
async fn cluster_with_zeros(label: &str, name: &str, rows: usize) -> (Cluster, Client) {
    let cluster = Cluster::start(label, 2);
    let c = connect(cluster.coord()).await;
    cluster.register(&c).await;
    let values: Vec<String> = (1..=rows).map(|i| format!("({i}, 0)")).collect();
    c.batch_execute(&format!(
        "CREATE TABLE {name} (k int PRIMARY KEY, v int) DISTRIBUTE BY HASH (k); \
         INSERT INTO {name} VALUES {}",
        values.join(", ")
    ))
    .await
    .unwrap();
    (cluster, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_distributed_tables_and_two_phase_commit() {
    let cluster = Cluster::start("coord", 2);
    let c = connect(cluster.coord()).await;

    // No datanodes yet: a table has nowhere to go.
    assert_eq!(
        error_code(&c, "CREATE TABLE t (k int PRIMARY KEY, v text)").await,
        "42704"
    );
    cluster.register(&c).await;
    assert_eq!(
        rows(
            &c,
            "SELECT node_name, node_type, nodeis_primary FROM pgxc_node ORDER BY node_name"
        )
        .await,
        table(&[&["dn1", "D", "t"], &["dn2", "D", "f"]])
    );
    assert_eq!(rows(&c, "SELECT pgxc_pool_check()").await, table(&[&["t"]]));
    // Node DDL errors: a duplicate, two primaries, a missing type, inside a block.
    assert_eq!(
        error_code(&c, "CREATE NODE dn1 WITH (TYPE = 'datanode', PORT = 1)").await,
        "42710"
    );
    assert_eq!(
        error_code(&c, "ALTER NODE dn2 WITH (PRIMARY)").await,
        "22023"
    );
    assert_eq!(
        error_code(&c, "CREATE NODE dn9 WITH (PORT = 1)").await,
        "22023"
    );
    c.batch_execute("BEGIN").await.unwrap();
    assert_eq!(
        error_code(&c, "CREATE NODE dn9 WITH (TYPE = 'datanode')").await,
        "25001"
    );
    c.batch_execute("ROLLBACK").await.unwrap();

    // A hash-distributed table (the default: on its primary key); rows spread over both nodes.
    c.batch_execute("CREATE TABLE t (k int PRIMARY KEY, v text)")
        .await
        .unwrap();
    assert_eq!(
        rows(
            &c,
            "SELECT pcrelid, pclocatortype, pcattnum, nodeoids FROM pgxc_class"
        )
        .await,
        table(&[&["t", "H", "1", "dn1 dn2"]])
    );
    let values: Vec<String> = (1..=20).map(|k| format!("({k}, 'v{k}')")).collect();
    assert_eq!(
        c.execute(&format!("INSERT INTO t VALUES {}", values.join(", ")), &[])
            .await
            .unwrap(),
        20
    );
    let (n1, n2) = (
        count_on(&c, "dn1", "t").await,
        count_on(&c, "dn2", "t").await,
    );
    assert_eq!(n1 + n2, 20);
    assert!(n1 > 0 && n2 > 0, "rows on both nodes: {n1} + {n2}");
    // Each row is on the node its hash names, and only there.
    let direct = [
        connect(&cluster.dns[0]).await,
        connect(&cluster.dns[1]).await,
    ];
    let on_dn1 = rows(&direct[0], "SELECT k FROM t").await.len() as i64;
    assert_eq!(on_dn1, n1);

    // Point statements on the key, in the extended protocol with parameters too.
    assert_eq!(
        rows(&c, "SELECT v FROM t WHERE k = 7").await,
        table(&[&["v7"]])
    );
    let row = c
        .query_one("SELECT v FROM t WHERE k = $1", &[&13i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "v13");
    assert_eq!(
        c.execute("UPDATE t SET v = $2 WHERE k = $1", &[&13i32, &"thirteen"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        rows(&c, "SELECT v FROM t WHERE k = 13").await,
        table(&[&["thirteen"]])
    );
    // Statements on every node: counts add up; combined answers are computed at the
    // coordinator.
    assert_eq!(
        c.execute("UPDATE t SET v = v || '!' WHERE k > 15", &[])
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        rows(&c, "SELECT count(*), sum(k), max(v) FROM t").await,
        table(&[&["20", "210", "v9"]])
    );
    assert_eq!(
        rows(&c, "SELECT k, v FROM t ORDER BY k DESC LIMIT 2").await,
        table(&[&["20", "v20!"], &["19", "v19!"]])
    );
    assert_eq!(
        c.execute("DELETE FROM t WHERE k <= 5", &[]).await.unwrap(),
        5
    );
    assert_eq!(rows(&c, "SELECT count(*) FROM t").await, table(&[&["15"]]));
    // Updating the distribution column is refused, as in Postgres-XC.
    assert_eq!(error_code(&c, "UPDATE t SET k = k + 100").await, "0A000");
    // Errors of the datanodes reach the client with their SQLSTATE, and a statement that
    // failed on one node leaves nothing on the others (keys 1-4 are on both nodes).
    assert_eq!(
        error_code(
            &c,
            "INSERT INTO t VALUES (1, 'x'), (2, 'x'), (3, 'x'), (4, 'x'), (7, 'dup')"
        )
        .await,
        "23505"
    );
    assert_eq!(
        rows(&c, "SELECT count(*) FROM t WHERE k <= 4").await,
        table(&[&["0"]])
    );

    // A multi-node transaction is atomic: rolled back, nothing anywhere; committed (two-phase
    // commit over both nodes), everything, and nothing left prepared.
    c.batch_execute("BEGIN; INSERT INTO t VALUES (101, 'a'), (102, 'b'), (103, 'c'), (104, 'd')")
        .await
        .unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*) FROM t WHERE k > 100").await,
        table(&[&["4"]])
    );
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*) FROM t WHERE k > 100").await,
        table(&[&["0"]])
    );
    c.batch_execute(
        "BEGIN; INSERT INTO t VALUES (101, 'a'), (102, 'b'), (103, 'c'), (104, 'd'); COMMIT",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*) FROM t WHERE k > 100").await,
        table(&[&["4"]])
    );
    for d in &direct {
        assert_eq!(
            rows(d, "SELECT count(*) FROM pg_prepared_xacts").await,
            table(&[&["0"]])
        );
    }
    assert!(count_on(&c, "dn1", "t").await > 0 && count_on(&c, "dn2", "t").await > 0);

    // A replicated table: every row on both nodes; joins with it are answered.
    c.batch_execute(
        "CREATE TABLE names (id int PRIMARY KEY, name text) DISTRIBUTE BY REPLICATION;
         INSERT INTO names VALUES (101, 'one'), (102, 'two')",
    )
    .await
    .unwrap();
    assert_eq!(count_on(&c, "dn1", "names").await, 2);
    assert_eq!(count_on(&c, "dn2", "names").await, 2);
    assert_eq!(
        rows(
            &c,
            "SELECT t.k, n.name FROM t JOIN names n ON n.id = t.k ORDER BY t.k"
        )
        .await,
        table(&[&["101", "one"], &["102", "two"]])
    );
    // MODULO, ROUNDROBIN and TO NODE / TO GROUP place rows as they say.
    c.batch_execute(
        "CREATE NODE GROUP only2 WITH (dn2);
         CREATE TABLE m (a int, b text) DISTRIBUTE BY MODULO (a);
         INSERT INTO m VALUES (1, 'x'), (2, 'y'), (3, 'z'), (4, 'w');
         CREATE TABLE rr (a int) DISTRIBUTE BY ROUNDROBIN TO GROUP only2;
         INSERT INTO rr VALUES (1), (2), (3)",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "EXECUTE DIRECT ON (dn1) 'SELECT a FROM m ORDER BY a'").await,
        table(&[&["2"], &["4"]])
    );
    assert_eq!(count_on(&c, "dn2", "rr").await, 3);
    assert_eq!(
        error_code(&direct[0], "SELECT count(*) FROM rr").await,
        "42P01",
        "rr must not exist on dn1"
    );
    // Types that cannot be distribution keys, and unknown nodes, are refused.
    assert_eq!(
        error_code(&c, "CREATE TABLE f (x float8) DISTRIBUTE BY HASH (x)").await,
        "0A000"
    );
    assert_eq!(
        error_code(&c, "CREATE TABLE g (x int) TO NODE (dn7)").await,
        "42704"
    );
    // DDL reaches every node of the table, in one transaction.
    c.batch_execute("CREATE INDEX t_v ON t (v); DROP TABLE names")
        .await
        .unwrap();
    for d in &direct {
        assert_eq!(
            error_code(d, "SELECT * FROM names").await,
            "42P01",
            "names dropped on every datanode"
        );
    }
    assert_eq!(error_code(&c, "SELECT * FROM names").await, "42P01");
    // A node a table lives on cannot be dropped.
    assert_eq!(error_code(&c, "DROP NODE dn2").await, "2BP01");
}

/// Money moves between accounts on different datanodes in many concurrent two-node
/// transactions (two-phase commit), while readers sum every balance in one snapshot across
/// both nodes: the total never changes, so no reader ever sees a transfer half done — the
/// debit committed on one node and the credit not yet on the other (ARCHITECTURE §3, atomic
/// visibility). At the end every committed transfer is accounted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_between_datanodes_are_never_half_visible() {
    const ACCOUNTS: i64 = 20;
    const START: i64 = 1000;
    const WRITERS: usize = 4;
    const TRANSFERS: usize = 60;
    let cluster = Cluster::start("coord-transfers", 2);
    let c = connect(cluster.coord()).await;
    cluster.register(&c).await;
    c.batch_execute(
        "CREATE TABLE acct (id int PRIMARY KEY, balance bigint NOT NULL) DISTRIBUTE BY HASH (id)",
    )
    .await
    .unwrap();
    let values: Vec<String> = (1..=ACCOUNTS).map(|i| format!("({i}, {START})")).collect();
    c.batch_execute(&format!("INSERT INTO acct VALUES {}", values.join(", ")))
        .await
        .unwrap();
    // Both datanodes hold accounts, so most transfers span the two.
    let (on1, on2) = (
        count_on(&c, "dn1", "acct").await,
        count_on(&c, "dn2", "acct").await,
    );
    assert_eq!(on1 + on2, ACCOUNTS);
    assert!(on1 > 0 && on2 > 0, "accounts on both nodes: {on1} + {on2}");

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let client = connect(cluster.coord()).await;
        writers.push(tokio::spawn(async move {
            let mut moved = 0i64;
            for t in 0..TRANSFERS {
                // Accounts in a fixed order (lower id first), so transfers queue on row locks
                // instead of deadlocking across nodes.
                let a = ((w * 7 + t * 3) as i64 % ACCOUNTS) + 1;
                let b = ((w * 5 + t * 11 + 1) as i64 % ACCOUNTS) + 1;
                if a == b {
                    continue;
                }
                let (from, to) = (a.min(b), a.max(b));
                let amount = (t % 9 + 1) as i64;
                client
                    .batch_execute(&format!(
                        "BEGIN; \
                         UPDATE acct SET balance = balance - {amount} WHERE id = {from}; \
                         UPDATE acct SET balance = balance + {amount} WHERE id = {to}; \
                         COMMIT"
                    ))
                    .await
                    .unwrap_or_else(|e| panic!("transfer {from} -> {to}: {e}"));
                moved += amount;
            }
            moved
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2 {
        let client = connect(cluster.coord()).await;
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || reads < 5 {
                // One reader in READ COMMITTED statements, one in REPEATABLE READ blocks.
                let total: Vec<Vec<String>> = if r == 0 {
                    rows(&client, "SELECT sum(balance), count(*) FROM acct").await
                } else {
                    let v = rows(
                        &client,
                        "BEGIN ISOLATION LEVEL REPEATABLE READ; \
                         SELECT sum(balance), count(*) FROM acct",
                    )
                    .await;
                    let again = rows(&client, "SELECT sum(balance), count(*) FROM acct").await;
                    client.batch_execute("COMMIT").await.unwrap();
                    assert_eq!(v, again, "one snapshot for the whole transaction");
                    v
                };
                assert_eq!(
                    total,
                    table(&[&[&(ACCOUNTS * START).to_string(), &ACCOUNTS.to_string()]]),
                    "a reader saw a transfer half done (read {reads})"
                );
                reads += 1;
            }
            reads
        }));
    }
    let mut moved = 0;
    for w in writers {
        moved += w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    assert!(moved > 0 && reads >= 10, "moved {moved}, reads {reads}");
    // Every account's balance: the sum is unchanged and money really moved.
    assert_eq!(
        rows(&c, "SELECT sum(balance) FROM acct").await,
        table(&[&[&(ACCOUNTS * START).to_string()]])
    );
    let changed: i64 = rows(&c, "SELECT count(*) FROM acct WHERE balance <> 1000").await[0][0]
        .parse()
        .unwrap();
    assert!(changed > 0, "no balance changed");
}

/// Two transactions lock rows on different datanodes in opposite orders: each waits for the
/// other on a different datanode, a cycle no datanode sees alone. The coordinator's detector
/// breaks it within seconds — the younger transaction fails with 40P01 and is rolled back on
/// every node — and the other one commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlock_across_datanodes_is_broken() {
    let (cluster, c) = cluster_with_zeros("coord-deadlock", "d", 20).await;
    let first_on = |node: &'static str| {
        let c = &c;
        async move {
            rows(
                c,
                &format!("EXECUTE DIRECT ON ({node}) 'SELECT min(k) FROM d'"),
            )
            .await[0][0]
                .parse::<i64>()
                .unwrap()
        }
    };
    let (a, b) = (first_on("dn1").await, first_on("dn2").await);

    let t1 = connect(cluster.coord()).await;
    let t2 = connect(cluster.coord()).await;
    t1.batch_execute(&format!("BEGIN; UPDATE d SET v = 1 WHERE k = {a}"))
        .await
        .unwrap();
    t2.batch_execute(&format!("BEGIN; UPDATE d SET v = 2 WHERE k = {b}"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let t1_second = format!("UPDATE d SET v = 1 WHERE k = {b}");
    let both = async {
        tokio::join!(t1.batch_execute(&t1_second), async {
            // t1 waits on dn2 first, then t2 closes the cycle on dn1.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            t2.batch_execute(&format!("UPDATE d SET v = 2 WHERE k = {a}"))
                .await
        })
    };
    let Ok((r1, r2)) = tokio::time::timeout(std::time::Duration::from_secs(20), both).await else {
        let mut waits = Vec::new();
        for dn in &cluster.dns {
            waits.push(rows(&connect(dn).await, "SELECT * FROM rxc_lock_waits").await);
        }
        panic!("the deadlock was not broken within 20 s; waits on the datanodes: {waits:?}");
    };
    let elapsed = started.elapsed();
    let codes: Vec<String> = [&r1, &r2]
        .iter()
        .map(|r| match r {
            Ok(()) => "ok".to_string(),
            Err(e) => rxc_tests::sql::sqlstate(e),
        })
        .collect();
    // t2 began later: its GXID is the younger, so it is the victim.
    assert_eq!(codes, vec!["ok", "40P01"], "after {elapsed:?}");
    assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
    t1.batch_execute("COMMIT").await.unwrap();
    // t2's block is failed; its ROLLBACK undoes its first update too.
    let t2_commit = t2.simple_query("COMMIT").await.unwrap();
    assert!(matches!(
        t2_commit.last(),
        Some(tokio_postgres::SimpleQueryMessage::CommandComplete(_))
    ));
    assert_eq!(
        rows(
            &c,
            &format!("SELECT k, v FROM d WHERE k IN ({a}, {b}) ORDER BY v, k")
        )
        .await
        .iter()
        .map(|r| r[1].clone())
        .collect::<Vec<_>>(),
        vec!["1", "1"],
        "t1's two updates committed, t2's none"
    );
}

async fn copy_in(client: &Client, sql: &str, data: String) -> Result<u64, tokio_postgres::Error> {
    use futures::SinkExt;
    let sink = client.copy_in::<_, bytes::Bytes>(sql).await?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(data)).await?;
    sink.finish().await
}

/// COPY FROM STDIN through the coordinator: rows routed in batches to the datanode their
/// hash picks (every node for a replicated table), in text and CSV; a bad row fails the
/// whole COPY on every node; COPY TO STDOUT reads them all back; `pgbench -i` loads its
/// tables through the coordinator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_routes_rows_to_their_datanodes() {
    let cluster = Cluster::start("coord-copy", 2);
    let c = connect(cluster.coord()).await;
    cluster.register(&c).await;
    c.batch_execute(
        "CREATE TABLE t (k int PRIMARY KEY, v text) DISTRIBUTE BY HASH (k); \
         CREATE TABLE r (k int PRIMARY KEY, v text) DISTRIBUTE BY REPLICATION",
    )
    .await
    .unwrap();
    let data: String = (1..=2500)
        .map(|i| {
            if i % 100 == 0 {
                format!("{i}\t\\N\n")
            } else {
                format!("{i}\tv{i}\n")
            }
        })
        .collect();
    assert_eq!(copy_in(&c, "COPY t FROM STDIN", data).await.unwrap(), 2500);
    assert_eq!(
        rows(&c, "SELECT count(*), count(v), sum(k) FROM t").await,
        table(&[&["2500", "2475", "3126250"]])
    );
    let (on1, on2) = (
        count_on(&c, "dn1", "t").await,
        count_on(&c, "dn2", "t").await,
    );
    assert_eq!(on1 + on2, 2500);
    assert!(on1 > 0 && on2 > 0, "{on1} + {on2}");
    // Each row is where the hash says: point queries (routed to one node) find every row.
    for k in [1, 77, 1234, 2499] {
        assert_eq!(
            rows(&c, &format!("SELECT v FROM t WHERE k = {k}")).await,
            table(&[&[&format!("v{k}")]])
        );
    }

    // CSV with a header into a replicated table: every node has every row.
    let csv: String = std::iter::once("k,v\n".to_string())
        .chain((1..=100).map(|i| format!("{i},\"r,{i}\"\n")))
        .collect();
    assert_eq!(
        copy_in(
            &c,
            "COPY r (k, v) FROM STDIN WITH (FORMAT csv, HEADER)",
            csv
        )
        .await
        .unwrap(),
        100
    );
    assert_eq!(count_on(&c, "dn1", "r").await, 100);
    assert_eq!(count_on(&c, "dn2", "r").await, 100);
    assert_eq!(
        rows(&c, "SELECT v FROM r WHERE k = 7").await,
        table(&[&["r,7"]])
    );

    // A bad value far into the data: nothing of this COPY is left anywhere.
    let bad: String = (5001..=7000)
        .map(|i| {
            if i == 6500 {
                "x\ty\n".to_string()
            } else {
                format!("{i}\tw\n")
            }
        })
        .collect();
    let e = copy_in(&c, "COPY t FROM STDIN", bad).await.unwrap_err();
    assert_eq!(rxc_tests::sql::sqlstate(&e), "22P02", "{e}");
    // A duplicate key on one datanode fails it too.
    let dup = "3000\ta\n3001\tb\n3000\tc\n".to_string();
    let e = copy_in(&c, "COPY t FROM STDIN", dup).await.unwrap_err();
    assert_eq!(rxc_tests::sql::sqlstate(&e), "23505", "{e}");
    assert_eq!(
        rows(&c, "SELECT count(*) FROM t").await,
        table(&[&["2500"]])
    );

    // In a block, rolled back with it.
    c.batch_execute("BEGIN").await.unwrap();
    copy_in(&c, "COPY t FROM STDIN", "9001\tz\n9002\tz\n".to_string())
        .await
        .unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*) FROM t WHERE v = 'z'").await,
        table(&[&["2"]])
    );
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*) FROM t").await,
        table(&[&["2500"]])
    );

    // COPY TO STDOUT gathers every node's rows.
    let out = {
        use futures::TryStreamExt;
        let stream = c.copy_out("COPY t (k) TO STDOUT").await.unwrap();
        let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
        chunks.concat()
    };
    let mut ks: Vec<i64> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    ks.sort();
    assert_eq!(ks, (1..=2500).collect::<Vec<i64>>());

    // pgbench -i through the coordinator.
    let (host, port) = cluster.coord().host_port();
    rxc_tests::sql::pgbench_init(&host, port, 1);
    assert_eq!(
        rows(&c, "SELECT count(*), sum(abalance) FROM pgbench_accounts").await,
        table(&[&["100000", "0"]])
    );
    let (a1, a2) = (
        count_on(&c, "dn1", "pgbench_accounts").await,
        count_on(&c, "dn2", "pgbench_accounts").await,
    );
    assert!(a1 > 0 && a2 > 0 && a1 + a2 == 100000, "{a1} + {a2}");
}

/// EXPLAIN of statements over distributed tables shows each step, the nodes it runs on and
/// the remote query text: one node for a point query, partial aggregates combined at the
/// coordinator, a co-located join shipped whole, other joins over fetched rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_nodes_and_remote_queries() {
    let cluster = Cluster::start("coord-explain", 2);
    let c = connect(cluster.coord()).await;
    cluster.register(&c).await;
    c.batch_execute(
        "CREATE TABLE o (id int PRIMARY KEY, cust int) DISTRIBUTE BY HASH (id); \
         CREATE TABLE l (oid int, n int, qty int, PRIMARY KEY (oid, n)) DISTRIBUTE BY HASH (oid); \
         INSERT INTO o VALUES (1, 1), (2, 2), (3, 1)",
    )
    .await
    .unwrap();
    let plan = |sql: &'static str| {
        let c = &c;
        async move {
            rows(c, &format!("EXPLAIN {sql}"))
                .await
                .into_iter()
                .map(|r| r[0].clone())
                .collect::<Vec<_>>()
        }
    };
    let point = plan("SELECT cust FROM o WHERE id = 2").await;
    assert_eq!(point.len(), 1, "{point:?}");
    assert!(
        point[0].starts_with("Remote query on dn")
            && !point[0].contains(',')
            && point[0].ends_with(": SELECT cust FROM o WHERE id = 2"),
        "{point:?}"
    );
    let agg = plan("SELECT cust, count(*) FROM o GROUP BY cust").await;
    assert_eq!(agg.len(), 2, "{agg:?}");
    assert!(agg[0].starts_with("Remote query on dn1, dn2: SELECT cust AS __rxc_c0, count(*)"));
    assert!(agg[1].starts_with("Coordinator: combine the partial aggregates"));
    let colocated = plan("SELECT o.id, l.qty FROM o JOIN l ON l.oid = o.id").await;
    assert_eq!(
        colocated,
        vec!["Remote query on dn1, dn2: SELECT o.id, l.qty FROM o JOIN l ON l.oid = o.id"]
    );
    let other = plan("SELECT o.id, l.qty FROM o JOIN l ON l.n = o.cust").await;
    assert_eq!(other.len(), 2, "{other:?}");
    assert!(other[1].starts_with("Coordinator: run the query over the fetched rows"));
    let update = plan("UPDATE o SET cust = 5 WHERE id = 1").await;
    assert_eq!(update.len(), 1);
    assert!(update[0].starts_with("Remote write on dn"), "{update:?}");
    // Nothing ran: the EXPLAINed update changed nothing.
    assert_eq!(
        rows(&c, "SELECT cust FROM o WHERE id = 1").await,
        table(&[&["1"]])
    );
    assert_eq!(
        error_code(&c, "EXPLAIN ANALYZE SELECT * FROM o").await,
        "0A000"
    );
}

/// A cancel request to the coordinator reaches the datanode the statement waits on (57014,
/// the session goes on), and a client that disconnects mid-transaction leaves nothing on any
/// node: its writes are rolled back and its row locks released everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_disconnect_reach_every_datanode() {
    use std::time::{Duration, Instant};
    let (cluster, c) = cluster_with_zeros("coord-cancel", "w", 20).await;
    assert!(count_on(&c, "dn1", "w").await > 0 && count_on(&c, "dn2", "w").await > 0);

    // The holder locks one row; the waiter's update of every row waits on that row's node.
    let holder = connect(cluster.coord()).await;
    holder
        .batch_execute("BEGIN; UPDATE w SET v = 1 WHERE k = 7")
        .await
        .unwrap();
    let waiter = connect(cluster.coord()).await;
    let token = waiter.cancel_token();
    let started = Instant::now();
    let both = async {
        tokio::join!(waiter.batch_execute("UPDATE w SET v = v + 10"), async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            token.cancel_query(tokio_postgres::NoTls).await.unwrap();
        })
    };
    let (waited, ()) = tokio::time::timeout(Duration::from_secs(10), both)
        .await
        .expect("the cancel request reaches the datanode the update waits on");
    let e = waited.expect_err("the cancel request ends the wait");
    assert_eq!(rxc_tests::sql::sqlstate(&e), "57014", "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The canceled statement left nothing; the session goes on; the holder commits.
    assert_eq!(
        rows(&waiter, "SELECT count(*) FROM w WHERE v >= 10").await,
        table(&[&["0"]])
    );
    holder.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        rows(&waiter, "SELECT sum(v) FROM w").await,
        table(&[&["1"]])
    );

    // A client writes on both nodes in a block and goes away.
    let gone = connect(cluster.coord()).await;
    gone.batch_execute("BEGIN; UPDATE w SET v = 100; INSERT INTO w VALUES (21, 100), (22, 100)")
        .await
        .unwrap();
    drop(gone);
    // Its locks are released on both nodes (this update would wait on them) and its writes
    // are gone.
    let update = c.execute("UPDATE w SET v = v + 1", &[]);
    let updated = tokio::time::timeout(Duration::from_secs(10), update)
        .await
        .expect("the disconnected client's row locks are released")
        .unwrap();
    assert_eq!(updated, 20);
    assert_eq!(
        rows(&c, "SELECT count(*), sum(v) FROM w").await,
        table(&[&["20", "21"]])
    );
    for dn in ["dn1", "dn2"] {
        assert_eq!(
            rows(
                &c,
                &format!("EXECUTE DIRECT ON ({dn}) 'SELECT count(*) FROM pg_prepared_xacts'")
            )
            .await,
            table(&[&["0"]])
        );
    }
}

/// `ALTER NODE` + `pgxc_pool_reload()` while a transaction is using the node: the running
/// transaction finishes on its connection and commits; new transactions use the new
/// definition; `CLEAN CONNECTION` drops idle connections and the next statement reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_node_takes_effect_for_new_transactions() {
    let (cluster, c) = cluster_with_zeros("coord-alter-node", "a", 10).await;

    let running = connect(cluster.coord()).await;
    running
        .batch_execute("BEGIN; UPDATE a SET v = 1")
        .await
        .unwrap();
    // Same datanode, another spelling of its address: the definition changes.
    let port = cluster.dns[0].addr.rsplit(':').next().unwrap().to_string();
    c.batch_execute(&format!(
        "ALTER NODE dn1 WITH (HOST = 'localhost', PORT = {port})"
    ))
    .await
    .unwrap();
    assert_eq!(rows(&c, "SELECT pgxc_pool_check()").await, table(&[&["f"]]));
    assert_eq!(
        rows(&c, "SELECT pgxc_pool_reload()").await,
        table(&[&["t"]])
    );
    assert_eq!(rows(&c, "SELECT pgxc_pool_check()").await, table(&[&["t"]]));
    assert_eq!(
        rows(
            &c,
            "SELECT node_host FROM pgxc_node WHERE node_name = 'dn1'"
        )
        .await,
        table(&[&["localhost"]])
    );
    // The running transaction goes on and commits on the connections it began with.
    running
        .batch_execute("UPDATE a SET v = v + 1; COMMIT")
        .await
        .unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*), sum(v) FROM a").await,
        table(&[&["10", "20"]])
    );
    // New transactions reach dn1 at its new address, also after CLEAN CONNECTION.
    c.batch_execute("CLEAN CONNECTION TO ALL").await.unwrap();
    assert_eq!(c.execute("UPDATE a SET v = 0", &[]).await.unwrap(), 10);
    assert!(count_on(&c, "dn1", "a").await > 0);
    assert_eq!(
        rows(&running, "SELECT sum(v) FROM a").await,
        table(&[&["0"]])
    );
}

/// `rxc-gtm status`'s `next_gxid` and `global_xmin`.
fn gtm_horizon(gtm: &str) -> (u64, u64) {
    let (ok, out, err) = rxc_tests::run("rxc-gtm", &["status", "--gtm", gtm]);
    assert!(ok, "rxc-gtm status: {err}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    (field("next_gxid:"), field("global_xmin:"))
}

/// A read-only statement's snapshot is released lazily (the session's next snapshot replaces
/// it at the GTM without a round trip of its own), but an idle session holds none for long:
/// `global_xmin` moves past it while the session sits idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_holds_no_snapshot() {
    use std::time::{Duration, Instant};
    let (cluster, c) = cluster_with_zeros("coord-idle-snapshot", "w", 4).await;
    let reader = connect(cluster.coord()).await;
    for _ in 0..3 {
        assert_eq!(
            rows(&reader, "SELECT count(*) FROM w").await,
            table(&[&["4"]])
        );
    }
    // Writes after the reader's snapshot move next_gxid on; once nothing runs or holds a
    // snapshot, global_xmin reaches it.
    for i in 0..3 {
        c.batch_execute(&format!("UPDATE w SET v = {i} WHERE k = 1"))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (next, global_xmin) = gtm_horizon(&cluster.gtm.addr);
        if global_xmin == next {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "global_xmin {global_xmin} stays behind next_gxid {next}: a snapshot is held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The reader goes on as before.
    assert_eq!(
        rows(&reader, "SELECT sum(v) FROM w").await,
        table(&[&["2"]])
    );
}
