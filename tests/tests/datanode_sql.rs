//! The datanode as a SQL server: real `rxc-gtm` and `rxc-datanode` processes on ephemeral
//! ports, driven by real clients (tokio-postgres in simple and extended mode, psql).

use rxc_tests::sql::{connect, error_code, rows, table};
use rxc_tests::{Datanode, SingleNode};
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_queries_ddl_dml_and_errors() {
    let cluster = SingleNode::start("dn-simple");
    let c = connect(&cluster.datanode).await;
    c.batch_execute(
        "CREATE TABLE accounts (id integer PRIMARY KEY, owner text NOT NULL, balance bigint DEFAULT 0);
         INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'bob', 50);
         INSERT INTO accounts (id, owner) VALUES (3, 'cy');",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "SELECT id, owner, balance FROM accounts ORDER BY id").await,
        table(&[&["1", "ann", "100"], &["2", "bob", "50"], &["3", "cy", "0"]])
    );
    assert_eq!(
        rows(
            &c,
            "SELECT count(*), sum(balance), max(owner) FROM accounts WHERE balance >= 50"
        )
        .await,
        table(&[&["2", "150", "bob"]])
    );
    // Joins, grouping, subqueries.
    c.batch_execute(
        "CREATE TABLE moves (n serial, account integer, amount integer);
         INSERT INTO moves (account, amount) VALUES (1, 10), (1, -5), (2, 7), (9, 1);",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(
            &c,
            "SELECT a.owner, sum(m.amount) AS total FROM accounts a JOIN moves m ON m.account = a.id \
             GROUP BY a.owner HAVING sum(m.amount) > 0 ORDER BY total DESC"
        )
        .await,
        table(&[&["bob", "7"], &["ann", "5"]])
    );
    assert_eq!(
        rows(
            &c,
            "SELECT n, account FROM moves WHERE account NOT IN (SELECT id FROM accounts)"
        )
        .await,
        table(&[&["4", "9"]])
    );
    assert_eq!(
        rows(&c, "SELECT owner FROM accounts a WHERE EXISTS (SELECT 1 FROM moves m WHERE m.account = a.id) ORDER BY 1").await,
        table(&[&["ann"], &["bob"]])
    );
    // UPDATE / DELETE with RETURNING and command tags.
    assert_eq!(
        rows(
            &c,
            "UPDATE accounts SET balance = balance + 1 WHERE id = 2 RETURNING balance"
        )
        .await,
        table(&[&["51"]])
    );
    let done = c
        .execute("DELETE FROM moves WHERE amount < 0", &[])
        .await
        .unwrap();
    assert_eq!(done, 1);
    // PostgreSQL's SQLSTATEs.
    assert_eq!(
        error_code(&c, "INSERT INTO accounts VALUES (1, 'dup', 0)").await,
        "23505"
    );
    assert_eq!(
        error_code(&c, "INSERT INTO accounts (id) VALUES (7)").await,
        "23502"
    );
    assert_eq!(error_code(&c, "SELECT * FROM nowhere").await, "42P01");
    assert_eq!(error_code(&c, "SELEC 1").await, "42601");
    assert_eq!(error_code(&c, "SELECT 1/0").await, "22012");
    assert_eq!(error_code(&c, "SELECT 2147483647 + 1").await, "22003");
    assert_eq!(error_code(&c, "SELECT 'abc'::integer").await, "22P02");
    assert_eq!(error_code(&c, "SELECT nope FROM accounts").await, "42703");
    assert_eq!(
        error_code(&c, "CREATE TABLE accounts (x int)").await,
        "42P07"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_isolate_and_roll_back() {
    let cluster = SingleNode::start("dn-txn");
    let a = connect(&cluster.datanode).await;
    let b = connect(&cluster.datanode).await;
    a.batch_execute("CREATE TABLE t (k int PRIMARY KEY, v text)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; INSERT INTO t VALUES (1, 'one')")
        .await
        .unwrap();
    // Not visible to another session before commit; visible to its own.
    assert!(rows(&b, "SELECT * FROM t").await.is_empty());
    assert_eq!(rows(&a, "SELECT v FROM t").await, table(&[&["one"]]));
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows(&b, "SELECT v FROM t").await, table(&[&["one"]]));
    // Rollback discards; a failed block refuses statements until ROLLBACK.
    a.batch_execute("BEGIN; INSERT INTO t VALUES (2, 'two')")
        .await
        .unwrap();
    assert_eq!(
        error_code(&a, "INSERT INTO t VALUES (1, 'again')").await,
        "23505"
    );
    assert_eq!(error_code(&a, "SELECT 1").await, "25P02");
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        rows(&b, "SELECT k FROM t ORDER BY k").await,
        table(&[&["1"]])
    );
    // REPEATABLE READ keeps its snapshot; READ COMMITTED sees new commits.
    b.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    assert_eq!(rows(&b, "SELECT count(*) FROM t").await, table(&[&["1"]]));
    a.batch_execute("INSERT INTO t VALUES (3, 'three')")
        .await
        .unwrap();
    assert_eq!(rows(&b, "SELECT count(*) FROM t").await, table(&[&["1"]]));
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows(&b, "SELECT count(*) FROM t").await, table(&[&["2"]]));
    // READ COMMITTED in a block: each statement sees what committed before it began, whether
    // it reads one row (and may go without a snapshot of its own) or many.
    b.batch_execute("BEGIN").await.unwrap();
    let one = "SELECT v FROM t WHERE k = 1";
    assert_eq!(rows(&b, one).await, table(&[&["one"]]));
    a.batch_execute("UPDATE t SET v = 'uno' WHERE k = 1")
        .await
        .unwrap();
    assert_eq!(rows(&b, one).await, table(&[&["uno"]]));
    assert_eq!(
        rows(&b, "SELECT v FROM t WHERE k = 3").await,
        table(&[&["three"]])
    );
    a.batch_execute("UPDATE t SET v = 'tres' WHERE k = 3; INSERT INTO t VALUES (4, 'four')")
        .await
        .unwrap();
    assert_eq!(
        rows(&b, "SELECT v FROM t ORDER BY k").await,
        table(&[&["uno"], &["tres"], &["four"]])
    );
    b.batch_execute("UPDATE t SET v = v || '!' WHERE k = 1")
        .await
        .unwrap();
    a.batch_execute("DELETE FROM t WHERE k = 4").await.unwrap();
    assert!(rows(&b, "SELECT v FROM t WHERE k = 4").await.is_empty());
    assert_eq!(rows(&b, one).await, table(&[&["uno!"]]));
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows(&a, one).await, table(&[&["uno!"]]));
    // DDL is transactional.
    a.batch_execute("BEGIN; CREATE TABLE later (x int); INSERT INTO later VALUES (1)")
        .await
        .unwrap();
    assert_eq!(error_code(&b, "SELECT * FROM later").await, "42P01");
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(error_code(&a, "SELECT * FROM later").await, "42P01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_with_binary_parameters_and_results() {
    let cluster = SingleNode::start("dn-extended");
    let c = connect(&cluster.datanode).await;
    c.batch_execute(
        "CREATE TABLE typed (id bigint PRIMARY KEY, i2 smallint, i4 integer, f8 double precision, \
         n numeric(10,2), t text, b boolean, d date, ts timestamp, by bytea)",
    )
    .await
    .unwrap();
    let insert = c
        .prepare("INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .await
        .unwrap();
    let d = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    let ts = d.and_hms_micro_opt(12, 34, 56, 789).unwrap();
    let n: rust_decimal::Decimal = "12.34".parse().unwrap();
    c.execute(
        &insert,
        &[
            &7i64,
            &3i16,
            &-42i32,
            &1.5f64,
            &n,
            &"héllo",
            &true,
            &d,
            &ts,
            &vec![0u8, 255],
        ],
    )
    .await
    .unwrap();
    let row = c
        .query_one(
            "SELECT id, i2, i4, f8, n, t, b, d, ts, by FROM typed WHERE id = $1",
            &[&7i64],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 7);
    assert_eq!(row.get::<_, i16>(1), 3);
    assert_eq!(row.get::<_, i32>(2), -42);
    assert_eq!(row.get::<_, f64>(3), 1.5);
    assert_eq!(row.get::<_, rust_decimal::Decimal>(4), n);
    assert_eq!(row.get::<_, String>(5), "héllo");
    assert!(row.get::<_, bool>(6));
    assert_eq!(row.get::<_, chrono::NaiveDate>(7), d);
    assert_eq!(row.get::<_, chrono::NaiveDateTime>(8), ts);
    assert_eq!(row.get::<_, Vec<u8>>(9), vec![0u8, 255]);
    // Parameter types are inferred from context; NULL parameters work.
    let none: Option<i32> = None;
    let n = c
        .execute("UPDATE typed SET i4 = $1 WHERE id = $2", &[&none, &7i64])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let row = c
        .query_one("SELECT i4 IS NULL FROM typed WHERE id = 7", &[])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    // Errors in the extended protocol carry their SQLSTATE.
    let e = c
        .execute(
            &insert,
            &[
                &7i64,
                &none.map(|v| v as i16),
                &none,
                &none.map(f64::from),
                &None::<rust_decimal::Decimal>,
                &None::<String>,
                &None::<bool>,
                &None::<chrono::NaiveDate>,
                &None::<chrono::NaiveDateTime>,
                &None::<Vec<u8>>,
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code().unwrap().code(), "23505");
}

#[test]
fn psql_and_restart_keep_committed_data() {
    let mut cluster = SingleNode::start("dn-psql");
    let (host, port) = cluster.datanode.host_port();
    let psql = |sql: &str| {
        let out = rxc_tests::sql::psql(&host, port)
            .args(["-c", sql])
            .output()
            .expect("run psql");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, _, err) = psql("CREATE TABLE kv (k text PRIMARY KEY, v integer)");
    assert!(ok, "{err}");
    let (ok, _, err) = psql("INSERT INTO kv SELECT 'k' || 1, 1 UNION ALL SELECT 'k2', 2");
    assert!(ok, "{err}");
    let (ok, out, _) = psql("SELECT k || '=' || v FROM kv ORDER BY k");
    assert!(ok);
    assert_eq!(out, "k1=1\nk2=2");
    // Unknown database and role are refused with PostgreSQL's messages.
    let out = Command::new("psql")
        .args([
            "-X",
            "-h",
            &host,
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "nodb",
            "-c",
            "select 1",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("database \"nodb\" does not exist"));
    // kill -9 and restart: the acknowledged commits are there.
    cluster.datanode.process.kill9();
    let addr = cluster.datanode.addr.clone();
    let dir = cluster.datanode.dir.clone();
    cluster.datanode = Datanode::start("dn1", &dir, &addr, &cluster.gtm.addr);
    std::thread::sleep(Duration::from_millis(100));
    let (ok, out, err) = psql("SELECT count(*), sum(v) FROM kv");
    assert!(ok, "{err}");
    assert_eq!(out, "2|3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_wait_recheck_time_out_and_break_deadlocks() {
    let cluster = SingleNode::start("dn-locks");
    let a = connect(&cluster.datanode).await;
    let b = connect(&cluster.datanode).await;
    a.batch_execute(
        "CREATE TABLE c (k int PRIMARY KEY, n int); INSERT INTO c VALUES (1, 0), (2, 0)",
    )
    .await
    .unwrap();
    // READ COMMITTED: b waits for a, then re-checks and applies its increment to a's row.
    a.batch_execute("BEGIN; UPDATE c SET n = n + 1 WHERE k = 1")
        .await
        .unwrap();
    let waiter = tokio::spawn(async move {
        b.batch_execute("UPDATE c SET n = n + 10 WHERE k = 1")
            .await
            .unwrap();
        b
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "the second writer must wait");
    a.batch_execute("COMMIT").await.unwrap();
    let b = waiter.await.unwrap();
    assert_eq!(
        rows(&a, "SELECT n FROM c WHERE k = 1").await,
        table(&[&["11"]])
    );
    // lock_timeout: 55P03.
    a.batch_execute("BEGIN; SELECT * FROM c WHERE k = 2 FOR UPDATE")
        .await
        .unwrap();
    b.batch_execute("SET lock_timeout = 100").await.unwrap();
    assert_eq!(
        error_code(&b, "UPDATE c SET n = 1 WHERE k = 2").await,
        "55P03"
    );
    b.batch_execute("SET lock_timeout = 0; SET deadlock_timeout = 100")
        .await
        .unwrap();
    a.batch_execute("ROLLBACK").await.unwrap();
    // A deadlock: one of the two gets 40P01, the other proceeds.
    a.batch_execute("SET deadlock_timeout = 100; BEGIN; UPDATE c SET n = 100 WHERE k = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE c SET n = 200 WHERE k = 2")
        .await
        .unwrap();
    let b_task = tokio::spawn(async move {
        let r = b.simple_query("UPDATE c SET n = 201 WHERE k = 1").await;
        (b, r)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ra = a.simple_query("UPDATE c SET n = 101 WHERE k = 2").await;
    let (b, rb) = b_task.await.unwrap();
    let codes: Vec<String> = [&ra, &rb]
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.code().map(|c| c.code().to_string()).unwrap_or_default())
        .collect();
    assert_eq!(
        codes,
        vec!["40P01".to_string()],
        "exactly one victim: {ra:?} {rb:?}"
    );
    let _ = a.batch_execute("COMMIT").await;
    let _ = b.batch_execute("COMMIT").await;
    let total: Vec<Vec<String>> = rows(&a, "SELECT count(*) FROM c WHERE n >= 100").await;
    assert_eq!(
        total,
        table(&[&["2"]]),
        "the survivor's two updates committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_stops_a_waiting_statement() {
    let cluster = SingleNode::start("dn-cancel");
    let holder = connect(&cluster.datanode).await;
    let waiter = connect(&cluster.datanode).await;
    holder
        .batch_execute("CREATE TABLE c (k int PRIMARY KEY, v int); INSERT INTO c VALUES (1, 0)")
        .await
        .unwrap();
    holder
        .batch_execute("BEGIN; UPDATE c SET v = 1 WHERE k = 1")
        .await
        .unwrap();
    let token = waiter.cancel_token();
    let blocked = tokio::spawn(async move {
        let r = waiter.simple_query("UPDATE c SET v = 2 WHERE k = 1").await;
        (waiter, r)
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!blocked.is_finished(), "the update waits for the row lock");
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let (waiter, result) = tokio::time::timeout(std::time::Duration::from_secs(10), blocked)
        .await
        .expect("the cancel request ends the wait")
        .unwrap();
    let e = result.unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "57014");
    assert_eq!(db.message(), "canceling statement due to user request");
    // The canceled session goes on; the holder's change commits.
    holder.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows(&waiter, "SELECT v FROM c").await, table(&[&["1"]]));
    // A cancel request with no statement running changes nothing.
    waiter
        .cancel_token()
        .cancel_query(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(rows(&waiter, "SELECT v FROM c").await, table(&[&["1"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_changes_follow_snapshots() {
    // Table descriptors are cached node-wide; every session must still see the catalog its
    // snapshot sees.
    let cluster = SingleNode::start("dn-catalog");
    let a = connect(&cluster.datanode).await;
    let b = connect(&cluster.datanode).await;
    let rr = connect(&cluster.datanode).await;
    a.batch_execute("CREATE TABLE s (k int PRIMARY KEY); INSERT INTO s VALUES (1)")
        .await
        .unwrap();
    assert_eq!(rows(&b, "SELECT * FROM s").await, table(&[&["1"]]));
    rr.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    assert_eq!(rows(&rr, "SELECT * FROM s").await, table(&[&["1"]]));
    a.batch_execute("BEGIN; ALTER TABLE s ADD COLUMN v text DEFAULT 'x'")
        .await
        .unwrap();
    // The change is a's own until it commits.
    assert_eq!(rows(&a, "SELECT * FROM s").await, table(&[&["1", "x"]]));
    assert_eq!(rows(&b, "SELECT * FROM s").await, table(&[&["1"]]));
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows(&b, "SELECT * FROM s").await, table(&[&["1", "x"]]));
    // The REPEATABLE READ snapshot predates the change.
    assert_eq!(rows(&rr, "SELECT * FROM s").await, table(&[&["1"]]));
    rr.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows(&rr, "SELECT * FROM s").await, table(&[&["1", "x"]]));
    a.batch_execute("DROP TABLE s").await.unwrap();
    assert_eq!(error_code(&b, "SELECT * FROM s").await, "42P01");
    a.batch_execute("CREATE TABLE s (other int)").await.unwrap();
    assert_eq!(rows(&b, "SELECT count(*) FROM s").await, table(&[&["0"]]));
}

#[tokio::test]
async fn prepared_statements_keep_plans_while_the_catalog_holds() {
    // A prepared statement binds once and reuses its plan; any committed catalog change
    // binds it again, and a change of its row type fails as in PostgreSQL.
    let cluster = SingleNode::start("dn-plans");
    let a = connect(&cluster.datanode).await;
    let b = connect(&cluster.datanode).await;
    a.batch_execute("CREATE TABLE p (k int PRIMARY KEY, v int); INSERT INTO p VALUES (1, 10)")
        .await
        .unwrap();
    let get = a.prepare("SELECT v FROM p WHERE k = $1").await.unwrap();
    let star = a.prepare("SELECT * FROM p ORDER BY k").await.unwrap();
    let value = |rows: Vec<tokio_postgres::Row>| {
        rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>()
    };
    assert_eq!(value(a.query(&get, &[&1i32]).await.unwrap()), vec![10]);
    assert_eq!(value(a.query(&get, &[&1i32]).await.unwrap()), vec![10]);
    // Another session replaces the table: the plan must read the new one, not the old id.
    b.batch_execute(
        "DROP TABLE p; CREATE TABLE p (k int PRIMARY KEY, v int); INSERT INTO p VALUES (1, 20)",
    )
    .await
    .unwrap();
    assert_eq!(value(a.query(&get, &[&1i32]).await.unwrap()), vec![20]);
    assert_eq!(a.query(&star, &[]).await.unwrap().len(), 1);
    // Inside a transaction that writes the catalog the plan is bound anew, seeing its DDL;
    // after a rollback the committed table is back.
    a.batch_execute(
        "BEGIN; DROP TABLE p; CREATE TABLE p (k int PRIMARY KEY, v int); INSERT INTO p VALUES (1, 30)",
    )
    .await
    .unwrap();
    assert_eq!(value(a.query(&get, &[&1i32]).await.unwrap()), vec![30]);
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(value(a.query(&get, &[&1i32]).await.unwrap()), vec![20]);
    a.batch_execute("INSERT INTO p VALUES (2, 30)")
        .await
        .unwrap();
    // SELECT * over a table that gained a column changes its row type: 0A000.
    b.batch_execute("ALTER TABLE p ADD COLUMN w text")
        .await
        .unwrap();
    let err = a.query(&star, &[]).await.unwrap_err();
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "0A000");
    assert_eq!(db.message(), "cached plan must not change result type");
    // Statements whose rows keep their shape carry on.
    assert_eq!(value(a.query(&get, &[&2i32]).await.unwrap()), vec![30]);
    // An unknown table after a DROP is 42P01 for the prepared statement too.
    b.batch_execute("DROP TABLE p").await.unwrap();
    let err = a.query(&get, &[&1i32]).await.unwrap_err();
    assert_eq!(
        err.as_db_error().expect("a database error").code().code(),
        "42P01"
    );
}

/// The node's own sessions' snapshots keep the versions they see. The GTM holds none of them
/// (one snapshot answer serves many sessions), so garbage collection stays below the oldest
/// snapshot in use on the node: here a REPEATABLE READ reader's, while a writer replaces its
/// row a few hundred times and GC runs every 20 ms; a READ COMMITTED reader meanwhile sees
/// each commit as it comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_keeps_what_open_snapshots_see() {
    let dir = rxc_tests::TempDir::new("dn-gc-horizon");
    let gtm = rxc_tests::Gtm::start("gtm", &dir.join("gtm"), &rxc_tests::free_addr(), None);
    let config = dir.join("datanode.toml");
    std::fs::write(&config, "gc_interval_ms = 20\n").unwrap();
    let config_s = config.to_string_lossy().into_owned();
    let dn = Datanode::start_with(
        "dn1",
        &dir.join("dn1"),
        &rxc_tests::free_addr(),
        &gtm.addr,
        &["--config", &config_s],
    );
    let writer = connect(&dn).await;
    let reader = connect(&dn).await;
    let watcher = connect(&dn).await;
    writer
        .batch_execute("CREATE TABLE g (k int PRIMARY KEY, v int); INSERT INTO g VALUES (1, 0)")
        .await
        .unwrap();
    reader
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    assert_eq!(rows(&reader, "SELECT v FROM g").await, table(&[&["0"]]));
    for i in 1..=300 {
        writer
            .batch_execute("UPDATE g SET v = v + 1 WHERE k = 1")
            .await
            .unwrap();
        if i % 100 == 0 {
            let seen = rows(&watcher, "SELECT v FROM g").await;
            assert_eq!(seen, table(&[&[&i.to_string()]]));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(rows(&reader, "SELECT v FROM g").await, table(&[&["0"]]));
    reader.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows(&reader, "SELECT v FROM g").await, table(&[&["300"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_xc_statements_on_a_datanode() {
    let cluster = SingleNode::start("dn-xc");
    let c = connect(&cluster.datanode).await;
    // The distribution is the coordinator's business: here the table is an ordinary one.
    c.batch_execute(
        "CREATE TABLE t (a int PRIMARY KEY, b text) DISTRIBUTE BY HASH(a) TO NODE (dn1, dn2);
         INSERT INTO t VALUES (1, 'x');",
    )
    .await
    .unwrap();
    c.execute("CREATE TABLE r (a int) DISTRIBUTE BY REPLICATION", &[])
        .await
        .unwrap();
    assert_eq!(rows(&c, "SELECT a, b FROM t").await, table(&[&["1", "x"]]));
    assert_eq!(rows(&c, "SELECT count(*) FROM r").await, table(&[&["0"]]));
    // The cluster statements run on a coordinator.
    let e = c
        .simple_query("CREATE NODE dn2 WITH (TYPE = 'datanode', HOST = 'h', PORT = 15432)")
        .await
        .unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "0A000");
    assert_eq!(
        db.message(),
        "CREATE NODE runs on a coordinator, not on datanode dn1"
    );
    for sql in [
        "ALTER NODE dn1 WITH (PORT = 1)",
        "DROP NODE dn2",
        "CREATE NODE GROUP g WITH (dn1)",
        "DROP NODE GROUP g",
        "EXECUTE DIRECT ON (dn1) 'SELECT 1'",
        "CLEAN CONNECTION TO ALL",
    ] {
        assert_eq!(error_code(&c, sql).await, "0A000", "{sql}");
    }
    // Such a statement fails its transaction block, as any failing statement does.
    c.batch_execute("BEGIN").await.unwrap();
    assert_eq!(error_code(&c, "DROP NODE dn2").await, "0A000");
    assert_eq!(error_code(&c, "SELECT 1").await, "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
}
