//! Secondary indexes of the datanode over the wire: real `rxc-gtm` and `rxc-datanode`
//! processes, driven by tokio-postgres. Messages, details and SQLSTATEs are PostgreSQL 15's
//! (each expected value was produced by running the same statements there).

use rxc_tests::sql::{connect, rows, table};
use rxc_tests::{Datanode, SingleNode};
use std::time::Duration;
use tokio_postgres::error::DbError;
use tokio_postgres::Client;

/// The server error of a statement that must fail.
async fn db_error(client: &Client, sql: &str) -> DbError {
    let e = client
        .simple_query(sql)
        .await
        .expect_err(&format!("{sql} should fail"));
    e.as_db_error()
        .unwrap_or_else(|| panic!("{sql}: not a server error: {e}"))
        .clone()
}

/// Checks a failing statement's SQLSTATE, message and detail.
async fn fails(client: &Client, sql: &str, code: &str, message: &str, detail: Option<&str>) {
    let e = db_error(client, sql).await;
    assert_eq!(
        (e.code().code(), e.message(), e.detail()),
        (code, message, detail),
        "{sql}"
    );
}

/// The EXPLAIN lines of a query.
async fn plan(client: &Client, sql: &str) -> Vec<String> {
    rows(client, &format!("EXPLAIN {sql}"))
        .await
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect()
}

/// Whether the query's plan reads its table with `access` (`Index Scan using i on t`, ...).
async fn uses(client: &Client, sql: &str, access: &str) -> bool {
    let lines = plan(client, sql).await;
    let found = lines
        .iter()
        .any(|l| l.trim_start().trim_start_matches("->  ") == access);
    if !found {
        eprintln!("{sql}: {lines:?}");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_constraints_and_indexes_refuse_duplicates() {
    let cluster = SingleNode::start("dn-unique");
    let c = connect(&cluster.datanode).await;
    c.batch_execute(
        "CREATE TABLE t (a int UNIQUE, b int, c text, CONSTRAINT t_bc UNIQUE (b, c));
         INSERT INTO t VALUES (1, 1, 'x'), (2, 1, 'y'), (NULL, 2, 'z'), (NULL, 3, 'z')",
    )
    .await
    .unwrap();
    fails(
        &c,
        "INSERT INTO t VALUES (1, 5, 'q')",
        "23505",
        "duplicate key value violates unique constraint \"t_a_key\"",
        Some("Key (a)=(1) already exists."),
    )
    .await;
    fails(
        &c,
        "INSERT INTO t VALUES (7, 1, 'x')",
        "23505",
        "duplicate key value violates unique constraint \"t_bc\"",
        Some("Key (b, c)=(1, x) already exists."),
    )
    .await;
    fails(
        &c,
        "UPDATE t SET a = 2 WHERE a = 1",
        "23505",
        "duplicate key value violates unique constraint \"t_a_key\"",
        Some("Key (a)=(2) already exists."),
    )
    .await;
    // A statement that fails leaves nothing behind; NULLs never conflict.
    c.batch_execute("UPDATE t SET a = 3 WHERE a = 1; INSERT INTO t VALUES (NULL, 9, 'n')")
        .await
        .unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*), count(a) FROM t").await,
        table(&[&["5", "2"]])
    );
    // CREATE UNIQUE INDEX over duplicates, and over rows that are unique.
    c.batch_execute("CREATE TABLE z (a int, b int); INSERT INTO z VALUES (1, 1), (1, 2), (2, 3)")
        .await
        .unwrap();
    fails(
        &c,
        "CREATE UNIQUE INDEX ON z (a)",
        "23505",
        "could not create unique index \"z_a_idx\"",
        Some("Key (a)=(1) is duplicated."),
    )
    .await;
    fails(
        &c,
        "ALTER TABLE z ADD UNIQUE (a)",
        "23505",
        "could not create unique index \"z_a_key\"",
        Some("Key (a)=(1) is duplicated."),
    )
    .await;
    c.batch_execute("CREATE UNIQUE INDEX z_ab ON z (a, b)")
        .await
        .unwrap();
    fails(
        &c,
        "INSERT INTO z VALUES (2, 3)",
        "23505",
        "duplicate key value violates unique constraint \"z_ab\"",
        Some("Key (a, b)=(2, 3) already exists."),
    )
    .await;
    // Names: taken ones are 42P07, generated ones are numbered past the taken ones.
    fails(
        &c,
        "CREATE INDEX z ON t (b)",
        "42P07",
        "relation \"z\" already exists",
        None,
    )
    .await;
    fails(
        &c,
        "CREATE TABLE z_ab (x int)",
        "42P07",
        "relation \"z_ab\" already exists",
        None,
    )
    .await;
    c.batch_execute(
        "CREATE TABLE u_a_key (x int); CREATE TABLE u (a int UNIQUE); INSERT INTO u VALUES (1)",
    )
    .await
    .unwrap();
    fails(
        &c,
        "INSERT INTO u VALUES (1)",
        "23505",
        "duplicate key value violates unique constraint \"u_a_key1\"",
        Some("Key (a)=(1) already exists."),
    )
    .await;
    // DROP INDEX: not for tables or constraints; the index's name is free again after.
    let e = db_error(&c, "DROP INDEX u").await;
    assert_eq!(
        (e.code().code(), e.message(), e.hint()),
        (
            "42809",
            "\"u\" is not an index",
            Some("Use DROP TABLE to remove a table.")
        )
    );
    let e = db_error(&c, "DROP INDEX u_a_key1").await;
    assert_eq!(
        (e.code().code(), e.message(), e.hint()),
        (
            "2BP01",
            "cannot drop index u_a_key1 because constraint u_a_key1 on table u requires it",
            Some("You can drop constraint u_a_key1 on table u instead.")
        )
    );
    fails(
        &c,
        "DROP INDEX nosuch",
        "42704",
        "index \"nosuch\" does not exist",
        None,
    )
    .await;
    c.batch_execute(
        "DROP INDEX IF EXISTS nosuch; ALTER TABLE u DROP CONSTRAINT u_a_key1;
         INSERT INTO u VALUES (1); DROP INDEX z_ab; CREATE INDEX z_ab ON u (a)",
    )
    .await
    .unwrap();
    // DROP COLUMN drops the indexes over the column; others follow the columns' new places.
    c.batch_execute("ALTER TABLE t DROP COLUMN a; INSERT INTO t VALUES (1, 'unique-a-gone')")
        .await
        .unwrap();
    fails(
        &c,
        "INSERT INTO t VALUES (1, 'x')",
        "23505",
        "duplicate key value violates unique constraint \"t_bc\"",
        Some("Key (b, c)=(1, x) already exists."),
    )
    .await;
    // ADD PRIMARY KEY re-keys the rows (refused over duplicates); the unique index still holds.
    fails(
        &c,
        "ALTER TABLE t ADD PRIMARY KEY (c)",
        "23505",
        "could not create unique index \"t_pkey\"",
        Some("Key (c)=(z) is duplicated."),
    )
    .await;
    c.batch_execute("ALTER TABLE t ADD PRIMARY KEY (c, b)")
        .await
        .unwrap();
    // (PostgreSQL names t_bc here, the older of the two indexes; rxc checks the key first.)
    let e = db_error(&c, "INSERT INTO t VALUES (1, 'x')").await;
    assert_eq!(e.code().code(), "23505");
    assert_eq!(
        rows(&c, "SELECT b, c FROM t WHERE b = 1 ORDER BY c").await,
        table(&[&["1", "unique-a-gone"], &["1", "x"], &["1", "y"]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserters_of_one_value_wait_for_each_other() {
    let cluster = SingleNode::start("dn-unique-wait");
    let a = connect(&cluster.datanode).await;
    let b = connect(&cluster.datanode).await;
    a.batch_execute("CREATE TABLE accounts (id int PRIMARY KEY, email text UNIQUE)")
        .await
        .unwrap();
    for (commit, outcome) in [(true, Err("23505")), (false, Ok(()))] {
        a.batch_execute("DELETE FROM accounts").await.unwrap();
        a.batch_execute("BEGIN; INSERT INTO accounts VALUES (1, 'ann@example.com')")
            .await
            .unwrap();
        let waiter = tokio::spawn({
            let b = connect(&cluster.datanode).await;
            async move {
                let r = b
                    .simple_query("INSERT INTO accounts VALUES (2, 'ann@example.com')")
                    .await;
                r.map(|_| ()).map_err(|e| {
                    let db = e.as_db_error().cloned().expect("a server error");
                    (db.code().code().to_string(), db.message().to_string())
                })
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished(), "the second inserter must wait");
        a.batch_execute(if commit { "COMMIT" } else { "ROLLBACK" })
            .await
            .unwrap();
        let result = waiter.await.unwrap();
        match outcome {
            Err(code) => assert_eq!(
                result,
                Err((
                    code.to_string(),
                    "duplicate key value violates unique constraint \"accounts_email_key\""
                        .to_string()
                ))
            ),
            Ok(()) => assert_eq!(result, Ok(())),
        }
        assert_eq!(
            rows(&b, "SELECT count(*) FROM accounts").await,
            table(&[&["1"]])
        );
    }
    // lock_timeout ends the wait with 55P03.
    a.batch_execute("BEGIN; INSERT INTO accounts VALUES (3, 'cy@example.com')")
        .await
        .unwrap();
    b.batch_execute("SET lock_timeout = 100").await.unwrap();
    let e = db_error(&b, "INSERT INTO accounts VALUES (4, 'cy@example.com')").await;
    assert_eq!(e.code().code(), "55P03");
    a.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_scans_find_what_full_scans_find() {
    let cluster = SingleNode::start("dn-index-scan");
    let c = connect(&cluster.datanode).await;
    // Two copies of the same rows: `plain` has no secondary index, `indexed` has several.
    let mut values = Vec::new();
    for i in 0..60 {
        let colour = ["red", "green", "blue", "NULL"][i % 4];
        let colour = if colour == "NULL" {
            colour.to_string()
        } else {
            format!("'{colour}'")
        };
        let size = if i % 7 == 0 {
            "NULL".to_string()
        } else {
            (i % 9).to_string()
        };
        values.push(format!("({i}, {colour}, {size}, {}.5)", i % 5));
    }
    let values = values.join(", ");
    for t in ["plain", "indexed"] {
        c.batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, colour text, size int, weight numeric);
             INSERT INTO {t} VALUES {values};
             UPDATE {t} SET size = size + 1 WHERE id % 3 = 0;
             UPDATE {t} SET colour = 'blue' WHERE id % 10 = 1;
             DELETE FROM {t} WHERE id % 11 = 0;"
        ))
        .await
        .unwrap();
    }
    c.batch_execute(
        "CREATE INDEX indexed_colour_size ON indexed (colour, size DESC);
         CREATE INDEX indexed_size ON indexed (size);
         CREATE INDEX indexed_weight ON indexed (weight DESC)",
    )
    .await
    .unwrap();
    let queries = [
        ("colour = 'blue'", "indexed_colour_size"),
        ("colour = 'red' AND size = 4", "indexed_colour_size"),
        ("colour = 'green' AND size > 3", "indexed_colour_size"),
        (
            "colour = 'green' AND size >= 3 AND size < 7",
            "indexed_colour_size",
        ),
        ("size BETWEEN 2 AND 5", "indexed_size"),
        ("size < 3", "indexed_size"),
        ("3 < size", "indexed_size"),
        ("size = 4.5", "indexed_size"),
        ("size > 4.5", "indexed_size"),
        ("size = NULL", "indexed_size"),
        ("weight = 2.50", "indexed_weight"),
        ("weight > 1.5 AND weight <= 3.5", "indexed_weight"),
        ("colour = 'blue' AND id > 30", "indexed_colour_size"),
    ];
    for (filter, index) in queries {
        let sql = |t: &str| format!("SELECT * FROM {t} WHERE {filter} ORDER BY id");
        let expected = rows(&c, &sql("plain")).await;
        assert_eq!(rows(&c, &sql("indexed")).await, expected, "{filter}");
        let access = format!("Index Scan using {index} on indexed");
        assert!(uses(&c, &sql("indexed"), &access).await, "{filter}");
    }
    // Parameters (extended protocol) as bounds.
    let sql = |t: &str| format!("SELECT id FROM {t} WHERE colour = $1 AND size > $2 ORDER BY id");
    let ids =
        |rows: Vec<tokio_postgres::Row>| -> Vec<i32> { rows.iter().map(|r| r.get(0)).collect() };
    let expected = ids(c.query(&sql("plain"), &[&"green", &3i32]).await.unwrap());
    assert!(!expected.is_empty());
    assert_eq!(
        ids(c.query(&sql("indexed"), &[&"green", &3i32]).await.unwrap()),
        expected
    );
    assert!(!rows(&c, "SELECT * FROM plain WHERE colour = 'blue'")
        .await
        .is_empty());
    // The primary key still wins, and a filter no index serves scans the table.
    assert!(
        uses(
            &c,
            "SELECT * FROM indexed WHERE id = 5 AND size = 5",
            "Key Lookup on indexed (1 keys)"
        )
        .await
    );
    assert!(
        uses(
            &c,
            "SELECT * FROM indexed WHERE size + 1 = 5 OR colour = 'red'",
            "Seq Scan on indexed"
        )
        .await
    );
    // Updates and deletes through an index scan, in a transaction that sees its own writes.
    c.batch_execute(
        "BEGIN;
         UPDATE indexed SET size = 100 WHERE colour = 'red' AND size = 4;
         UPDATE plain SET size = 100 WHERE colour = 'red' AND size = 4;
         DELETE FROM indexed WHERE size < 2;
         DELETE FROM plain WHERE size < 2;",
    )
    .await
    .unwrap();
    for filter in ["size = 100", "size < 2", "colour = 'red'"] {
        let sql = |t: &str| format!("SELECT * FROM {t} WHERE {filter} ORDER BY id");
        assert_eq!(
            rows(&c, &sql("indexed")).await,
            rows(&c, &sql("plain")).await,
            "{filter}"
        );
    }
    c.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        rows(&c, "SELECT id FROM indexed WHERE size = 100 ORDER BY id").await,
        rows(&c, "SELECT id FROM plain WHERE size = 100 ORDER BY id").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_values_are_keys() {
    let cluster = SingleNode::start("dn-numeric");
    let c = connect(&cluster.datanode).await;
    c.batch_execute(
        "CREATE TABLE n (a numeric PRIMARY KEY, b numeric(10,2) UNIQUE);
         INSERT INTO n VALUES (1.0, 1), (2.5, 2.5), (-3, -3), (100, 0.01)",
    )
    .await
    .unwrap();
    fails(
        &c,
        "INSERT INTO n VALUES (1.00, 7)",
        "23505",
        "duplicate key value violates unique constraint \"n_pkey\"",
        Some("Key (a)=(1.00) already exists."),
    )
    .await;
    fails(
        &c,
        "INSERT INTO n VALUES (7, 2.50)",
        "23505",
        "duplicate key value violates unique constraint \"n_b_key\"",
        Some("Key (b)=(2.50) already exists."),
    )
    .await;
    assert_eq!(
        rows(&c, "SELECT a, b FROM n WHERE a = 1").await,
        table(&[&["1.0", "1.00"]])
    );
    assert_eq!(
        rows(&c, "SELECT a FROM n WHERE b = 2.5").await,
        table(&[&["2.5"]])
    );
    assert_eq!(
        rows(&c, "SELECT a FROM n WHERE a > -3 AND a < 100 ORDER BY a").await,
        table(&[&["1.0"], &["2.5"]])
    );
    assert!(
        uses(
            &c,
            "SELECT a FROM n WHERE b >= 0.01",
            "Index Scan using n_b_key on n"
        )
        .await
    );
    // Kill and restart: the index is still there, and still unique.
    let mut cluster = cluster;
    cluster.datanode.process.kill9();
    let (addr, dir) = (cluster.datanode.addr.clone(), cluster.datanode.dir.clone());
    cluster.datanode = Datanode::start("dn1", &dir, &addr, &cluster.gtm.addr);
    let c = connect(&cluster.datanode).await;
    assert_eq!(
        rows(&c, "SELECT a FROM n WHERE b = 0.010").await,
        table(&[&["100"]])
    );
    let e = db_error(&c, "INSERT INTO n VALUES (8, 0.01)").await;
    assert_eq!(e.code().code(), "23505");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_conflict_arbitrates_on_unique_indexes() {
    let cluster = SingleNode::start("dn-on-conflict");
    let c = connect(&cluster.datanode).await;
    c.batch_execute(
        "CREATE TABLE z (a int, b int, c text);
         CREATE UNIQUE INDEX zab ON z (a, b);
         INSERT INTO z VALUES (1, 1, 'a'), (1, 2, 'b'), (2, 1, 'c');
         ALTER TABLE z ADD CONSTRAINT zc UNIQUE (c)",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(
            &c,
            "INSERT INTO z VALUES (1, 1, 'x') ON CONFLICT (a, b)
             DO UPDATE SET c = excluded.c || '!' RETURNING *"
        )
        .await,
        table(&[&["1", "1", "x!"]])
    );
    assert_eq!(
        rows(
            &c,
            "INSERT INTO z VALUES (5, 5, 'b') ON CONFLICT ON CONSTRAINT zc
             DO UPDATE SET c = 'bb' RETURNING *"
        )
        .await,
        table(&[&["1", "2", "bb"]])
    );
    c.batch_execute(
        "INSERT INTO z VALUES (1, 1, 'y') ON CONFLICT (b, a) DO NOTHING;
         INSERT INTO z VALUES (9, 9, 'c') ON CONFLICT DO NOTHING",
    )
    .await
    .unwrap();
    fails(
        &c,
        "INSERT INTO z VALUES (9, 9, 'c') ON CONFLICT (a, b) DO NOTHING",
        "23505",
        "duplicate key value violates unique constraint \"zc\"",
        Some("Key (c)=(c) already exists."),
    )
    .await;
    fails(
        &c,
        "INSERT INTO z VALUES (1, 3, 'y') ON CONFLICT (a) DO NOTHING",
        "42P10",
        "there is no unique or exclusion constraint matching the ON CONFLICT specification",
        None,
    )
    .await;
    fails(
        &c,
        "INSERT INTO z VALUES (1, 3, 'y') ON CONFLICT ON CONSTRAINT zab DO NOTHING",
        "42704",
        "constraint \"zab\" for table \"z\" does not exist",
        None,
    )
    .await;
    fails(
        &c,
        "INSERT INTO z VALUES (7, 7, 'q'), (7, 7, 'r') ON CONFLICT (a, b) DO UPDATE SET c = excluded.c",
        "21000",
        "ON CONFLICT DO UPDATE command cannot affect row a second time",
        None,
    )
    .await;
    assert_eq!(
        rows(&c, "SELECT a, b, c FROM z ORDER BY a, b").await,
        table(&[&["1", "1", "x!"], &["1", "2", "bb"], &["2", "1", "c"]])
    );
    // READ COMMITTED: a conflicting row committed after the statement's snapshot is updated.
    let d = connect(&cluster.datanode).await;
    c.batch_execute("BEGIN; INSERT INTO z VALUES (4, 4, 'first')")
        .await
        .unwrap();
    let waiter = tokio::spawn(async move {
        let r = d
            .simple_query(
                "INSERT INTO z VALUES (4, 4, 'second') ON CONFLICT (a, b)
                 DO UPDATE SET c = z.c || '+' || excluded.c",
            )
            .await;
        r.map(|_| ())
            .map_err(|e| e.as_db_error().map(|d| d.message().to_string()))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "the conflicting insert must wait");
    c.batch_execute("COMMIT").await.unwrap();
    assert_eq!(waiter.await.unwrap(), Ok(()));
    assert_eq!(
        rows(&c, "SELECT c FROM z WHERE a = 4 AND b = 4").await,
        table(&[&["first+second"]])
    );
}
