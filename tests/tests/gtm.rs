//! End-to-end tests of `rxc-gtm`: real processes, real sockets, `kill -9`.

use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::gtm::codec;
use rxc_common::gtm::proto::{
    ClientFrame, ErrorCode, Hello, NodeInfo, NodeKind, Request, Response, SeqOptions, ServerFrame,
    TxnStatus, WireRequest, PROTOCOL_VERSION,
};
use rxc_common::txn::{Gxid, Isolation};
use rxc_tests::{free_addr, run, Gtm, TempDir};
use std::time::{Duration, Instant};

async fn client(addr: &str, name: &str) -> GtmClient {
    GtmClient::connect(vec![addr.to_string()], ClientOptions::new(name))
        .await
        .expect("connect to GTM")
}

/// After `kill -9` and a restart, no GXID or sequence value is ever handed out again, and the
/// registry and the 2PC log are as they were.
#[tokio::test]
async fn kill9_restart_repeats_nothing() {
    let tmp = TempDir::new("gtm-kill9");
    let dir = tmp.join("gtm");
    let addr = free_addr();
    let mut seen_gxids = Vec::new();
    let mut seen_values = Vec::new();
    for round in 0..3 {
        let mut gtm = Gtm::start("gtm", &dir, &addr, None);
        let c = client(&addr, "kill9").await;
        if round == 0 {
            c.create_sequence(
                "s",
                SeqOptions {
                    cache: Some(3),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            let node = NodeInfo {
                name: "dn1".into(),
                kind: NodeKind::Datanode,
                host: "127.0.0.1".into(),
                port: 15432,
            };
            c.register_node(node).await.unwrap();
            // A decided two-phase commit and an undecided one, in the log.
            let session = c.new_session();
            for (gid, decide) in [("g-decided", true), ("g-open", false)] {
                let (gxid, _) = c.begin(session, Isolation::ReadCommitted).await.unwrap();
                c.prepare(gxid, gid, vec!["dn1".into()], "coord1")
                    .await
                    .unwrap();
                if decide {
                    c.decide(gid, true).await.unwrap();
                }
            }
        } else {
            let mut logged: Vec<_> = c
                .list_prepared(false)
                .await
                .unwrap()
                .into_iter()
                .map(|t| (t.gid, t.decision, t.participants))
                .collect();
            logged.sort();
            assert_eq!(
                logged,
                vec![
                    ("g-decided".to_string(), Some(true), vec!["dn1".to_string()]),
                    ("g-open".to_string(), None, vec!["dn1".to_string()]),
                ],
                "the 2PC log did not survive kill -9"
            );
            let nodes = c.list_nodes().await.unwrap();
            assert_eq!(
                nodes.len(),
                1,
                "the registry did not survive kill -9: {nodes:?}"
            );
            assert_eq!(nodes[0].name, "dn1");
        }
        let session = c.new_session();
        for _ in 0..300 {
            let (gxid, _) = c.begin(session, Isolation::ReadCommitted).await.unwrap();
            c.commit(gxid).await.unwrap();
            seen_gxids.push(gxid.0);
            let (first, count, inc) = c.nextval("s").await.unwrap();
            for i in 0..count as i64 {
                seen_values.push(first + i * inc);
            }
        }
        gtm.process.kill9();
    }
    let mut sorted = seen_gxids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        seen_gxids.len(),
        "a GXID was handed out twice"
    );
    assert!(
        seen_gxids.windows(2).all(|w| w[0] < w[1]),
        "GXIDs not strictly increasing across restarts"
    );
    let mut values = seen_values.clone();
    values.sort_unstable();
    values.dedup();
    assert_eq!(
        values.len(),
        seen_values.len(),
        "a sequence value was handed out twice"
    );
    assert!(
        seen_values.windows(2).all(|w| w[0] < w[1]),
        "sequence values not increasing across restarts"
    );
}

/// A client that drops its connection: its running GXIDs leave the snapshot, so xmin advances.
#[tokio::test]
async fn dropped_client_gxids_leave_the_snapshot() {
    let tmp = TempDir::new("gtm-drop");
    let addr = free_addr();
    let _gtm = Gtm::start("gtm", &tmp.join("gtm"), &addr, None);
    let observer = client(&addr, "observer").await;
    let watcher = observer.new_session();
    let leaver = client(&addr, "leaver").await;
    let s = leaver.new_session();
    let (prepared, _) = leaver.begin(s, Isolation::ReadCommitted).await.unwrap();
    leaver
        .prepare(prepared, "left-behind", vec!["dn1".into()], "coord1")
        .await
        .unwrap();
    let (gxid, _) = leaver.begin(s, Isolation::ReadCommitted).await.unwrap();
    let snap = observer.snapshot(watcher).await.unwrap();
    assert!(
        snap.xip.contains(&gxid),
        "{gxid} should be running: {snap:?}"
    );
    assert_eq!(snap.xmin, prepared);
    drop(leaver);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let snap = observer.snapshot(watcher).await.unwrap();
        if !snap.xip.contains(&gxid) {
            // The prepared one waits for its decision; the other one is gone.
            assert_eq!(snap.xip, vec![prepared], "{snap:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "GXID {gxid} still running after its client left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(observer.status(gxid).await.unwrap(), TxnStatus::Aborted);
    assert!(matches!(
        observer.status(prepared).await.unwrap(),
        TxnStatus::Prepared { .. }
    ));
    // Once decided and finished, xmin advances past both.
    observer.decide("left-behind", false).await.unwrap();
    observer.forget("left-behind").await.unwrap();
    let snap = observer.snapshot(watcher).await.unwrap();
    assert!(snap.xip.is_empty() && snap.xmin > gxid, "{snap:?}");
}

/// Malformed frames and unknown request kinds get error answers; the connection stays usable.
#[tokio::test]
async fn bad_input_gets_error_answers() {
    let tmp = TempDir::new("gtm-bad");
    let addr = free_addr();
    let _gtm = Gtm::start("gtm", &tmp.join("gtm"), &addr, None);
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut reader, mut writer) = codec::split(stream);
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        client_id: 42,
        name: "raw".into(),
        resume_grace_ms: 0,
        standby: None,
    };
    codec::send(&mut writer, &ClientFrame::Hello(hello))
        .await
        .unwrap();
    assert!(matches!(
        codec::recv::<ServerFrame>(&mut reader).await.unwrap(),
        Some(Ok(ServerFrame::Welcome(_)))
    ));

    // A frame that is not a ClientFrame at all.
    futures::SinkExt::send(&mut writer, bytes::Bytes::from_static(&[0xff, 0xff, 0xff]))
        .await
        .unwrap();
    match codec::recv::<ServerFrame>(&mut reader).await.unwrap() {
        Some(Ok(ServerFrame::FrameError(e))) => assert_eq!(e.code, ErrorCode::Malformed),
        other => panic!("expected FrameError, got {other:?}"),
    }

    // A batch with an unknown request kind between two good ones.
    let batch = vec![
        WireRequest::new(1, &Request::Timestamp),
        WireRequest {
            id: 2,
            body: vec![250, 3, 1],
        },
        WireRequest::new(
            3,
            &Request::Begin {
                session: 1,
                isolation: Isolation::ReadCommitted,
            },
        ),
    ];
    codec::send(&mut writer, &ClientFrame::Requests(batch))
        .await
        .unwrap();
    let mut answers = Vec::new();
    while answers.len() < 3 {
        match codec::recv::<ServerFrame>(&mut reader).await.unwrap() {
            Some(Ok(ServerFrame::Responses(r))) => answers.extend(r),
            other => panic!("expected responses, got {other:?}"),
        }
    }
    answers.sort_by_key(|a| a.id);
    assert!(matches!(answers[0].result, Ok(Response::Timestamp(_))));
    assert_eq!(
        answers[1].result.as_ref().unwrap_err().code,
        ErrorCode::Malformed
    );
    assert!(matches!(answers[2].result, Ok(Response::Began { .. })));

    // The server is unharmed for everybody else.
    let c = client(&addr, "after").await;
    assert!(c.timestamp().await.is_ok());
}

/// The standby follows synchronously; after the active is killed and the standby promoted, the
/// new active continues past every GXID and sequence value, and keeps the 2PC log.
#[tokio::test]
async fn standby_promotion_continues_past_everything() {
    let tmp = TempDir::new("gtm-standby");
    let (a_addr, s_addr) = (free_addr(), free_addr());
    let mut active = Gtm::start("gtm", &tmp.join("active"), &a_addr, None);
    let _standby = Gtm::start("gtm_standby", &tmp.join("standby"), &s_addr, Some(&a_addr));
    // Wait for the standby to attach.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out, _) = run("rxc-gtm", &["status", "--gtm", &a_addr]);
        if out.contains("in sync") {
            break;
        }
        assert!(Instant::now() < deadline, "standby never attached: {out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = client(&a_addr, "writer").await;
    c.create_sequence("s", SeqOptions::default()).await.unwrap();
    let session = c.new_session();
    let mut last_gxid = Gxid(0);
    let mut last_value = 0;
    for _ in 0..200 {
        let (g, _) = c.begin(session, Isolation::ReadCommitted).await.unwrap();
        c.commit(g).await.unwrap();
        last_gxid = g;
        last_value = c.nextval("s").await.unwrap().0;
    }
    let (prepared, _) = c.begin(session, Isolation::ReadCommitted).await.unwrap();
    c.prepare(prepared, "gid1", vec!["dn1".into(), "dn2".into()], "coord1")
        .await
        .unwrap();
    c.decide("gid1", true).await.unwrap();

    // A standby refuses to serve.
    let (_, out, _) = run("rxc-gtm", &["status", "--gtm", &s_addr]);
    assert!(out.contains("role:        standby"), "{out}");
    let direct = GtmClient::connect(vec![s_addr.clone()], ClientOptions::new("x")).await;
    assert!(
        direct.is_err(),
        "a plain client must not settle on a standby"
    );

    active.process.kill9();
    let (ok, out, err) = run("rxc-gtm", &["promote", "--gtm", &s_addr]);
    assert!(ok, "promote failed: {out} {err}");
    let c2 = client(&s_addr, "after").await;
    let s2 = c2.new_session();
    let (g, _) = c2.begin(s2, Isolation::ReadCommitted).await.unwrap();
    assert!(
        g > prepared && prepared > last_gxid,
        "GXID {g} not past {prepared}"
    );
    let (v, _, _) = c2.nextval("s").await.unwrap();
    assert!(v > last_value, "sequence value {v} not past {last_value}");
    let logged = c2.list_prepared(false).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].decision, Some(true));
    c2.commit(prepared).await.unwrap();
    let (_, out, _) = run("rxc-gtm", &["status", "--gtm", &s_addr]);
    assert!(out.contains("role:        active"), "{out}");
}

/// Bad configuration, a port in use and an unusable data directory give a one-line error and a
/// non-zero exit.
#[test]
fn startup_errors_are_clear() {
    let tmp = TempDir::new("gtm-errors");
    let config = tmp.join("gtm.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_backlog = 5\n").unwrap();
    let data = tmp.join("data");
    let (ok, _, err) = run(
        "rxc-gtm",
        &[
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("listen_backlog") && err.contains("gtm.toml"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let file = tmp.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let (ok, _, err) = run(
        "rxc-gtm",
        &[
            "--data-dir",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(!ok);
    assert!(err.contains("a-file"), "{err}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let (ok, _, err) = run(
        "rxc-gtm",
        &["--data-dir", data.to_str().unwrap(), "--listen", &busy_addr],
    );
    assert!(!ok);
    assert!(
        err.contains("cannot listen on") && err.contains(&busy_addr),
        "{err}"
    );
}
