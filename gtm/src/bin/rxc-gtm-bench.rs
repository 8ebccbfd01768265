//! `rxc-gtm-bench`: GTM throughput and latency, directly or through a proxy.
//!
//! Each session loops over one transaction: begin + snapshot (one round trip, as a coordinator
//! asks at its first write), then commit. By default each session has its own connection (as a
//! Postgres-XC backend has); `--connections K` spreads the sessions over K shared connections,
//! as an rxc coordinator process multiplexes its sessions over one GTM client. It prints a table and, as its last line:
//!
//! `result: txns_per_s=<f> requests_per_s=<f> p99_us=<int> min_gxid=<int> max_gxid=<int> errors=<int>`
//!
//! `errors` counts failed requests plus any GXID handed out twice; a session retries after an
//! error, so a GTM failover during a run shows up as errors and latency, not as a crash.

use clap::Parser;
use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::net::{run_main, Runtime};
use rxc_common::txn::Isolation;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Measures GTM transactions per second.
#[derive(Parser, Debug)]
#[command(name = "rxc-gtm-bench", version)]
struct Args {
    /// GTM or GTM proxy to load, HOST:PORT (several, comma-separated, are a failover list).
    #[arg(long)]
    gtm: String,
    /// Concurrent sessions, each on its own connection.
    #[arg(long, default_value_t = 64)]
    sessions: usize,
    /// Connections the sessions share (default: one per session).
    #[arg(long)]
    connections: Option<usize>,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// What one session measured.
#[derive(Default)]
struct SessionStats {
    txns: u64,
    requests: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    gxids: Vec<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run_main("rxc-gtm-bench", Runtime::MultiThread, run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let addresses = rxc_common::config::parse_address_list(&args.gtm)
        .map_err(|e| anyhow::anyhow!("--gtm: {e}"))?;
    let connections = args
        .connections
        .unwrap_or(args.sessions)
        .clamp(1, args.sessions.max(1));
    let mut clients = Vec::with_capacity(connections);
    for i in 0..connections {
        let mut options = ClientOptions::new(format!("bench-{i}"));
        options.request_timeout = Duration::from_secs(10);
        options.resume_grace_ms = 10_000;
        clients.push(GtmClient::connect(addresses.clone(), options).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.sessions)
        .map(|i| tokio::spawn(session(clients[i % connections].clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = SessionStats::default();
    for task in tasks {
        let s = task.await?;
        total.txns += s.txns;
        total.requests += s.requests;
        total.errors += s.errors;
        total.latencies_us.extend(s.latencies_us);
        total.gxids.extend(s.gxids);
    }
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let percentile = |p: f64| -> u32 {
        if total.latencies_us.is_empty() {
            return 0;
        }
        let i = ((total.latencies_us.len() as f64 * p).ceil() as usize)
            .clamp(1, total.latencies_us.len())
            - 1;
        total.latencies_us[i]
    };
    total.gxids.sort_unstable();
    let handed_out = total.gxids.len();
    total.gxids.dedup();
    let duplicates = (handed_out - total.gxids.len()) as u64;
    let (min_gxid, max_gxid) = (
        total.gxids.first().copied().unwrap_or(0),
        total.gxids.last().copied().unwrap_or(0),
    );
    let txns_per_s = total.txns as f64 / elapsed;
    let requests_per_s = total.requests as f64 / elapsed;
    let errors = total.errors + duplicates;

    println!("{:<22} {:>12}", "target", args.gtm);
    println!("{:<22} {:>12}", "sessions", args.sessions);
    println!("{:<22} {:>12}", "connections", connections);
    println!("{:<22} {:>12.1}", "seconds", elapsed);
    println!("{:<22} {:>12}", "transactions", total.txns);
    println!("{:<22} {:>12.0}", "transactions/s", txns_per_s);
    println!("{:<22} {:>12.0}", "requests/s", requests_per_s);
    println!("{:<22} {:>12}", "round trip p50 (us)", percentile(0.50));
    println!("{:<22} {:>12}", "round trip p99 (us)", percentile(0.99));
    println!("{:<22} {:>12}", "round trip max (us)", percentile(1.0));
    println!("{:<22} {:>12}", "failed requests", total.errors);
    println!("{:<22} {:>12}", "duplicate GXIDs", duplicates);
    println!(
        "result: txns_per_s={txns_per_s:.1} requests_per_s={requests_per_s:.1} p99_us={} min_gxid={min_gxid} max_gxid={max_gxid} errors={errors}",
        percentile(0.99)
    );
    Ok(())
}

/// One session's loop: begin + snapshot, then commit, until told to stop.
async fn session(client: GtmClient, stop: Arc<AtomicBool>) -> SessionStats {
    let mut stats = SessionStats::default();
    let session = client.new_session();
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let gxid = match client
            .begin_with_snapshot(session, Isolation::ReadCommitted)
            .await
        {
            Ok((gxid, _, _)) => gxid,
            Err(_) => {
                stats.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let t1 = Instant::now();
        stats.latencies_us.push((t1 - t0).as_micros() as u32);
        stats.gxids.push(gxid.0);
        stats.requests += 2;
        match client.commit(gxid).await {
            Ok(()) => {
                stats.latencies_us.push(t1.elapsed().as_micros() as u32);
                stats.requests += 1;
                stats.txns += 1;
            }
            Err(_) => {
                stats.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    stats
}
