//! sqllogictest over the PostgreSQL wire: runs `.slt` files (the `sqllogictest` crate's
//! dialect) against any server that speaks the protocol — PostgreSQL 15 as the oracle, an
//! rxc datanode as the subject — in the simple or the extended query protocol.
//!
//! [`run_file`] runs every record of a file and keeps going after a failure, so one run tells
//! how many records fail, not only the first; each failure is the runner's own report (file
//! and line, SQL, expected and actual output). A record that takes longer than the time limit,
//! a file that takes longer than its own, or a record that makes a watched server's memory grow
//! beyond a limit ([`MemoryLimit`]) ends the file's run. [`override_file`] rewrites a file's
//! expectations with what a server returns: how the project's own suites get their expected
//! output from PostgreSQL.
//!
//! Every connection carries the label `postgresql` (the SQLite corpus's `skipif postgresql`
//! and `onlyif postgresql` apply to rxc as to PostgreSQL) and its protocol's name (`simple`,
//! `extended`).

pub mod connection;
pub mod format;

pub use connection::{Connection, Protocol, SltError};

use sqllogictest::{DefaultColumnType, Record, RecordOutput, Runner};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The label every connection carries.
pub const LABEL: &str = "postgresql";

/// How a file is run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Whether a query's column type letters must match the result's (extended mode only:
    /// the simple protocol reports no types).
    pub check_column_types: bool,
    /// The time one record may take before the file's run is abandoned.
    pub record_timeout: Duration,
    /// The time the whole file may take before its run is abandoned.
    pub file_timeout: Duration,
    /// The server process to watch, and the resident memory it may use: a record that
    /// makes it grow beyond that abandons the file's run (the caller then stops the server).
    pub memory_limit: Option<MemoryLimit>,
}

/// A cap on a local server process's resident memory, checked while records run.
#[derive(Clone, Copy, Debug)]
pub struct MemoryLimit {
    /// The server's OS process id.
    pub pid: u32,
    /// The most resident memory it may use, in bytes.
    pub max_rss_bytes: u64,
}

/// How often a [`MemoryLimit`] is checked.
const MEMORY_CHECK_INTERVAL: Duration = Duration::from_millis(100);

impl Default for Options {
    fn default() -> Self {
        Options {
            check_column_types: false,
            record_timeout: Duration::from_secs(60),
            file_timeout: Duration::from_secs(600),
            memory_limit: None,
        }
    }
}

/// The outcome of one file on one server in one protocol mode.
#[derive(Debug)]
pub struct FileRun {
    /// The file.
    pub file: PathBuf,
    /// Which server ran it (`postgres`, `rxc`).
    pub server: String,
    /// In which protocol mode.
    pub protocol: Protocol,
    /// Statements and queries that ran (skipped ones not counted).
    pub records: usize,
    /// The runner's report of each record that failed.
    pub failures: Vec<String>,
    /// Why the run stopped before the end of the file, if it did.
    pub aborted: Option<String>,
    /// How long the file took.
    pub elapsed: Duration,
    /// The end of the server's log, when the caller attached it (shown by [`FileRun::report`]).
    pub log_tail: Option<String>,
    /// The most resident memory the watched server was seen using, in bytes (with a
    /// [`MemoryLimit`] only).
    pub peak_rss_bytes: Option<u64>,
}

impl FileRun {
    /// Whether every record passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.aborted.is_none()
    }

    /// One line: file, server, mode, verdict, counts and time.
    pub fn summary(&self) -> String {
        let name = self.file.file_name().map_or_else(
            || self.file.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let verdict = if self.passed() { "ok" } else { "FAILED" };
        let mut line = format!(
            "{name} on {} ({}): {verdict}, {} records, {} failed, {:.1}s",
            self.server,
            self.protocol,
            self.records,
            self.failures.len(),
            self.elapsed.as_secs_f64()
        );
        if let Some(peak) = self.peak_rss_bytes {
            line.push_str(&format!(", server peak RSS {} MiB", peak >> 20));
        }
        if let Some(reason) = &self.aborted {
            line.push_str(&format!(", stopped: {reason}"));
        }
        line
    }

    /// The summary and the first `limit` failures in full.
    pub fn report(&self, limit: usize) -> String {
        let mut out = self.summary();
        for failure in self.failures.iter().take(limit) {
            out.push_str("\n\n");
            out.push_str(failure);
        }
        if self.failures.len() > limit {
            out.push_str(&format!(
                "\n\n... and {} more failed records",
                self.failures.len() - limit
            ));
        }
        if let Some(tail) = &self.log_tail {
            out.push_str(&format!(
                "\n\n--- end of the {} log ---\n{tail}",
                self.server
            ));
        }
        out
    }
}

/// Runs the file at `path` on the database at `conninfo`, all records, keeping going after a
/// failure. Connections (the default one and any a `connection` record names) are made as
/// needed and closed at the end.
pub async fn run_file(
    path: &Path,
    server: &str,
    conninfo: &str,
    protocol: Protocol,
    options: &Options,
) -> FileRun {
    let started = Instant::now();
    let mut run = FileRun {
        file: path.to_path_buf(),
        server: server.to_string(),
        protocol,
        records: 0,
        failures: Vec::new(),
        aborted: None,
        elapsed: Duration::ZERO,
        log_tail: None,
        peak_rss_bytes: None,
    };
    let mut peak = 0;
    let records = match sqllogictest::parse_file::<DefaultColumnType>(path) {
        Ok(records) => records,
        Err(e) => {
            run.aborted = Some(format!("cannot parse: {e}"));
            return run;
        }
    };
    let mut runner = runner(conninfo, protocol, options);
    for record in records {
        if matches!(record, Record::Halt { .. }) {
            break;
        }
        let counted = matches!(record, Record::Statement { .. } | Record::Query { .. });
        let location = record_location(&record);
        let left = options.file_timeout.saturating_sub(started.elapsed());
        let limit = options.record_timeout.min(left);
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(limit, runner.run_async(record)) => outcome,
            exceeded = memory_exceeded(options.memory_limit, &mut peak) => {
                run.aborted = Some(format!("the record at {location} {exceeded}"));
                break;
            }
        };
        match outcome {
            Ok(Ok(RecordOutput::Nothing)) => {}
            Ok(Ok(_)) => run.records += usize::from(counted),
            Ok(Err(e)) => {
                run.records += usize::from(counted);
                run.failures.push(e.display(false).to_string());
            }
            Err(_) if limit < options.record_timeout => {
                run.aborted = Some(format!(
                    "the file took more than {:?} (at the record at {location})",
                    options.file_timeout
                ));
                break;
            }
            Err(_) => {
                run.aborted = Some(format!(
                    "the record at {location} took more than {:?}",
                    options.record_timeout
                ));
                break;
            }
        }
    }
    runner.shutdown_async().await;
    run.elapsed = started.elapsed();
    run.peak_rss_bytes = options.memory_limit.map(|_| peak);
    run
}

/// Completes once the watched server's resident memory exceeds its limit (never without a
/// limit, or once the process is gone), with what it used; keeps `peak` up to date meanwhile.
async fn memory_exceeded(limit: Option<MemoryLimit>, peak: &mut u64) -> String {
    let Some(limit) = limit else {
        return std::future::pending().await;
    };
    loop {
        let rss = crate::rss_bytes(limit.pid);
        if let Some(rss) = rss {
            *peak = (*peak).max(rss);
        }
        match rss {
            Some(rss) if rss > limit.max_rss_bytes => {
                return format!(
                    "made the server use {} MiB of memory, over the limit of {} MiB",
                    rss >> 20,
                    limit.max_rss_bytes >> 20
                );
            }
            Some(_) => tokio::time::sleep(MEMORY_CHECK_INTERVAL).await,
            None => return std::future::pending().await,
        }
    }
}

/// Rewrites the expectations of the file at `path` with what the database at `conninfo`
/// returns (sqllogictest's `--override`): results, column types, and for an error record the
/// server's SQLSTATE and message — also for a bare `statement error` / `query error`, which
/// would otherwise accept any error and stay bare.
pub async fn override_file(path: &Path, conninfo: &str, protocol: Protocol) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| failed(&e))?;
    std::fs::write(path, pin_bare_errors(&text)).map_err(|e| failed(&e))?;
    let options = Options {
        check_column_types: true,
        ..Options::default()
    };
    let mut runner = runner(conninfo, protocol, &options);
    let result = runner
        .update_test_file(
            path,
            " ",
            sqllogictest::default_validator,
            sqllogictest::default_normalizer,
            column_types_match,
        )
        .await
        .map_err(|e| failed(&e));
    runner.shutdown_async().await;
    result
}

/// SQLSTATE `00000` (success) matches no error: an expectation the override must replace.
const UNFILLED_ERROR: &str = "(00000)";

/// `statement error` and `query error` lines without an expectation get [`UNFILLED_ERROR`].
fn pin_bare_errors(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(line);
        if matches!(line.trim_end(), "statement error" | "query error") {
            out.push(' ');
            out.push_str(UNFILLED_ERROR);
        }
        out.push('\n');
    }
    out
}

type SltRunner = Runner<
    Connection,
    Box<dyn FnMut() -> futures::future::BoxFuture<'static, Result<Connection, SltError>> + Send>,
>;

/// A runner whose connections go to `conninfo` in `protocol` mode.
fn runner(conninfo: &str, protocol: Protocol, options: &Options) -> SltRunner {
    let conninfo = conninfo.to_string();
    let make: Box<
        dyn FnMut() -> futures::future::BoxFuture<'static, Result<Connection, SltError>> + Send,
    > = Box::new(move || {
        let conninfo = conninfo.clone();
        Box::pin(async move { Connection::connect(&conninfo, protocol).await })
    });
    let mut runner = Runner::new(make);
    runner.add_label(LABEL);
    if options.check_column_types {
        runner.with_column_validator(column_types_match);
    }
    runner
}

/// Column types match when the server reported none (simple protocol) or each letter agrees;
/// `?` in the file accepts any type.
#[allow(clippy::ptr_arg)] // the runner's validator signature
fn column_types_match(actual: &Vec<DefaultColumnType>, expected: &Vec<DefaultColumnType>) -> bool {
    if actual.iter().all(|t| *t == DefaultColumnType::Any) {
        return true;
    }
    actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|(a, e)| a == e || *e == DefaultColumnType::Any)
}

/// `file:line` of a statement or query record.
fn record_location(record: &Record<DefaultColumnType>) -> String {
    match record {
        Record::Statement { loc, .. } | Record::Query { loc, .. } => loc.to_string(),
        _ => "?".to_string(),
    }
}
