//! SQL client helpers for the end-to-end tests: a tokio-postgres connection to a node, and
//! the rows and SQLSTATEs of simple queries as plain strings, so expectations read like psql
//! output.

use crate::Datanode;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// A tokio-postgres client connected to `dn` (its connection task runs in the background).
pub async fn connect(dn: &Datanode) -> Client {
    connect_to(&dn.conninfo()).await
}

/// A tokio-postgres client for a connection string. A server that only just started may
/// refuse or drop the first attempts: connection errors are retried for up to 5 s (an error
/// the server reports is not).
pub async fn connect_to(conninfo: &str) -> Client {
    let start = std::time::Instant::now();
    let (client, connection) = loop {
        match tokio_postgres::connect(conninfo, NoTls).await {
            Ok(c) => break c,
            Err(e) if e.as_db_error().is_none() && start.elapsed().as_secs() < 5 => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("connect to {conninfo}: {e}"),
        }
    };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The rows of a simple query as text, NULL as "NULL".
pub async fn rows(client: &Client, sql: &str) -> Vec<Vec<String>> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The SQLSTATE a statement fails with.
pub async fn error_code(client: &Client, sql: &str) -> String {
    let e = client
        .simple_query(sql)
        .await
        .expect_err(&format!("{sql} should fail"));
    sqlstate(&e)
}

/// The SQLSTATE of an error, or a description when it has none.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

/// Expected rows, written as string slices.
pub fn table(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

/// `psql` for the server at `host:port` as the superuser on database `postgres`: no psqlrc,
/// unaligned tuples only, stopping at the first error. Add `-c SQL` (or a stdin) and run it.
pub fn psql(host: &str, port: u16) -> std::process::Command {
    let mut cmd = std::process::Command::new("psql");
    cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p"])
        .arg(port.to_string())
        .args(["-U", "postgres", "-d", "postgres"]);
    cmd
}

/// `pgbench -i -s SCALE` against the server at `host:port`; fails the test with pgbench's
/// stderr if it fails.
pub fn pgbench_init(host: &str, port: u16, scale: u32) {
    let out = std::process::Command::new("pgbench")
        .args([
            "-i",
            "-s",
            &scale.to_string(),
            "-h",
            host,
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "postgres",
        ])
        .output()
        .expect("pgbench");
    assert!(
        out.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
