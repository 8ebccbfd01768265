//! The snapshot coalescing rule, checked against a scripted GTM: the proxy runs in-process in
//! front of a fake GTM that records every request and answers snapshots only when the test says
//! so, numbering them (`xmax` = 100, 200, ...) so that each answer tells which round it was.
//!
//! - Requests that arrive while no round is in flight start one.
//! - Requests that arrive while a round is in flight wait for the next round, and are never
//!   answered with the round that was in flight.
//! - Those waiting requests share one upstream snapshot, held for all of their sessions.

use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::gtm::codec;
use rxc_common::gtm::proto::{
    decode, ClientFrame, Request, Response, Role, ServerFrame, SessionId, Welcome, WireResponse,
    PROTOCOL_VERSION,
};
use rxc_common::shutdown::Shutdown;
use rxc_common::txn::{Gxid, Snapshot};
use rxc_gtm_proxy::{ProxyOptions, ProxyServer};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the fake GTM saw: a snapshot request, for these upstream sessions.
#[derive(Debug)]
struct SnapshotAsked {
    sessions: Vec<SessionId>,
}

/// A GTM that answers everything at once except snapshots, which wait for `release`.
async fn fake_gtm(
    listener: TcpListener,
    asked: mpsc::UnboundedSender<SnapshotAsked>,
    mut release: mpsc::UnboundedReceiver<()>,
) {
    let Ok((stream, _)) = listener.accept().await else {
        return;
    };
    let (mut reader, mut writer) = codec::split(stream);
    let Ok(Some(Ok(ClientFrame::Hello(_)))) = codec::recv::<ClientFrame>(&mut reader).await else {
        return;
    };
    let welcome = Welcome {
        protocol_version: PROTOCOL_VERSION,
        server_name: "fake".into(),
        role: Role::Active,
    };
    if codec::send(&mut writer, &ServerFrame::Welcome(welcome))
        .await
        .is_err()
    {
        return;
    }
    let mut held = std::collections::VecDeque::new();
    let mut rounds = 0u64;
    loop {
        tokio::select! {
            frame = codec::recv::<ClientFrame>(&mut reader) => {
                let Ok(Some(Ok(ClientFrame::Requests(requests)))) = frame else { return };
                let mut answers = Vec::new();
                for request in requests {
                    match decode::<Request>(&request.body) {
                        Ok(Request::Snapshot { sessions }) => {
                            let _ = asked.send(SnapshotAsked { sessions });
                            held.push_back(request.id);
                        }
                        _ => answers.push(WireResponse { id: request.id, result: Ok(Response::Ok) }),
                    }
                }
                if !answers.is_empty() && codec::send(&mut writer, &ServerFrame::Responses(answers)).await.is_err() {
                    return;
                }
            }
            released = release.recv() => {
                let (Some(()), Some(id)) = (released, held.pop_front()) else { return };
                rounds += 1;
                let snapshot = Snapshot {
                    xmin: Gxid(3),
                    xmax: Gxid(100 * rounds),
                    xip: Vec::new(),
                    global_xmin: Gxid(3),
                };
                let answer = WireResponse { id, result: Ok(Response::Snapshot(snapshot)) };
                if codec::send(&mut writer, &ServerFrame::Responses(vec![answer])).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn expect_no_snapshot_request(asked: &mut mpsc::UnboundedReceiver<SnapshotAsked>) {
    let more = tokio::time::timeout(Duration::from_millis(150), asked.recv()).await;
    assert!(more.is_err(), "a second round went upstream: {more:?}");
}

async fn next_snapshot_request(
    asked: &mut mpsc::UnboundedReceiver<SnapshotAsked>,
) -> SnapshotAsked {
    tokio::time::timeout(Duration::from_secs(5), asked.recv())
        .await
        .expect("a snapshot request reaches the GTM")
        .expect("fake GTM running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_requests_wait_for_the_next_round_and_share_it() {
    let gtm_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gtm_addr = gtm_listener.local_addr().unwrap().to_string();
    let (asked_tx, mut asked) = mpsc::unbounded_channel();
    let (release, release_rx) = mpsc::unbounded_channel();
    tokio::spawn(fake_gtm(gtm_listener, asked_tx, release_rx));

    let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy_listener.local_addr().unwrap().to_string();
    let proxy = ProxyServer::new(
        proxy_listener,
        ProxyOptions {
            name: "proxy".into(),
            gtm: vec![gtm_addr],
            resume_grace_ms: 0,
            request_timeout: Duration::from_secs(10),
        },
    );
    let shutdown = Shutdown::new();
    let proxy_task = tokio::spawn(proxy.run(shutdown.clone()));

    let connect = |name: &'static str| {
        let addr = proxy_addr.clone();
        async move {
            GtmClient::connect(vec![addr], ClientOptions::new(name))
                .await
                .unwrap()
        }
    };
    let (a, b, c) = (connect("a").await, connect("b").await, connect("c").await);
    let snapshot_of = |client: &GtmClient| {
        let client = client.clone();
        let session = client.new_session();
        tokio::spawn(async move { client.snapshot(session).await.unwrap() })
    };

    // A alone: its request starts round 1, which the GTM holds.
    let first = snapshot_of(&a);
    let round1 = next_snapshot_request(&mut asked).await;
    assert_eq!(round1.sessions.len(), 1);

    // B and C arrive while round 1 is in flight: no round goes up for them yet.
    let second = snapshot_of(&b);
    let third = snapshot_of(&c);
    expect_no_snapshot_request(&mut asked).await;
    assert!(!second.is_finished() && !third.is_finished());

    // Round 1 answers A only; then one round 2 goes up for both B and C.
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap().xmax, Gxid(100));
    let round2 = next_snapshot_request(&mut asked).await;
    assert_eq!(round2.sessions.len(), 2, "{round2:?}");
    assert!(!round2.sessions.contains(&round1.sessions[0]));
    expect_no_snapshot_request(&mut asked).await;
    assert!(!second.is_finished() && !third.is_finished());

    release.send(()).unwrap();
    assert_eq!(second.await.unwrap().xmax, Gxid(200));
    assert_eq!(third.await.unwrap().xmax, Gxid(200));

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(5), proxy_task)
        .await
        .expect("proxy stops")
        .unwrap()
        .unwrap();
}
