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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_distributed_tables_and_two_phase_commit() {
    let cluster = Cluster::start("coord", 2);
    let c = connect(&cluster.coord).await;

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
