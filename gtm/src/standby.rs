//! Synchronous replication between an active GTM and its standby.
//!
//! ```text
//!  standby                                   active
//!    Hello { standby: Some(name) } ─────────▶
//!                                  ◀───────── Welcome
//!                                  ◀───────── ReplicaImage { seq, state }   (the whole state)
//!    ReplicaAck { seq } ────────────────────▶
//!                                  ◀───────── ReplicaBatch { seq, commands } (every batch)
//!    ReplicaAck { seq } ────────────────────▶ (only now does the active answer its clients)
//! ```
//!
//! The standby applies the active's commands to its own copy of the state machine, writes its own
//! `gtm.control` when the state machine says so, and acknowledges. When the link breaks it keeps
//! trying to attach again (taking a fresh image) until it is promoted.

use crate::server::Job;
use crate::state::{Command, GtmState};
use rxc_common::gtm::client::{handshake, io_error, random_client_id};
use rxc_common::gtm::codec::{self, FrameReader, FrameWriter};
use rxc_common::gtm::proto::{
    decode, ClientFrame, ErrorCode, GtmError, Hello, Role, ServerFrame, PROTOCOL_VERSION,
};
use rxc_common::shutdown::Shutdown;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// The active side of a standby connection.
pub struct Link {
    reader: FrameReader,
    writer: FrameWriter,
}

impl Link {
    pub(crate) fn new(reader: FrameReader, writer: FrameWriter) -> Self {
        Link { reader, writer }
    }

    /// Sends a frame and waits for the standby's acknowledgement of `seq`.
    pub(crate) async fn exchange(&mut self, frame: &ServerFrame, seq: u64) -> Result<(), GtmError> {
        codec::send(&mut self.writer, frame)
            .await
            .map_err(io_error)?;
        loop {
            match codec::recv::<ClientFrame>(&mut self.reader)
                .await
                .map_err(io_error)?
            {
                Some(Ok(ClientFrame::ReplicaAck { seq: acked })) if acked == seq => return Ok(()),
                Some(Ok(ClientFrame::ReplicaAck { .. })) => continue,
                Some(Ok(_)) => {
                    return Err(GtmError::new(
                        ErrorCode::Malformed,
                        "standby sent something other than an ack",
                    ))
                }
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(GtmError::new(
                        ErrorCode::Io,
                        "standby closed the connection",
                    ))
                }
            }
        }
    }
}

/// Follows the active GTM at `active` until promoted (`stop`) or shut down.
pub(crate) async fn follow(
    active: String,
    name: String,
    jobs: mpsc::UnboundedSender<Job>,
    stop: Shutdown,
    shutdown: Shutdown,
) {
    let client_id = random_client_id();
    let mut logged_down = false;
    while !stop.is_triggered() && !shutdown.is_triggered() {
        let result = tokio::select! {
            r = follow_once(&active, &name, client_id, &jobs) => r,
            _ = stop.wait() => break,
            _ = shutdown.wait() => break,
        };
        let _ = jobs.send(Job::UpstreamState { connected: false });
        match result {
            Ok(()) => tracing::warn!(%active, "active GTM closed the replication connection"),
            Err(e) if !logged_down => {
                tracing::warn!(%active, error = %e, "replication from the active GTM is down; retrying");
                logged_down = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.wait() => break,
            _ = shutdown.wait() => break,
        }
    }
    tracing::info!("stopped following the active GTM");
}

async fn follow_once(
    active: &str,
    name: &str,
    client_id: u64,
    jobs: &mpsc::UnboundedSender<Job>,
) -> Result<(), GtmError> {
    let stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(active))
        .await
        .map_err(|_| GtmError::new(ErrorCode::Io, "connection timed out"))?
        .map_err(io_error)?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        client_id,
        name: format!("standby {name}"),
        resume_grace_ms: 0,
        standby: Some(name.to_string()),
    };
    let (mut reader, mut writer, role) = handshake(stream, &hello).await?;
    if role != Role::Active {
        return Err(GtmError::new(
            ErrorCode::NotActive,
            format!("{active} is not an active GTM"),
        ));
    }
    let mut attached = false;
    loop {
        let frame = match codec::recv::<ServerFrame>(&mut reader)
            .await
            .map_err(io_error)?
        {
            None => return Ok(()),
            Some(frame) => frame?,
        };
        let (seq, done_rx) = match frame {
            ServerFrame::ReplicaImage { seq, image } => {
                let state: GtmState = decode(&image)?;
                let (done, rx) = oneshot::channel();
                jobs.send(Job::ReplicaImage {
                    state: Box::new(state),
                    done,
                })
                .map_err(|_| stopped())?;
                (seq, rx)
            }
            ServerFrame::ReplicaBatch { seq, commands } => {
                let commands: Vec<Command> = decode(&commands)?;
                let (done, rx) = oneshot::channel();
                jobs.send(Job::ReplicaBatch { commands, done })
                    .map_err(|_| stopped())?;
                (seq, rx)
            }
            ServerFrame::FrameError(e) => return Err(e),
            other => {
                return Err(GtmError::new(
                    ErrorCode::Malformed,
                    format!("unexpected replication frame {other:?}"),
                ))
            }
        };
        done_rx.await.map_err(|_| stopped())?;
        codec::send(&mut writer, &ClientFrame::ReplicaAck { seq })
            .await
            .map_err(io_error)?;
        if !attached {
            attached = true;
            tracing::info!(%active, "standby in sync with the active GTM; streaming");
            let _ = jobs.send(Job::UpstreamState { connected: true });
        }
    }
}

fn stopped() -> GtmError {
    GtmError::new(ErrorCode::Io, "GTM core stopped")
}
