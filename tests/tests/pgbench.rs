//! pgbench, unchanged, end to end through a coordinator over two datanodes (CI-sized):
//! `pgbench -i` loads its tables (distributed by rxc's default rule: each on its first
//! column, the key pgbench uses), then the default TPC-B script and the select-only script
//! run in each protocol mode (`-M simple`, `extended`, `prepared`) with no failed transaction,
//! and the balances agree afterwards (every committed transfer is in all four tables).

use rxc_tests::sql::{connect, rows, table};
use rxc_tests::Cluster;

/// Runs pgbench with `args` against `host:port`; returns (transactions, failed) from its
/// report, failing the test with pgbench's output if it fails.
fn pgbench(host: &str, port: u16, args: &[&str]) -> (u64, u64) {
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-h", host, "-p", &port.to_string(), "-U", "postgres"])
        .args(args)
        .arg("postgres")
        .output()
        .expect("pgbench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let number = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} in pgbench's report: {stdout}"))
    };
    (
        number("number of transactions actually processed: "),
        number("number of failed transactions: "),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_runs_unchanged_in_every_protocol_mode() {
    let cluster = Cluster::start("pgbench", 2);
    cluster.register_all().await;
    let (host, port) = cluster.coord().host_port();
    rxc_tests::sql::pgbench_init(&host, port, 1);
    let c = connect(cluster.coord()).await;
    assert_eq!(
        rows(
            &c,
            "SELECT pcrelid, pclocatortype, pcattnum FROM pgxc_class ORDER BY pcrelid"
        )
        .await,
        table(&[
            &["pgbench_accounts", "H", "1"],
            &["pgbench_branches", "H", "1"],
            &["pgbench_history", "H", "1"],
            &["pgbench_tellers", "H", "1"],
        ])
    );
    for mode in ["simple", "extended", "prepared"] {
        let (done, failed) = pgbench(&host, port, &["-M", mode, "-c", "4", "-j", "2", "-T", "3"]);
        assert!(done > 0, "TPC-B -M {mode}: no transaction");
        assert_eq!(failed, 0, "TPC-B -M {mode}");
        let (done, failed) = pgbench(
            &host,
            port,
            &["-S", "-M", mode, "-c", "4", "-j", "2", "-T", "2"],
        );
        assert!(done > 0, "select-only -M {mode}: no transaction");
        assert_eq!(failed, 0, "select-only -M {mode}");
    }
    // Each TPC-B transaction adds one delta to an account, its teller and its branch and
    // records it in the history: the four sums agree.
    let mut sums = Vec::new();
    for (column, name) in [
        ("abalance", "pgbench_accounts"),
        ("tbalance", "pgbench_tellers"),
        ("bbalance", "pgbench_branches"),
        ("delta", "pgbench_history"),
    ] {
        let sum = rows(&c, &format!("SELECT sum({column}), count(*) FROM {name}")).await;
        sums.push(sum[0].clone());
    }
    assert_ne!(sums[3][1], "0", "the history has rows");
    assert!(
        sums.iter().all(|s| s[0] == sums[0][0]),
        "balances agree: {sums:?}"
    );
}
