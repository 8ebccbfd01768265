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

/// Writes `text` as `datanode.toml` in `dir`; its path, for `--config`.
fn write_config(dir: &TempDir, text: &str) -> String {
    let config = dir.join("datanode.toml");
    std::fs::write(&config, text).unwrap();
    config.to_string_lossy().into_owned()
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
    let config_s = write_config(
        &dir,
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
    );
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
    let config_s = write_config(
        &dir,
        "[[auth.rules]]\naddress = \"10.0.0.0/40\"\nmethod = \"trust\"\n",
    );
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
    write_config(&dir, "[auth]\nmethods = 1\n");
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

/// Roles made with SQL: `CREATE ROLE` / `CREATE USER` with a password log in with
/// SCRAM-SHA-256, attributes decide who may log in and who may make roles (PostgreSQL's
/// SQLSTATEs), role DDL is transactional, `pg_roles` shows the roles, and they survive a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_made_with_sql_log_in_and_are_checked() {
    let dir = TempDir::new("dn-roles");
    let gtm = Gtm::start("gtm", &dir.join("gtm"), &free_addr(), None);
    let config_s = write_config(&dir, rxc_tests::POSTGRES_TRUSTED_OTHERS_SCRAM);
    let addr = free_addr();
    let start = || {
        Datanode::start_with(
            "dn1",
            &dir.join("dn1"),
            &addr,
            &gtm.addr,
            &["--config", &config_s],
        )
    };
    let mut dn = start();
    let (host, port) = dn.host_port();
    let conn = |user: &str, password: &str| {
        format!("host={host} port={port} user={user} password={password} dbname=postgres")
    };
    let admin = rxc_tests::sql::connect_to(&conn("postgres", "")).await;
    admin
        .batch_execute(
            "CREATE ROLE alice LOGIN PASSWORD 'alice-pw'; \
             CREATE USER bob WITH CREATEROLE PASSWORD 'bob-pw' CONNECTION LIMIT 5; \
             CREATE ROLE quiet PASSWORD 'quiet-pw'; \
             CREATE ROLE expired LOGIN PASSWORD 'old-pw' VALID UNTIL '2001-02-03 04:05:06+00'",
        )
        .await
        .unwrap();
    assert_eq!(
        rows(
            &admin,
            "SELECT rolname, rolsuper, rolcreaterole, rolcanlogin, rolconnlimit, rolpassword, \
             rolvaliduntil FROM pg_roles ORDER BY rolname"
        )
        .await,
        rxc_tests::sql::table(&[
            &["alice", "f", "f", "t", "-1", "********", "NULL"],
            &["bob", "f", "t", "t", "5", "********", "NULL"],
            &[
                "expired",
                "f",
                "f",
                "t",
                "-1",
                "********",
                "2001-02-03 04:05:06+00"
            ],
            &["postgres", "t", "t", "t", "-1", "********", "NULL"],
            &["quiet", "f", "f", "f", "-1", "********", "NULL"],
        ])
    );
    assert_eq!(
        rows(&admin, "SELECT usename FROM pg_user ORDER BY usename").await,
        rxc_tests::sql::table(&[&["alice"], &["bob"], &["expired"], &["postgres"]])
    );
    let sql_code = |sql: &'static str| {
        let admin = &admin;
        async move { rxc_tests::sql::error_code(admin, sql).await }
    };
    assert_eq!(sql_code("CREATE ROLE alice").await, "42710");
    assert_eq!(sql_code("CREATE ROLE pg_mine").await, "42939");
    assert_eq!(sql_code("CREATE ROLE r LOGIN NOLOGIN").await, "42601");
    assert_eq!(sql_code("CREATE ROLE r CONNECTION LIMIT -2").await, "22023");
    assert_eq!(sql_code("ALTER ROLE ghost LOGIN").await, "42704");
    assert_eq!(sql_code("DROP ROLE ghost").await, "42704");
    assert_eq!(sql_code("DROP ROLE postgres").await, "55006");
    assert_eq!(sql_code("ALTER ROLE postgres NOSUPERUSER").await, "42501");
    assert_eq!(sql_code("CREATE ROLE m IN ROLE alice").await, "0A000");
    admin
        .batch_execute("DROP ROLE IF EXISTS ghost")
        .await
        .unwrap();

    // Logging in: the right password, a wrong one (28P01), a NOLOGIN role and an unknown one
    // (28000), a password past its VALID UNTIL (28P01).
    let alice = try_connect(&conn("alice", "alice-pw")).await.unwrap();
    assert_eq!(
        code(&try_connect(&conn("alice", "wrong")).await.unwrap_err()),
        "28P01"
    );
    let e = try_connect(&conn("quiet", "quiet-pw")).await.unwrap_err();
    assert_eq!(code(&e), "28000", "{e}");
    let message = e.as_db_error().map(|d| d.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("not permitted to log in")),
        "{message:?}"
    );
    assert_eq!(
        code(&try_connect(&conn("nobody", "x")).await.unwrap_err()),
        "28000"
    );
    assert_eq!(
        code(&try_connect(&conn("expired", "old-pw")).await.unwrap_err()),
        "28P01"
    );

    // Only a superuser may connect as a coordinator (which hands out transaction context).
    let e = try_connect(&format!(
        "{} options='-c rxc.remotetype=coordinator'",
        conn("alice", "alice-pw")
    ))
    .await
    .unwrap_err();
    assert_eq!(code(&e), "42501", "{e}");

    // Privileges: alice may change her own password but make no roles; bob (CREATEROLE) makes
    // and drops plain roles but no superusers.
    assert_eq!(
        rxc_tests::sql::error_code(&alice, "CREATE ROLE x").await,
        "42501"
    );
    assert_eq!(
        rxc_tests::sql::error_code(&alice, "ALTER ROLE alice CREATEDB").await,
        "42501"
    );
    alice
        .batch_execute("ALTER ROLE alice PASSWORD 'alice-new'")
        .await
        .unwrap();
    assert_eq!(
        code(&try_connect(&conn("alice", "alice-pw")).await.unwrap_err()),
        "28P01"
    );
    let bob = try_connect(&conn("bob", "bob-pw")).await.unwrap();
    bob.batch_execute("CREATE ROLE carol LOGIN PASSWORD 'carol-pw'; ALTER ROLE carol CREATEDB")
        .await
        .unwrap();
    assert_eq!(
        rxc_tests::sql::error_code(&bob, "CREATE ROLE dave SUPERUSER").await,
        "42501"
    );
    assert_eq!(
        rxc_tests::sql::error_code(&bob, "ALTER ROLE postgres PASSWORD 'x'").await,
        "42501"
    );
    assert_eq!(
        rxc_tests::sql::error_code(&bob, "DROP ROLE bob").await,
        "55006"
    );
    try_connect(&conn("carol", "carol-pw")).await.unwrap();
    bob.batch_execute("DROP ROLE carol").await.unwrap();
    assert_eq!(
        code(&try_connect(&conn("carol", "carol-pw")).await.unwrap_err()),
        "28000"
    );

    // Transactional: a role made in a block that rolls back never existed; a rename commits.
    admin
        .batch_execute("BEGIN; CREATE ROLE temp LOGIN PASSWORD 't'; ROLLBACK")
        .await
        .unwrap();
    assert_eq!(sql_code("DROP ROLE temp").await, "42704");
    admin
        .batch_execute("ALTER ROLE alice RENAME TO alicia")
        .await
        .unwrap();
    drop((alice, bob, admin));

    // The roles are stored: after a restart alicia logs in with her new password.
    dn.process.terminate(std::time::Duration::from_secs(10));
    dn = start();
    let alicia = rxc_tests::sql::connect_to(&conn("alicia", "alice-new")).await;
    assert_eq!(
        rows(
            &alicia,
            "SELECT rolname FROM pg_roles WHERE rolcanlogin ORDER BY 1"
        )
        .await,
        rxc_tests::sql::table(&[&["alicia"], &["bob"], &["expired"], &["postgres"]])
    );
    drop(dn);
}
