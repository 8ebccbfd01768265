//! sqllogictest suites over the wire, with PostgreSQL 15 as the oracle.
//!
//! - **The project's own suites** (`tests/slt/*.slt`, one per SQL feature area): each file
//!   runs on a fresh PostgreSQL database and on a fresh rxc datanode (a real `rxc-gtm` and
//!   `rxc-datanode`), in both protocol modes; all four runs must pass. Their expected output
//!   is PostgreSQL's: `RXC_SLT_OVERRIDE=1` rewrites the files from a PostgreSQL run
//!   (extended mode, which reports column types) before checking them.
//! - **The SQLite conformance corpus** (`tests/slt/conformance/*.slt.gz`, expectations
//!   produced by PostgreSQL 15, which passes every file): each file must pass on rxc, unless
//!   it is in [`KNOWN_GAPS`] with its reason — and a known gap that passes fails the test, so
//!   the list only shrinks. By default each file runs on rxc in the simple protocol only: the
//!   corpus takes minutes on a debug build, the own suites cover the extended protocol, and
//!   the vendored files' expectations are PostgreSQL's already (re-running PostgreSQL 15 on
//!   them, up to 100 s a file, checks nothing a commit can change). `RXC_SLT_FULL=1` runs the
//!   full matrix: PostgreSQL and rxc, both modes (the table in docs/compatibility.md comes
//!   from such a run).
//!
//! Guards: a record may take [`Options::record_timeout`], a file [`Options::file_timeout`],
//! and a datanode may grow to [`max_rss_mib`] of resident memory while it runs a file (a
//! materialised cross product would otherwise take the machine): past any of them the file's
//! run stops and fails with the reason.
//!
//! One test per file, so the test runner spreads them over the cores. Every server a test
//! starts is stopped when the test ends, passing or failing.

use rxc_tests::postgres::Postgres;
use rxc_tests::slt::{self, FileRun, MemoryLimit, Options, Protocol};
use rxc_tests::sql::connect;
use rxc_tests::{Cluster, SingleNode, TempDir};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Conformance files rxc does not pass yet, each with the reason.
const KNOWN_GAPS: &[(&str, &str)] = &[(
    "index_view_10_slt_good_1",
    "CREATE VIEW and DROP VIEW are not implemented (0A000)",
)];

/// How many failed records a report shows in full (`RXC_SLT_SHOW` overrides).
fn report_limit() -> usize {
    std::env::var("RXC_SLT_SHOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// The resident memory a datanode may use while it runs a file, in MiB
/// (`RXC_SLT_MAX_RSS_MB` overrides): far above what any file needs, far below the machine.
fn max_rss_mib() -> u64 {
    std::env::var("RXC_SLT_MAX_RSS_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// How much of a datanode's log a failed run shows.
const LOG_TAIL_LINES: usize = 30;

fn slt_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("slt")
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// Runs `file` on a fresh database `dbname` of `pg`.
async fn run_on_postgres(
    pg: &Postgres,
    file: &Path,
    dbname: &str,
    protocol: Protocol,
    options: &Options,
) -> FileRun {
    create_database(pg, dbname).await;
    slt::run_file(file, "postgres", &pg.conninfo(dbname), protocol, options).await
}

/// Runs `file` on a freshly started rxc datanode; a failed run's report ends with the tail of
/// the datanode's log.
async fn run_on_rxc(file: &Path, label: &str, protocol: Protocol, options: &Options) -> FileRun {
    let node = SingleNode::start(&format!("slt-{label}-{protocol}"));
    let options = Options {
        memory_limit: node.datanode.process.pid().map(|pid| MemoryLimit {
            pid,
            max_rss_bytes: max_rss_mib() << 20,
        }),
        ..options.clone()
    };
    let conninfo = node.datanode.conninfo();
    let mut run = slt::run_file(file, "rxc", &conninfo, protocol, &options).await;
    if !run.passed() {
        let log = node.datanode.process.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        run.log_tail = Some(tail);
    }
    run
}

/// Runs `file` through the coordinator of a fresh cluster (a GTM, two datanodes, a
/// coordinator knowing both): tables the file creates are distributed by the coordinator's
/// `default_distribution` (`hash`: on the primary key, else on the first column that can be
/// a key; `replication`).
async fn run_on_cluster(
    file: &Path,
    label: &str,
    distribution: &str,
    protocol: Protocol,
    options: &Options,
) -> FileRun {
    let cluster = Cluster::start_with(
        &format!("slt-{label}-{distribution}-{protocol}"),
        2,
        &format!("default_distribution = \"{distribution}\"\n"),
    );
    cluster.register(&connect(cluster.coord()).await).await;
    let conninfo = cluster.coord().conninfo();
    let target = format!("rxc-coordinator ({distribution})");
    let mut run = slt::run_file(file, &target, &conninfo, protocol, options).await;
    if !run.passed() {
        let mut tail = String::new();
        for node in std::iter::once(cluster.coord()).chain(&cluster.dns) {
            let log = node.process.log();
            let lines: Vec<&str> = log.lines().collect();
            tail.push_str(&lines[lines.len().saturating_sub(LOG_TAIL_LINES / 3)..].join("\n"));
            tail.push('\n');
        }
        run.log_tail = Some(tail);
    }
    run
}

/// Asserts that the files in `dir` ending in `suffix` are exactly `listed` (by name without
/// the suffix): every file has its test, every test its file.
fn assert_lists_files(dir: &Path, suffix: &str, listed: &[&str]) {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.expect("directory entry").file_name();
            Some(name.to_string_lossy().strip_suffix(suffix)?.to_string())
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        files,
        listed,
        "the *{suffix} files in {} and the test list differ",
        dir.display()
    );
}

async fn create_database(pg: &Postgres, dbname: &str) {
    let (client, connection) =
        tokio_postgres::connect(&pg.conninfo("postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
    let driver = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {dbname}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {dbname}: {e}"));
    drop(client);
    let _ = driver.await;
}

// --- the project's own suites ----------------------------------------------------------------

/// Own-suite options: column types are checked (extended mode reports them).
fn own_options() -> Options {
    Options {
        check_column_types: true,
        record_timeout: Duration::from_secs(30),
        file_timeout: Duration::from_secs(120),
        memory_limit: None,
    }
}

async fn own_suite(name: &str) {
    let file = slt_dir().join(format!("{name}.slt"));
    assert!(file.exists(), "{} is missing", file.display());
    let pg = Postgres::start(&format!("slt-{name}"));
    if env_flag("RXC_SLT_OVERRIDE") {
        create_database(&pg, "override").await;
        slt::override_file(&file, &pg.conninfo("override"), Protocol::Extended)
            .await
            .unwrap_or_else(|e| panic!("override {name}: {e}"));
    }
    let options = own_options();
    let mut runs = Vec::new();
    for protocol in Protocol::ALL {
        let dbname = format!("{name}_{protocol}");
        runs.push(run_on_postgres(&pg, &file, &dbname, protocol, &options).await);
        runs.push(run_on_rxc(&file, name, protocol, &options).await);
    }
    for run in &runs {
        eprintln!("{}", run.summary());
    }
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.report(report_limit()))
        .collect();
    assert!(failed.is_empty(), "\n{}", failed.join("\n\n"));
}

/// One test per `.slt` file, each calling `$run(file name)`, and the list of the names as
/// `$list` (a `*_all_have_tests` test checks it against the directory).
macro_rules! slt_files {
    ($list:ident, $run:ident: $($name:ident),* $(,)?) => {
        const $list: &[&str] = &[$(stringify!($name)),*];
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $run(stringify!($name)).await;
            }
        )*
    };
}

/// Calls `$m!(args... <every own suite>)`: the one list of the own suites, for the
/// single-node and the coordinator runs.
macro_rules! with_own_suites {
    ($m:ident!($($args:tt)*)) => {
        $m!($($args)*
            ddl_constraints,
            dml_returning_conflict,
            null_semantics,
            types_casts,
            operators_errors,
            expression_depth,
            joins,
            colocated_joins,
            subqueries,
            aggregates_grouping,
            set_operations,
            order_limit_distinct,
            ctes,
            conditional_expressions,
            string_functions,
            math_functions,
            date_functions,
            transactions,
            sequences,
        );
    };
}

mod own {
    use super::*;

    with_own_suites!(slt_files!(OWN_SUITES, own_suite:));

    #[test]
    fn own_files_all_have_tests() {
        assert_lists_files(&slt_dir(), ".slt", OWN_SUITES);
    }
}

// --- the project's own suites through a coordinator -----------------------------------------

/// Own suites that do not pass through the coordinator yet with hash-distributed tables,
/// each with the reason; a listed file that passes fails its test, so the list only shrinks.
/// With replicated tables every suite passes.
const COORDINATOR_GAPS: &[(&str, &str)] = &[
    (
        "ddl_constraints",
        "updating a table's distribution column is refused, as in Postgres-XC (0A000)",
    ),
    (
        "dml_returning_conflict",
        "updating a table's distribution column is refused, as in Postgres-XC (0A000)",
    ),
];

/// Runs own suite `name` through a coordinator over two datanodes, in both protocol modes,
/// its tables hash-distributed, then replicated; the expectations are PostgreSQL's, as for
/// the single-node runs.
async fn own_suite_through_coordinator(name: &str) {
    let file = slt_dir().join(format!("{name}.slt"));
    let options = own_options();
    let mut hashed = Vec::new();
    let mut replicated = Vec::new();
    for protocol in Protocol::ALL {
        hashed.push(run_on_cluster(&file, name, "hash", protocol, &options).await);
        replicated.push(run_on_cluster(&file, name, "replication", protocol, &options).await);
    }
    for run in hashed.iter().chain(&replicated) {
        eprintln!("{}", run.summary());
    }
    let failed_replicated: Vec<String> = replicated
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.report(report_limit()))
        .collect();
    assert!(
        failed_replicated.is_empty(),
        "\n{}",
        failed_replicated.join("\n\n")
    );
    let failed: Vec<String> = hashed
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.report(report_limit()))
        .collect();
    match COORDINATOR_GAPS.iter().find(|(file, _)| *file == name) {
        None => assert!(failed.is_empty(), "\n{}", failed.join("\n\n")),
        Some((_, reason)) => {
            assert!(
                !failed.is_empty(),
                "{name} passes through the coordinator now: remove it from COORDINATOR_GAPS \
                 ({reason})"
            );
            eprintln!("{name}: known gap through the coordinator ({reason})");
        }
    }
}

mod coordinator {
    use super::*;

    with_own_suites!(slt_files!(COORDINATOR_SUITES, own_suite_through_coordinator:));

    #[test]
    fn own_files_all_run_through_the_coordinator() {
        assert_lists_files(&slt_dir(), ".slt", COORDINATOR_SUITES);
        for (file, _) in COORDINATOR_GAPS {
            assert!(COORDINATOR_SUITES.contains(file), "{file} is not a suite");
        }
    }
}

// --- the SQLite conformance corpus -----------------------------------------------------------

/// Conformance options: the corpus's column letters are SQLite's, not checked.
fn conformance_options() -> Options {
    Options {
        check_column_types: false,
        record_timeout: Duration::from_secs(60),
        file_timeout: Duration::from_secs(300),
        memory_limit: None,
    }
}

/// The corpus file `name`, decompressed into `dir`.
fn unpack_conformance(name: &str, dir: &TempDir) -> PathBuf {
    let packed = slt_dir().join("conformance").join(format!("{name}.slt.gz"));
    let file =
        std::fs::File::open(&packed).unwrap_or_else(|e| panic!("open {}: {e}", packed.display()));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text)
        .unwrap_or_else(|e| panic!("decompress {}: {e}", packed.display()));
    let path = dir.join(&format!("{name}.slt"));
    std::fs::write(&path, text).expect("write the unpacked file");
    path
}

async fn conformance(name: &str) {
    let dir = TempDir::new(&format!("slt-{name}"));
    let file = unpack_conformance(name, &dir);
    let options = conformance_options();
    let full = env_flag("RXC_SLT_FULL");
    let modes: &[Protocol] = if full {
        &Protocol::ALL
    } else {
        &[Protocol::Simple]
    };
    let mut pg_runs = Vec::new();
    if full {
        let pg = Postgres::start(&format!("slt-{name}"));
        for &protocol in modes {
            let dbname = format!("conformance_{protocol}");
            pg_runs.push(run_on_postgres(&pg, &file, &dbname, protocol, &options).await);
        }
    }
    let mut rxc_runs = Vec::new();
    for &protocol in modes {
        rxc_runs.push(run_on_rxc(&file, name, protocol, &options).await);
    }
    for run in pg_runs.iter().chain(&rxc_runs) {
        eprintln!("{}", run.summary());
    }
    let verdict = |runs: &[FileRun], protocol| {
        runs.iter()
            .find(|r| r.protocol == protocol)
            .map_or("-", |r| if r.passed() { "yes" } else { "no" })
    };
    eprintln!(
        "| {name} | {} | {} | {} | {} |",
        verdict(&pg_runs, Protocol::Simple),
        verdict(&pg_runs, Protocol::Extended),
        verdict(&rxc_runs, Protocol::Simple),
        verdict(&rxc_runs, Protocol::Extended),
    );

    let mut problems = Vec::new();
    for run in pg_runs.iter().filter(|r| !r.passed()) {
        problems.push(format!(
            "PostgreSQL itself fails the corpus file (its expectations are PostgreSQL's):\n{}",
            run.report(report_limit())
        ));
    }
    let gap = KNOWN_GAPS.iter().find(|(file, _)| *file == name);
    match gap {
        None => problems.extend(
            rxc_runs
                .iter()
                .filter(|r| !r.passed())
                .map(|r| r.report(report_limit())),
        ),
        Some((_, reason)) => {
            if rxc_runs.iter().all(FileRun::passed) {
                problems.push(format!(
                    "{name} passes on rxc now: remove it from KNOWN_GAPS ({reason})"
                ));
            } else {
                eprintln!("{name}: known gap ({reason})");
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

mod conformance {
    use super::*;

    slt_files!(
        CONFORMANCE_FILES, conformance:
        select1,
        select2,
        select3,
        select4,
        random_aggregates_slt_good_0,
        random_expr_slt_good_0,
        random_groupby_slt_good_0,
        random_select_slt_good_0,
        index_between_10_slt_good_1,
        index_commute_10_slt_good_0,
        index_delete_10_slt_good_0,
        index_orderby_10_slt_good_0,
        index_orderby_nosort_10_slt_good_0,
        index_random_10_slt_good_0,
        index_view_10_slt_good_1,
    );

    #[test]
    fn conformance_files_all_have_tests() {
        assert_lists_files(&slt_dir().join("conformance"), ".slt.gz", CONFORMANCE_FILES);
        for (gap, _) in KNOWN_GAPS {
            assert!(
                CONFORMANCE_FILES.contains(gap),
                "known gap {gap} is no corpus file"
            );
        }
    }
}
