//! Several coordinators over the same datanodes, as real processes: DDL run on one is run on
//! every coordinator in the same two-phase commit (and rolled back everywhere when any node
//! fails it), DDL of different coordinators is serialized by the cluster-wide DDL lock, and a
//! coordinator killed in the middle of a two-phase commit leaves nothing prepared for long:
//! the in-doubt resolver finishes it from the GTM's decision log.

use rxc_tests::sql::{connect, connect_to, error_code, rows, table};
use rxc_tests::{Cluster, CoordinatorSpec};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

async fn count_on(c: &Client, node: &str, query: &str) -> i64 {
    rows(c, &format!("EXECUTE DIRECT ON ({node}) '{query}'")).await[0][0]
        .parse()
        .unwrap()
}

/// `pgxc_class` as a coordinator sees it.
async fn classes(c: &Client) -> Vec<Vec<String>> {
    rows(
        c,
        "SELECT pcrelid, pclocatortype, pcattnum, nodeoids FROM pgxc_class ORDER BY pcrelid",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_on_one_coordinator_is_seen_by_the_other() {
    let spec = CoordinatorSpec::default();
    let cluster = Cluster::start_coordinators("coords-ddl", 2, &[spec, spec]);
    cluster.register_all().await;
    let c1 = connect(&cluster.coords[0]).await;
    let c2 = connect(&cluster.coords[1]).await;

    // CREATE TABLE on coord1: coord2 knows the table and its distribution.
    c1.batch_execute(
        "CREATE TABLE t (k int PRIMARY KEY, v text) DISTRIBUTE BY HASH (k); \
         CREATE INDEX t_v ON t (v)",
    )
    .await
    .unwrap();
    assert_eq!(classes(&c1).await, classes(&c2).await);
    assert_eq!(classes(&c2).await, table(&[&["t", "H", "1", "dn1 dn2"]]));

    // Rows written through coord2 land where the hash says and are read through coord1.
    let values: Vec<String> = (1..=40).map(|i| format!("({i}, 'v{i}')")).collect();
    c2.batch_execute(&format!("INSERT INTO t VALUES {}", values.join(", ")))
        .await
        .unwrap();
    let on1 = count_on(&c1, "dn1", "SELECT count(*) FROM t").await;
    let on2 = count_on(&c2, "dn2", "SELECT count(*) FROM t").await;
    assert_eq!(on1 + on2, 40);
    assert!(on1 > 0 && on2 > 0, "rows on both datanodes: {on1} + {on2}");
    assert_eq!(
        rows(&c1, "SELECT count(*), sum(k) FROM t WHERE v LIKE 'v%'").await,
        table(&[&["40", "820"]])
    );

    // ALTER TABLE on coord2 is seen by coord1.
    c2.batch_execute("ALTER TABLE t ADD COLUMN w int")
        .await
        .unwrap();
    c1.batch_execute("UPDATE t SET w = k * 2 WHERE k = 7")
        .await
        .unwrap();
    assert_eq!(
        rows(&c2, "SELECT w FROM t WHERE k = 7").await,
        table(&[&["14"]])
    );

    // A serial column's sequence is one, at the GTM: ids from both coordinators never repeat.
    c1.batch_execute("CREATE TABLE s (id serial PRIMARY KEY, who text)")
        .await
        .unwrap();
    for _ in 0..5 {
        c1.batch_execute("INSERT INTO s (who) VALUES ('coord1')")
            .await
            .unwrap();
        c2.batch_execute("INSERT INTO s (who) VALUES ('coord2')")
            .await
            .unwrap();
    }
    assert_eq!(
        rows(&c2, "SELECT count(*), count(DISTINCT id) FROM s").await,
        table(&[&["10", "10"]])
    );

    // A DDL that fails on one node is rolled back on every node: x exists on dn2 already.
    let dn2 = connect(&cluster.dns[1]).await;
    dn2.batch_execute("CREATE TABLE x (a int)").await.unwrap();
    assert_eq!(
        error_code(&c1, "CREATE TABLE x (a int PRIMARY KEY)").await,
        "42P07"
    );
    for c in [&c1, &c2] {
        assert_eq!(error_code(c, "SELECT * FROM x").await, "42P01");
    }
    let dn1 = connect(&cluster.dns[0]).await;
    assert_eq!(error_code(&dn1, "SELECT * FROM x").await, "42P01");
    dn2.batch_execute("DROP TABLE x").await.unwrap();

    // DROP TABLE on coord2: gone on coord1, distribution and all.
    c2.batch_execute("DROP TABLE t").await.unwrap();
    assert_eq!(error_code(&c1, "SELECT * FROM t").await, "42P01");
    assert_eq!(classes(&c1).await, classes(&c2).await);
    assert_eq!(classes(&c1).await.len(), 1, "only s is left");

    // The same table created on both coordinators at once: the DDL lock lets one through,
    // the other fails as in PostgreSQL, and both catalogs agree.
    for round in 0..3 {
        let name = format!("race{round}");
        let sql = format!("CREATE TABLE {name} (k int PRIMARY KEY, v text)");
        let (a, b) = tokio::join!(c1.batch_execute(&sql), c2.batch_execute(&sql));
        let failures: Vec<String> = [a, b]
            .iter()
            .filter_map(|r| r.as_ref().err().map(rxc_tests::sql::sqlstate))
            .collect();
        assert_eq!(failures, vec!["42P07".to_string()], "round {round}");
        assert_eq!(classes(&c1).await, classes(&c2).await, "round {round}");
        c2.batch_execute(&format!("INSERT INTO {name} VALUES (1, 'x')"))
            .await
            .unwrap();
        assert_eq!(
            rows(&c1, &format!("SELECT v FROM {name}")).await,
            table(&[&["x"]])
        );
    }
}

/// Polls `query` on `c` until it returns `want` (at most 30 s).
async fn wait_for(c: &Client, query: &str, want: Vec<Vec<String>>, what: &str) {
    let start = Instant::now();
    loop {
        let got = rows(c, query).await;
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: still {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sets up `acct` (accounts 1..=20, 100 each) through `c`; returns an account on dn1 and one
/// on dn2.
async fn accounts(c: &Client) -> (i64, i64) {
    c.batch_execute(
        "CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL) DISTRIBUTE BY HASH (id)",
    )
    .await
    .unwrap();
    let values: Vec<String> = (1..=20).map(|i| format!("({i}, 100)")).collect();
    c.batch_execute(&format!("INSERT INTO acct VALUES {}", values.join(", ")))
        .await
        .unwrap();
    let on = |node: &'static str| async move {
        rows(
            c,
            &format!("EXECUTE DIRECT ON ({node}) 'SELECT min(id) FROM acct'"),
        )
        .await[0][0]
            .parse::<i64>()
            .unwrap()
    };
    (on("dn1").await, on("dn2").await)
}

/// Moves 10 from account `a` to account `b` in one transaction through `c`: two datanodes,
/// so two-phase commit — during which the coordinator dies. Returns the error the client got.
async fn transfer_killing_the_coordinator(c: &Client, a: i64, b: i64) -> tokio_postgres::Error {
    c.batch_execute(&format!(
        "BEGIN; \
         UPDATE acct SET balance = balance - 10 WHERE id = {a}; \
         UPDATE acct SET balance = balance + 10 WHERE id = {b}; \
         COMMIT"
    ))
    .await
    .expect_err("the coordinator dies during COMMIT")
}

const PREPARED_ON_DATANODES: &str = "SELECT count(*) FROM pg_prepared_xacts";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecided_transaction_of_a_killed_coordinator_is_rolled_back_by_another() {
    let dying = CoordinatorSpec {
        config: "",
        env: &[("RXC_FAILPOINT", "coordinator-after-prepare")],
    };
    let resolver = CoordinatorSpec {
        config: "resolver_interval_ms = 200\nin_doubt_after_ms = 1000\n",
        env: &[],
    };
    let cluster = Cluster::start_coordinators("coords-undecided", 2, &[dying, resolver]);
    cluster.register_all().await;
    let c2 = connect(&cluster.coords[1]).await;
    let (a, b) = accounts(&c2).await;

    let c1 = connect(&cluster.coords[0]).await;
    let e = transfer_killing_the_coordinator(&c1, a, b).await;
    assert!(e.as_db_error().is_none(), "the connection broke: {e}");

    // Both datanodes hold the transaction prepared until coord2's resolver, finding no
    // decision, logs abort and rolls both back.
    for dn in &cluster.dns {
        let direct = connect(dn).await;
        wait_for(
            &direct,
            PREPARED_ON_DATANODES,
            table(&[&["0"]]),
            "prepared transactions left on a datanode",
        )
        .await;
    }
    assert_eq!(
        rows(
            &c2,
            &format!("SELECT id, balance FROM acct WHERE id IN ({a}, {b}) ORDER BY id")
        )
        .await,
        {
            let mut want = vec![
                vec![a.to_string(), "100".into()],
                vec![b.to_string(), "100".into()],
            ];
            want.sort();
            want
        }
    );
    assert_eq!(
        rows(&c2, "SELECT sum(balance) FROM acct").await,
        table(&[&["2000"]])
    );
    // The rows' locks are gone with it.
    c2.batch_execute(&format!(
        "SET lock_timeout = '5s'; UPDATE acct SET balance = balance + 1 WHERE id IN ({a}, {b})"
    ))
    .await
    .unwrap();
    assert_eq!(
        rows(&c2, "SELECT sum(balance) FROM acct").await,
        table(&[&["2002"]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decided_transaction_is_committed_when_its_coordinator_restarts() {
    let dying = CoordinatorSpec {
        config: "resolver_interval_ms = 200\n",
        env: &[("RXC_FAILPOINT", "coordinator-after-decide")],
    };
    // coord2 sets the table up and leaves coord1's transactions to coord1.
    let patient = CoordinatorSpec {
        config: "in_doubt_after_ms = 3600000\n",
        env: &[],
    };
    let mut cluster = Cluster::start_coordinators("coords-decided", 2, &[dying, patient]);
    cluster.register_all().await;
    let (a, b) = accounts(&connect(&cluster.coords[1]).await).await;
    let c1 = connect(&cluster.coords[0]).await;
    let e = transfer_killing_the_coordinator(&c1, a, b).await;
    assert!(e.as_db_error().is_none(), "the connection broke: {e}");

    // Committed at the GTM's decision log, prepared on both datanodes: nobody sees it yet,
    // nor half of it.
    let dn1 = connect(&cluster.dns[0]).await;
    assert_eq!(count_prepared(&dn1).await, 1);
    assert_eq!(
        rows(&dn1, &format!("SELECT balance FROM acct WHERE id = {a}")).await,
        table(&[&["100"]])
    );

    // The coordinator comes back (without the failpoint): its resolver finishes its own
    // transaction, and the transfer becomes visible everywhere at once.
    let addr = cluster.coords[0].addr.clone();
    let restarted = Cluster::start_coordinator(
        &cluster.dir,
        &cluster.gtm_addr,
        "coord1",
        &addr,
        &CoordinatorSpec {
            config: "resolver_interval_ms = 200\n",
            env: &[],
        },
    );
    cluster.coords[0] = restarted;
    let c1 = connect_to(&cluster.coords[0].conninfo()).await;
    wait_for(
        &c1,
        &format!("SELECT balance FROM acct WHERE id = {a}"),
        table(&[&["90"]]),
        "the debit",
    )
    .await;
    assert_eq!(
        rows(&c1, &format!("SELECT balance FROM acct WHERE id = {b}")).await,
        table(&[&["110"]])
    );
    assert_eq!(
        rows(&c1, "SELECT sum(balance) FROM acct").await,
        table(&[&["2000"]])
    );
    for dn in &cluster.dns {
        assert_eq!(count_prepared(&connect(dn).await).await, 0);
    }
}

async fn count_prepared(c: &Client) -> i64 {
    rows(c, PREPARED_ON_DATANODES).await[0][0].parse().unwrap()
}

/// Sequences are the GTM's, one for the cluster: created on one coordinator, used on both;
/// concurrent `nextval`s and serial inserts through two coordinators never hand out a value
/// twice; a DROP on one is seen by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_hand_out_each_value_once_across_coordinators() {
    let spec = CoordinatorSpec::default();
    let cluster = Cluster::start_coordinators("coords-seq", 2, &[spec, spec]);
    cluster.register_all().await;
    let c1 = connect(&cluster.coords[0]).await;
    let c2 = connect(&cluster.coords[1]).await;
    c1.batch_execute(
        "CREATE SEQUENCE shared CACHE 5; \
         CREATE TABLE ev (id serial PRIMARY KEY, by text) DISTRIBUTE BY HASH (id)",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&c2, "SELECT nextval('shared')").await,
        table(&[&["1"]])
    );

    let draw = |c: Client, who: &'static str| async move {
        let mut got = Vec::new();
        for _ in 0..100 {
            got.push(
                rows(&c, "SELECT nextval('shared')").await[0][0]
                    .parse::<i64>()
                    .unwrap(),
            );
            c.batch_execute(&format!("INSERT INTO ev (by) VALUES ('{who}')"))
                .await
                .unwrap();
        }
        got
    };
    let (a, b) = tokio::join!(
        draw(connect(&cluster.coords[0]).await, "coord1"),
        draw(connect(&cluster.coords[1]).await, "coord2")
    );
    let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 200, "every nextval a value of its own");
    assert!(!all.contains(&1), "the first value was handed out before");
    assert_eq!(
        rows(&c1, "SELECT count(*), count(DISTINCT id) FROM ev").await,
        table(&[&["200", "200"]])
    );
    assert_eq!(
        rows(&c2, "SELECT by, count(*) FROM ev GROUP BY by ORDER BY by").await,
        table(&[&["coord1", "100"], &["coord2", "100"]])
    );

    c2.batch_execute("DROP SEQUENCE shared").await.unwrap();
    assert_eq!(error_code(&c1, "SELECT nextval('shared')").await, "42P01");
}

/// The role names every coordinator of `coords` sees, and every datanode (through the first).
async fn assert_roles_everywhere(coords: &[&Client], expected: &[Vec<String>]) {
    let role_names = "SELECT rolname FROM pg_roles ORDER BY rolname";
    for c in coords {
        assert_eq!(rows(c, role_names).await, expected);
    }
    for dn in ["dn1", "dn2"] {
        let direct = format!("EXECUTE DIRECT ON ({dn}) '{role_names}'");
        assert_eq!(rows(coords[0], &direct).await, expected, "{dn}");
    }
}

/// Roles are cluster DDL: a role made on coord1 logs in on coord2 with its password and
/// exists on every datanode; a rolled-back CREATE ROLE exists nowhere; a role that is not a
/// superuser works with tables but may not use EXECUTE DIRECT, node DDL or the pool functions
/// (42501); DROP ROLE drops it everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_made_on_every_node_and_checked() {
    let spec = CoordinatorSpec {
        config: rxc_tests::POSTGRES_TRUSTED_OTHERS_SCRAM,
        env: &[],
    };
    let cluster = Cluster::start_coordinators("coords-roles", 2, &[spec, spec]);
    cluster.register_all().await;
    let c1 = connect(&cluster.coords[0]).await;
    let c2 = connect(&cluster.coords[1]).await;
    c1.batch_execute(
        "CREATE ROLE app LOGIN PASSWORD 'app-pw'; \
         BEGIN; CREATE ROLE fleeting; ROLLBACK; \
         CREATE TABLE t (k int PRIMARY KEY, v int) DISTRIBUTE BY HASH (k)",
    )
    .await
    .unwrap();
    let expected = table(&[&["app"], &["postgres"]]);
    assert_roles_everywhere(&[&c1, &c2], &expected).await;

    // app logs in on coord2 with its password (SCRAM) and works with tables there.
    let (host, port) = cluster.coords[1].host_port();
    let app_conninfo = format!("host={host} port={port} user=app password=app-pw dbname=postgres");
    let app = connect_to(&app_conninfo).await;
    app.batch_execute("INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)")
        .await
        .unwrap();
    assert_eq!(rows(&app, "SELECT sum(v) FROM t").await, table(&[&["60"]]));
    let wrong = tokio_postgres::connect(
        &format!("host={host} port={port} user=app password=nope dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .map(|_| ())
    .unwrap_err();
    assert_eq!(rxc_tests::sql::sqlstate(&wrong), "28P01");
    let nodes = "SELECT node_name FROM pgxc_node ORDER BY node_name";
    let nodes_before = rows(&c2, nodes).await;
    for sql in [
        "EXECUTE DIRECT ON (dn1) 'SELECT 1'",
        "CREATE NODE dn9 WITH (TYPE = 'datanode', HOST = '127.0.0.1', PORT = 1)",
        "DROP NODE dn1",
        "SELECT pgxc_pool_reload()",
        "CLEAN CONNECTION TO ALL",
        "CREATE ROLE other",
    ] {
        assert_eq!(error_code(&app, sql).await, "42501", "{sql}");
    }
    // The nodes are untouched by the refused DDL.
    assert_eq!(rows(&c2, nodes).await, nodes_before);

    // A superuser role made by SQL may use them.
    c2.batch_execute("ALTER ROLE app SUPERUSER").await.unwrap();
    assert_eq!(
        rows(
            &app,
            "EXECUTE DIRECT ON (dn1) 'SELECT rolsuper FROM pg_roles WHERE rolname = ''app'''"
        )
        .await,
        table(&[&["t"]])
    );
    drop(app);

    c2.batch_execute("DROP ROLE app").await.unwrap();
    let expected = table(&[&["postgres"]]);
    assert_roles_everywhere(&[&c1, &c2], &expected).await;
}
