//! Client authentication on a real datanode: rules from the config file pick trust,
//! SCRAM-SHA-256, MD5, cleartext or reject by address and role; passwords are checked with
//! PostgreSQL's SQLSTATEs (28P01 wrong password, 28000 no rule or unknown role); startup
//! options become session settings.

use rxc_tests::sql::rows;
use rxc_tests::{free_addr, Datanode, Gtm, TempDir};
use tokio_postgres::NoTls;

async fn try_connect(conninfo: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_rules() {
    let dir = TempDir::new("dn-auth");
    let gtm = Gtm::start("gtm", &dir.join("gtm"), &free_addr(), None);
    // PostgreSQL 15's verifier for the password "verified" (SELECT rolpassword FROM pg_authid).
    let config = dir.join("datanode.toml");
    std::fs::write(
        &config,
        r#"
[[auth.rules]]
address = "127.0.0.1/32"
user = "md5user"
method = "md5"

[[auth.rules]]
address = "127.0.0.1"
user = "plain"
method = "password"

[[auth.rules]]
address = "loopback"
user = "nobody"
method = "reject"

[[auth.rules]]
address = "all"
method = "scram-sha-256"

[[auth.users]]
name = "postgres"
password = "pg-secret"

[[auth.users]]
name = "md5user"
password = "md5-secret"

[[auth.users]]
name = "plain"
password = "plain-secret"

[[auth.users]]
name = "nobody"
password = "x"

[[auth.users]]
name = "vuser"
password = "SCRAM-SHA-256$4096:/sJM7xzqDi21rC1n5WkX1w==$9EHmyKv2qROdpl51vaLvK9QbmLv6DUzueN8t1kH2uKI=:INISfczkMuNq1VCA0DFpIssrzO7Cz0SI8MDXQATJ2Jw="
"#,
    )
    .unwrap();
    let config_s = config.to_string_lossy().into_owned();
    let dn = Datanode::start_with(
        "dn1",
        &dir.join("dn1"),
        &free_addr(),
        &gtm.addr,
        &["--config", &config_s],
    );
    let (host, port) = dn.host_port();
    let conn = |user: &str, password: Option<&str>, extra: &str| {
        let mut s = format!("host={host} port={port} user={user} dbname=postgres {extra}");
        if let Some(p) = password {
            s.push_str(&format!(" password={p}"));
        }
        s
    };
    // SCRAM-SHA-256 for postgres: right password in, wrong one out (28P01), none out.
    let c = try_connect(&conn("postgres", Some("pg-secret"), ""))
        .await
        .unwrap();
    assert_eq!(rows(&c, "SELECT 1").await, vec![vec!["1".to_string()]]);
    let e = try_connect(&conn("postgres", Some("wrong"), ""))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "28P01", "{e}");
    assert!(try_connect(&conn("postgres", None, "")).await.is_err());
    // A role stored as PostgreSQL's SCRAM verifier.
    let c = try_connect(&conn("vuser", Some("verified"), ""))
        .await
        .unwrap();
    assert_eq!(rows(&c, "SELECT 4").await, vec![vec!["4".to_string()]]);
    let e = try_connect(&conn("vuser", Some("unverified"), ""))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "28P01", "{e}");
    // MD5 and cleartext.
    let c = try_connect(&conn("md5user", Some("md5-secret"), ""))
        .await
        .unwrap();
    assert_eq!(rows(&c, "SELECT 2").await, vec![vec!["2".to_string()]]);
    let e = try_connect(&conn("md5user", Some("nope"), ""))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "28P01", "{e}");
    let c = try_connect(&conn("plain", Some("plain-secret"), ""))
        .await
        .unwrap();
    assert_eq!(rows(&c, "SELECT 3").await, vec![vec!["3".to_string()]]);
    // Rejected by rule, unknown role, unknown database.
    let e = try_connect(&conn("nobody", Some("x"), ""))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "28000", "{e}");
    let message = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("rejects connection"), "{message}");
    let e = try_connect(&conn("ghost", Some("x"), ""))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "28000", "{e}");
    let e = try_connect(&format!(
        "host={host} port={port} user=postgres password=pg-secret dbname=elsewhere"
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&e), "3D000", "{e}");
    // psql with a password.
    let out = rxc_tests::sql::psql(&host, port)
        .args(["-c", "SELECT 40 + 2"])
        .env("PGPASSWORD", "pg-secret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    // Startup options are session settings.
    let c = try_connect(&conn(
        "postgres",
        Some("pg-secret"),
        "options='-c statement_timeout=1234 -c application_name=rxc-test'",
    ))
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "SHOW statement_timeout").await,
        vec![vec!["1234".to_string()]]
    );
    assert_eq!(
        rows(&c, "SHOW application_name").await,
        vec![vec!["rxc-test".to_string()]]
    );
}

#[test]
fn a_malformed_auth_section_stops_the_datanode_with_a_clear_error() {
    let dir = TempDir::new("dn-auth-bad");
    let config = dir.join("datanode.toml");
    std::fs::write(
        &config,
        "[[auth.rules]]\naddress = \"10.0.0.0/40\"\nmethod = \"trust\"\n",
    )
    .unwrap();
    let config_s = config.to_string_lossy().into_owned();
    let data = dir.join("dn1").to_string_lossy().into_owned();
    let (ok, _, stderr) = rxc_tests::run(
        "rxc-datanode",
        &[
            "--config",
            &config_s,
            "--data-dir",
            &data,
            "--listen",
            &free_addr(),
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("invalid address \"10.0.0.0/40\""),
        "{stderr}"
    );
    std::fs::write(&config, "[auth]\nmethods = 1\n").unwrap();
    let (ok, _, stderr) = rxc_tests::run(
        "rxc-datanode",
        &[
            "--config",
            &config_s,
            "--data-dir",
            &data,
            "--listen",
            &free_addr(),
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("methods"), "{stderr}");
}
