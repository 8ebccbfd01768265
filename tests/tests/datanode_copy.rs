//! COPY on a real datanode: `COPY ... FROM STDIN` and `TO STDOUT` in text and CSV through
//! tokio-postgres and psql, errors with PostgreSQL's SQLSTATEs and context, COPY inside
//! transaction blocks, and `pgbench -i` (which loads its data with COPY).

use bytes::Bytes;
use futures::{SinkExt, TryStreamExt};
use rxc_tests::sql::{connect, rows, sqlstate, table};
use rxc_tests::SingleNode;
use tokio_postgres::Client;

async fn copy_in(
    client: &Client,
    sql: &str,
    chunks: &[&str],
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, Bytes>(sql).await?;
    futures::pin_mut!(sink);
    for c in chunks {
        sink.send(Bytes::from(c.to_string())).await?;
    }
    sink.finish().await
}

async fn copy_out(client: &Client, sql: &str) -> String {
    let stream = client
        .copy_out(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_out_in_text_and_csv() {
    let cluster = SingleNode::start("dn-copy");
    let c = connect(&cluster.datanode).await;
    c.batch_execute(
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(8,2), \
         day date, note text DEFAULT 'none')",
    )
    .await
    .unwrap();
    // Text format, split across chunks in the middle of rows, with escapes and NULL.
    let n = copy_in(
        &c,
        "COPY items (name, price, day) FROM STDIN",
        &[
            "pen\t1.50\t2026-01-0",
            "2\ntab\\there\t\\N\t\\N\nback\\\\slash\t3\t2026-12-31\n",
        ],
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    // CSV with a header, quotes, an embedded newline and an empty (NULL) field.
    let n = copy_in(
        &c,
        "COPY items (name, price, note) FROM STDIN WITH (FORMAT csv, HEADER true)",
        &[
            "name,price,note\n\"two\nlines\",2,\"a \"\"quoted\"\" note\"\n",
            "\"\",,\n",
        ],
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        rows(
            &c,
            "SELECT id, name, price, day, note FROM items ORDER BY id"
        )
        .await,
        table(&[
            &["1", "pen", "1.50", "2026-01-02", "none"],
            &["2", "tab\there", "NULL", "NULL", "none"],
            &["3", "back\\slash", "3.00", "2026-12-31", "none"],
            &["4", "two\nlines", "2.00", "NULL", "a \"quoted\" note"],
            &["5", "", "NULL", "NULL", "NULL"],
        ])
    );
    // COPY TO STDOUT, as PostgreSQL writes it.
    assert_eq!(
        copy_out(&c, "COPY items (id, name, price) TO STDOUT").await,
        "1\tpen\t1.50\n2\ttab\\there\t\\N\n3\tback\\\\slash\t3.00\n4\ttwo\\nlines\t2.00\n5\t\t\\N\n"
    );
    assert_eq!(
        copy_out(
            &c,
            "COPY (SELECT id, note FROM items WHERE id >= 4 ORDER BY id) TO STDOUT WITH CSV HEADER"
        )
        .await,
        "id,note\n4,\"a \"\"quoted\"\" note\"\n5,\n"
    );
    // Legacy option spelling.
    let n = copy_in(
        &c,
        "COPY items (name) FROM STDIN DELIMITER ',' NULL 'x'",
        &["six\n"],
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_errors_roll_back_and_keep_the_connection_usable() {
    let cluster = SingleNode::start("dn-copy-err");
    let c = connect(&cluster.datanode).await;
    c.batch_execute("CREATE TABLE t (k int PRIMARY KEY, v text NOT NULL)")
        .await
        .unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "1\tone\nx\ttwo\n",
            "22P02",
            "invalid input syntax for type integer: \"x\"",
        ),
        (
            "1\tone\t9\n",
            "22P04",
            "extra data after last expected column",
        ),
        ("1\n", "22P04", "missing data for column \"v\""),
        (
            "1\tone\n1\tagain\n",
            "23505",
            "duplicate key value violates unique constraint",
        ),
        ("1\t\\N\n", "23502", "null value in column \"v\""),
    ];
    for (data, code, message) in cases {
        let e = copy_in(&c, "COPY t FROM STDIN", &[data]).await.unwrap_err();
        assert_eq!(sqlstate(&e), *code, "{data:?}: {e:?}");
        let db = e.as_db_error().expect("a server error");
        assert!(db.message().contains(message), "{data:?}: {}", db.message());
        assert!(
            db.where_().is_some_and(|w| w.starts_with("COPY t, line ")),
            "{data:?}: context {:?}",
            db.where_()
        );
        // Nothing of the failed COPY stays; the connection goes on.
        assert_eq!(rows(&c, "SELECT count(*) FROM t").await, table(&[&["0"]]));
    }
    // Errors before any data. (Each on a connection of its own: tokio-postgres answers an
    // Execute that fails instead of starting the copy with an extra CopyFail + Sync, and
    // takes the second ReadyForQuery for its next request — against PostgreSQL too.)
    for (sql, code) in [
        ("COPY nope FROM STDIN", "42P01"),
        ("COPY t FROM STDIN WITH (FORMAT binary)", "0A000"),
        ("COPY t FROM STDIN WITH (bogus)", "42601"),
        ("COPY t FROM STDIN WITH (FORMAT text, QUOTE '\"')", "0A000"),
        ("COPY t FROM '/etc/passwd'", "0A000"),
    ] {
        let fresh = connect(&cluster.datanode).await;
        let e = copy_in(&fresh, sql, &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e), code, "{sql}: {e:?}");
    }
    // COPY inside a block is part of the block: ROLLBACK undoes it.
    c.batch_execute("BEGIN").await.unwrap();
    copy_in(&c, "COPY t FROM STDIN", &["1\tone\n2\ttwo\n"])
        .await
        .unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM t").await, table(&[&["2"]]));
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM t").await, table(&[&["0"]]));
    // A failed COPY in a block fails the block.
    c.batch_execute("BEGIN").await.unwrap();
    copy_in(&c, "COPY t FROM STDIN", &["x\ty\n"])
        .await
        .unwrap_err();
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    // A client that abandons the COPY (CopyFail): tokio-postgres sends it when the sink is
    // dropped unfinished.
    {
        let sink = c.copy_in::<_, Bytes>("COPY t FROM STDIN").await.unwrap();
        futures::pin_mut!(sink);
        sink.send(Bytes::from_static(b"5\tfive\n")).await.unwrap();
    }
    assert_eq!(rows(&c, "SELECT count(*) FROM t").await, table(&[&["0"]]));
}

#[test]
fn psql_copy_and_pgbench_init() {
    let cluster = SingleNode::start("dn-copy-psql");
    let (host, port) = cluster.datanode.host_port();
    let psql = |args: &[&str], stdin: Option<&str>| -> String {
        let mut cmd = rxc_tests::sql::psql(&host, port);
        cmd.args(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("psql");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "psql {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    psql(&["-c", "CREATE TABLE p (a int, b text)"], None);
    // psql's COPY FROM STDIN reads the data after the command, up to `\.`.
    psql(
        &[],
        Some("COPY p FROM STDIN;\n1\tx\n2\ty\n\\.\nSELECT 1;\n"),
    );
    assert_eq!(
        psql(&["-c", "COPY p TO STDOUT (FORMAT csv)"], None),
        "1,x\n2,y\n"
    );
    // pgbench's own initialisation: tables, COPY, VACUUM, primary keys.
    rxc_tests::sql::pgbench_init(&host, port, 1);
    assert_eq!(
        psql(
            &["-c", "SELECT count(*), sum(abalance) FROM pgbench_accounts"],
            None
        ),
        "100000|0\n"
    );
    assert_eq!(
        psql(&["-c", "SELECT count(*) FROM pgbench_tellers"], None),
        "10\n"
    );
}
