//! GTM failover under a proxy: transactions running through `rxc-gtm-proxy` when the active GTM
//! is killed (`kill -9`) and its standby promoted continue and commit, and no GXID repeats.

use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::gtm::proto::TxnStatus;
use rxc_common::txn::{Gxid, Isolation};
use rxc_tests::{free_addr, run, start_proxy, start_proxy_at, Gtm, TempDir};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn wait_in_sync(active: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out, _) = run("rxc-gtm", &["status", "--gtm", active]);
        if out.contains("in sync") {
            return;
        }
        assert!(Instant::now() < deadline, "standby never attached: {out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_survive_gtm_failover_through_proxy() {
    let tmp = TempDir::new("proxy-failover");
    let (a_addr, s_addr) = (free_addr(), free_addr());
    let mut active = Gtm::start("gtm", &tmp.join("active"), &a_addr, None);
    let _standby = Gtm::start("gtm_standby", &tmp.join("standby"), &s_addr, Some(&a_addr));
    wait_in_sync(&a_addr).await;
    let (proxy_addr, _proxy) = start_proxy("gtm_proxy", &format!("{a_addr},{s_addr}"), tmp.path());

    let connect = |name: &str| {
        let mut options = ClientOptions::new(name);
        options.request_timeout = Duration::from_secs(30);
        GtmClient::connect(vec![proxy_addr.clone()], options)
    };

    // Transactions that begin before the failover and commit after it.
    let mut open = Vec::new();
    for i in 0..8 {
        let c = connect(&format!("open-{i}")).await.unwrap();
        let s = c.new_session();
        let (gxid, _, snap) = c
            .begin_with_snapshot(s, Isolation::ReadCommitted)
            .await
            .unwrap();
        assert!(snap.xip.contains(&gxid));
        open.push((c, s, gxid));
    }

    // Background load through the proxy during the failover.
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for i in 0..16 {
        let c = connect(&format!("load-{i}")).await.unwrap();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let s = c.new_session();
            let mut committed = Vec::new();
            let mut errors = 0u32;
            while !stop.load(Ordering::Relaxed) {
                match c.begin_with_snapshot(s, Isolation::ReadCommitted).await {
                    Ok((gxid, _, _)) => match c.commit(gxid).await {
                        Ok(()) => committed.push(gxid),
                        Err(_) => errors += 1,
                    },
                    Err(_) => errors += 1,
                }
            }
            (committed, errors)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    active.process.kill9();
    let (ok, out, err) = run("rxc-gtm", &["promote", "--gtm", &s_addr]);
    assert!(ok, "promote failed: {out} {err}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);

    // The transactions that were open across the failover take a snapshot and commit.
    let mut open_gxids = Vec::new();
    for (c, s, gxid) in &open {
        let snap = c.snapshot(*s).await.expect("snapshot after failover");
        assert!(
            snap.xip.contains(gxid),
            "{gxid} lost its running state: {snap:?}"
        );
        c.commit(*gxid).await.expect("commit after failover");
        assert_eq!(c.status(*gxid).await.unwrap(), TxnStatus::Committed);
        open_gxids.push(*gxid);
    }

    let mut all: Vec<Gxid> = open_gxids;
    let mut total_errors = 0;
    let mut per_worker_after = 0;
    for w in workers {
        let (committed, errors) = w.await.unwrap();
        assert!(
            committed.windows(2).all(|p| p[0] < p[1]),
            "GXIDs of one session not increasing"
        );
        per_worker_after += committed.len();
        total_errors += errors;
        all.extend(committed);
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len(),
        n,
        "a GXID was handed out twice across the failover"
    );
    assert!(per_worker_after > 0, "no load ran");
    assert_eq!(
        total_errors, 0,
        "transactions through the proxy failed during the failover"
    );

    // New work goes on at the promoted GTM.
    let c = connect("after").await.unwrap();
    let s = c.new_session();
    let (g, _) = c.begin(s, Isolation::ReadCommitted).await.unwrap();
    assert!(g > *all.last().unwrap());
    c.commit(g).await.unwrap();
}

/// The proxy keeps no durable state: killed and started again on its address, components carry
/// on through it, and the sessions it carried end at the GTM after its grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_restart_loses_nothing_durable() {
    let tmp = TempDir::new("proxy-restart");
    let gtm_addr = free_addr();
    let _gtm = Gtm::start("gtm", &tmp.join("gtm"), &gtm_addr, None);
    let config = tmp.join("proxy.toml");
    std::fs::write(&config, "resume_grace_ms = 300\n").unwrap();
    let config = config.to_string_lossy().into_owned();
    let proxy_addr = free_addr();
    let extra = ["--config", config.as_str()];
    let mut proxy = start_proxy_at("gtm_proxy", &proxy_addr, &gtm_addr, &extra, tmp.path());

    let mut options = ClientOptions::new("component");
    options.request_timeout = Duration::from_secs(10);
    let component = GtmClient::connect(vec![proxy_addr.clone()], options)
        .await
        .unwrap();
    let s = component.new_session();
    let (orphan, _) = component.begin(s, Isolation::ReadCommitted).await.unwrap();
    component
        .create_sequence("kept", Default::default())
        .await
        .unwrap();

    proxy.kill9();
    let _proxy = start_proxy_at("gtm_proxy", &proxy_addr, &gtm_addr, &extra, tmp.path());

    // The same client reconnects to the restarted proxy and goes on.
    let s2 = component.new_session();
    let (gxid, _, snap) = component
        .begin_with_snapshot(s2, Isolation::ReadCommitted)
        .await
        .expect("begin through the restarted proxy");
    assert!(gxid > orphan && snap.xip.contains(&gxid));
    component.commit(gxid).await.unwrap();
    assert!(component.nextval("kept").await.is_ok(), "GTM state lost");

    // The transaction the dead proxy carried ends once its grace period passed.
    let observer = GtmClient::connect(vec![gtm_addr.clone()], ClientOptions::new("observer"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while observer.status(orphan).await.unwrap() != TxnStatus::Aborted {
        assert!(Instant::now() < deadline, "{orphan} still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!observer.snapshot(1).await.unwrap().xip.contains(&orphan));
}
