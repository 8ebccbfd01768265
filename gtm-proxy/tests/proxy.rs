//! End-to-end tests of `rxc-gtm-proxy`: the real `rxc-gtm` and `rxc-gtm-proxy` binaries on
//! ephemeral loopback ports, driven through the proxy with the shared GTM client (and, for
//! protocol errors, with raw frames).
//!
//! The binaries come from the workspace target directory through the `rxc-tests` harness:
//! build them first (`tests/run.sh` builds the whole workspace).

use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::gtm::codec;
use rxc_common::gtm::proto::{
    decode, encode, ClientFrame, ErrorCode, Hello, Request, Response, Role, ServerFrame, TxnStatus,
    WireRequest, PROTOCOL_VERSION,
};
use rxc_common::txn::{Gxid, Isolation};
use rxc_tests::{free_addr, run, start_proxy_at, Process, TempDir};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One GTM and one proxy in front of it, with their data and logs in a temp dir.
struct Cluster {
    // Dropped in this order: the proxy, then the GTM, then their directory.
    proxy: Process,
    _gtm: Process,
    gtm_addr: String,
    proxy_addr: String,
    dir: TempDir,
}

fn start_gtm(dir: &Path, name: &str, addr: &str) -> Process {
    let data = dir.join(name);
    let data = data.to_string_lossy();
    Process::start(
        name,
        "rxc-gtm",
        &["--node-name", name, "--listen", addr, "--data-dir", &data],
        dir.join(format!("{name}.log")),
    )
}

/// Starts the proxy and waits until it listens (a test may connect to it with a raw socket,
/// which does not retry).
fn start_proxy(dir: &Path, addr: &str, gtm: &str) -> Process {
    start_proxy_at("gtm_proxy", addr, gtm, &[], dir)
}

impl Cluster {
    async fn start(label: &str) -> Cluster {
        let dir = TempDir::new(label);
        let (gtm_addr, proxy_addr) = (free_addr(), free_addr());
        let gtm = start_gtm(dir.path(), "gtm", &gtm_addr);
        let proxy = start_proxy(dir.path(), &proxy_addr, &gtm_addr);
        drop(connect(&gtm_addr, "probe").await);
        Cluster {
            proxy,
            _gtm: gtm,
            gtm_addr,
            proxy_addr,
            dir,
        }
    }

    async fn client(&self, name: &str) -> GtmClient {
        connect(&self.proxy_addr, name).await
    }
}

/// A client of `addr`, retrying while the server starts.
async fn connect(addr: &str, name: &str) -> GtmClient {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut options = ClientOptions::new(name);
        options.request_timeout = Duration::from_secs(10);
        match GtmClient::connect(vec![addr.to_string()], options).await {
            Ok(client) => return client,
            Err(e) if Instant::now() > deadline => panic!("cannot connect to {addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Polls `check` until it holds (or fails after 10 s).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_through_the_proxy() {
    let cluster = Cluster::start("sessions").await;

    // The proxy introduces itself as a proxy in front of the GTM (once it reached the GTM).
    let admin = cluster.client("admin").await;
    let status = admin.server_status().await.unwrap();
    assert_eq!(status.role, Role::Proxy);
    assert_eq!(status.name, "gtm_proxy");
    eventually("the proxy reaches the GTM", || {
        let (admin, gtm) = (admin.clone(), cluster.gtm_addr.clone());
        async move { admin.server_status().await.unwrap().upstream == Some(gtm) }
    })
    .await;

    // Sessions on several connections begin + snapshot (one frame) and commit. A snapshot
    // never shows as running a GXID whose commit was acknowledged before it was asked for.
    let committed: Arc<Mutex<Vec<Gxid>>> = Arc::default();
    let mut workers = Vec::new();
    for c in 0..4 {
        let client = cluster.client(&format!("worker-{c}")).await;
        for _ in 0..4 {
            let (client, committed) = (client.clone(), committed.clone());
            workers.push(tokio::spawn(async move {
                let session = client.new_session();
                let mut gxids = Vec::new();
                for _ in 0..40 {
                    let acknowledged = committed.lock().unwrap().clone();
                    let (gxid, _, snapshot) = client
                        .begin_with_snapshot(session, Isolation::ReadCommitted)
                        .await
                        .unwrap();
                    assert!(
                        snapshot.xip.contains(&gxid),
                        "{gxid} not running in {snapshot:?}"
                    );
                    assert!(snapshot.xmax > gxid);
                    for done in &acknowledged {
                        assert!(snapshot.is_finished(*done), "{done} committed but running");
                    }
                    client.commit(gxid).await.unwrap();
                    committed.lock().unwrap().push(gxid);
                    gxids.push(gxid);
                }
                gxids
            }));
        }
    }
    let mut all = Vec::new();
    for worker in workers {
        let gxids = worker.await.unwrap();
        assert!(gxids.windows(2).all(|w| w[0] < w[1]), "{gxids:?}");
        all.extend(gxids);
    }
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count, "a GXID was handed out twice");

    // A snapshot through another connection shows a running GXID, and not once it committed.
    let (a, b) = (cluster.client("a").await, cluster.client("b").await);
    let (sa, sb) = (a.new_session(), b.new_session());
    let (running, _) = a.begin(sa, Isolation::RepeatableRead).await.unwrap();
    assert!(running > *all.last().unwrap());
    assert!(b.snapshot(sb).await.unwrap().xip.contains(&running));
    a.commit(running).await.unwrap();
    assert!(!b.snapshot(sb).await.unwrap().xip.contains(&running));
    assert_eq!(b.status(running).await.unwrap(), TxnStatus::Committed);

    let status = admin.server_status().await.unwrap();
    assert!(status.next_gxid > running);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_ends_its_sessions() {
    let cluster = Cluster::start("disconnect").await;
    let gone = cluster.client("gone").await;
    let (s1, s2) = (gone.new_session(), gone.new_session());
    let (g1, _, _) = gone
        .begin_with_snapshot(s1, Isolation::ReadCommitted)
        .await
        .unwrap();
    let (g2, _, _) = gone
        .begin_with_snapshot(s2, Isolation::ReadCommitted)
        .await
        .unwrap();
    let observer = cluster.client("observer").await;
    let so = observer.new_session();
    let before = observer.snapshot(so).await.unwrap();
    assert!(before.xip.contains(&g1) && before.xip.contains(&g2));
    assert!(before.global_xmin <= g1);

    drop(gone); // its connection to the proxy closes

    // The GTM itself (asked directly) no longer runs them, and their snapshots are released.
    let direct = connect(&cluster.gtm_addr, "direct").await;
    let sd = direct.new_session();
    eventually(
        "the closed connection's GXIDs leave the GTM's snapshot",
        || {
            let direct = direct.clone();
            async move {
                let snapshot = direct.snapshot(sd).await.unwrap();
                !snapshot.xip.contains(&g1) && !snapshot.xip.contains(&g2)
            }
        },
    )
    .await;
    direct.release_snapshot(sd).await.unwrap();
    observer.release_snapshot(so).await.unwrap();
    assert_eq!(direct.status(g1).await.unwrap(), TxnStatus::Aborted);
    assert_eq!(direct.status(g2).await.unwrap(), TxnStatus::Aborted);
    let after = observer.snapshot(so).await.unwrap();
    assert!(after.global_xmin > g2, "snapshots still held: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_moves_the_proxy_to_another_gtm() {
    let cluster = Cluster::start("reconnect").await;
    let other_addr = free_addr();
    let _other = start_gtm(cluster.dir.path(), "gtm_other", &other_addr);
    let other = connect(&other_addr, "other-direct").await;

    let admin = cluster.client("admin").await;
    let bad = admin
        .call(Request::Reconnect {
            address: "not an address".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidParameter);
    let answer = admin
        .call(Request::Reconnect {
            address: other_addr.clone(),
        })
        .await
        .unwrap();
    assert_eq!(answer, Response::Ok);
    eventually("the proxy reports the new upstream", || {
        let admin = admin.clone();
        let other_addr = other_addr.clone();
        async move {
            let status = admin.server_status().await.unwrap();
            status.upstream.as_deref() == Some(other_addr.as_str())
        }
    })
    .await;

    // New work through the proxy runs on the other GTM.
    let client = cluster.client("after-reconnect").await;
    let session = client.new_session();
    let (gxid, _, _) = client
        .begin_with_snapshot(session, Isolation::ReadCommitted)
        .await
        .unwrap();
    assert_eq!(other.server_status().await.unwrap().running, 1);
    assert_eq!(other.status(gxid).await.unwrap(), TxnStatus::InProgress);
    client.commit(gxid).await.unwrap();
    assert_eq!(other.status(gxid).await.unwrap(), TxnStatus::Committed);

    // SIGTERM stops the proxy cleanly.
    let mut cluster = cluster;
    let status = cluster.proxy.terminate(Duration::from_secs(10));
    let status = status.expect("the proxy did not exit within 10 s of SIGTERM");
    assert!(status.success(), "proxy exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_are_answered_and_the_connection_stays() {
    let cluster = Cluster::start("protocol").await;
    let hello = |standby: Option<String>| Hello {
        protocol_version: PROTOCOL_VERSION,
        client_id: 42,
        name: "raw".into(),
        resume_grace_ms: 0,
        standby,
    };
    let stream = tokio::net::TcpStream::connect(&cluster.proxy_addr)
        .await
        .unwrap();
    let (mut reader, mut writer) = codec::split(stream);
    codec::send(&mut writer, &ClientFrame::Hello(hello(None)))
        .await
        .unwrap();
    match codec::recv::<ServerFrame>(&mut reader).await.unwrap() {
        Some(Ok(ServerFrame::Welcome(w))) => assert_eq!(w.role, Role::Proxy),
        other => panic!("expected Welcome, got {other:?}"),
    }

    // A body that is no request gets an error answer; its neighbour in the frame is served.
    let begin = Request::Begin {
        session: 1,
        isolation: Isolation::ReadCommitted,
    };
    let requests = vec![
        WireRequest {
            id: 1,
            body: vec![250, 7, 7],
        },
        WireRequest::new(2, &begin),
    ];
    codec::send(&mut writer, &ClientFrame::Requests(requests))
        .await
        .unwrap();
    let mut answers = Vec::new();
    while answers.len() < 2 {
        match codec::recv::<ServerFrame>(&mut reader).await.unwrap() {
            Some(Ok(ServerFrame::Responses(r))) => answers.extend(r),
            other => panic!("expected Responses, got {other:?}"),
        }
    }
    answers.sort_by_key(|a| a.id);
    assert_eq!(answers[0].id, 1);
    assert_eq!(
        answers[0].result.as_ref().unwrap_err().code,
        ErrorCode::Malformed
    );
    assert!(matches!(answers[1].result, Ok(Response::Began { .. })));

    // A frame that is no ClientFrame gets a FrameError, and the connection still serves.
    use futures::SinkExt;
    writer
        .send(bytes::Bytes::from_static(&[99, 1, 2, 3]))
        .await
        .unwrap();
    match codec::recv::<ServerFrame>(&mut reader).await.unwrap() {
        Some(Ok(ServerFrame::FrameError(e))) => assert_eq!(e.code, ErrorCode::Malformed),
        other => panic!("expected FrameError, got {other:?}"),
    }
    let requests = vec![WireRequest::new(3, &Request::Timestamp)];
    codec::send(&mut writer, &ClientFrame::Requests(requests))
        .await
        .unwrap();
    match codec::recv::<ServerFrame>(&mut reader).await.unwrap() {
        Some(Ok(ServerFrame::Responses(r))) => {
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].id, 3);
            assert!(matches!(r[0].result, Ok(Response::Timestamp(_))));
        }
        other => panic!("expected Responses, got {other:?}"),
    }

    // A standby GTM is refused.
    let stream = tokio::net::TcpStream::connect(&cluster.proxy_addr)
        .await
        .unwrap();
    let (mut reader, mut writer) = codec::split(stream);
    let frame = encode(&ClientFrame::Hello(hello(Some("standby".into()))));
    writer.send(bytes::Bytes::from(frame)).await.unwrap();
    let reply = reader_next(&mut reader).await;
    assert!(
        matches!(reply, Some(ServerFrame::FrameError(_))),
        "{reply:?}"
    );
}

async fn reader_next(reader: &mut codec::FrameReader) -> Option<ServerFrame> {
    use futures::StreamExt;
    let bytes = reader.next().await?.ok()?;
    decode(&bytes).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_for_a_gtm_that_starts_late() {
    let dir = TempDir::new("late");
    let (gtm_addr, proxy_addr) = (free_addr(), free_addr());
    let _proxy = start_proxy(dir.path(), &proxy_addr, &gtm_addr);
    let client = connect(&proxy_addr, "early").await;
    let session = client.new_session();
    let pending = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .begin_with_snapshot(session, Isolation::ReadCommitted)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "answered without a GTM");
    let _gtm = start_gtm(dir.path(), "gtm", &gtm_addr);
    let (gxid, _, snapshot) = pending.await.unwrap().unwrap();
    assert!(snapshot.xip.contains(&gxid));
    client.commit(gxid).await.unwrap();
}

#[test]
fn bad_settings_fail_with_one_line() {
    let dir = TempDir::new("config");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let (ok, _, stderr) = run(
        "rxc-gtm-proxy",
        &["--listen", &taken_addr, "--gtm", "127.0.0.1:1"],
    );
    assert!(!ok);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    let config = dir.join("proxy.toml");
    std::fs::write(&config, "node_name = \"p\"\nresume_grace = 5\n").unwrap();
    let (ok, _, stderr) = run("rxc-gtm-proxy", &["--config", &config.to_string_lossy()]);
    assert!(!ok);
    assert!(stderr.contains("unknown field `resume_grace`"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    drop(taken);
}
