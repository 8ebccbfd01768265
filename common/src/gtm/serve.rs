//! The server side of a GTM-protocol connection, shared by the GTM and the GTM proxy: the
//! `Hello` handshake, the loop that reads request frames, and the writer task that sends
//! queued answers with one flush.
//!
//! ```text
//!  accept ─▶ read_hello (10 s; FrameError for anything else) ─▶ the server's own Welcome
//!        ─▶ spawn write_queued(writer, rx) ─▶ read_requests(reader, on_frame, out)
//! ```

use super::codec::{self, FrameReader, FrameWriter};
use super::proto::{
    ClientFrame, ErrorCode, GtmError, Hello, ServerFrame, WireRequest, PROTOCOL_VERSION,
};
use std::io;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a new connection may take to say `Hello`.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the connection's `Hello`. Anything else as the first frame, or another protocol
/// version, gets a `FrameError` naming the problem and `None` (the caller closes the
/// connection); so does a client that leaves without a word. `server_kind` names the server in
/// messages ("GTM", "GTM proxy").
pub async fn read_hello(
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
    server_kind: &str,
) -> io::Result<Option<Hello>> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, codec::recv::<ClientFrame>(reader))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no Hello within 10 s"))??;
    let error = match first {
        None => return Ok(None),
        Some(Ok(ClientFrame::Hello(hello))) if hello.protocol_version == PROTOCOL_VERSION => {
            return Ok(Some(hello))
        }
        Some(Ok(ClientFrame::Hello(hello))) => GtmError::new(
            ErrorCode::Malformed,
            format!(
                "client speaks GTM protocol {}, this {server_kind} {PROTOCOL_VERSION}",
                hello.protocol_version
            ),
        ),
        Some(Ok(_)) => GtmError::new(ErrorCode::Malformed, "the first frame must be Hello"),
        Some(Err(e)) => e,
    };
    codec::send(writer, &ServerFrame::FrameError(error)).await?;
    Ok(None)
}

/// Reads request frames until the client leaves, handing each batch to `on_frame`; a frame
/// that is not a request batch gets a `FrameError` through `out` and the connection goes on.
/// Stops early when `on_frame` returns false (the server is shutting down).
pub async fn read_requests(
    reader: &mut FrameReader,
    out: &mpsc::UnboundedSender<ServerFrame>,
    mut on_frame: impl FnMut(Vec<WireRequest>) -> bool,
) -> io::Result<()> {
    loop {
        let error = match codec::recv::<ClientFrame>(reader).await? {
            None => return Ok(()),
            Some(Ok(ClientFrame::Requests(requests))) => {
                if !on_frame(requests) {
                    return Ok(());
                }
                continue;
            }
            Some(Ok(other)) => GtmError::new(
                ErrorCode::Malformed,
                format!("unexpected frame from a client: {}", frame_name(&other)),
            ),
            Some(Err(e)) => e,
        };
        let _ = out.send(ServerFrame::FrameError(error));
    }
}

fn frame_name(frame: &ClientFrame) -> &'static str {
    match frame {
        ClientFrame::Hello(_) => "Hello",
        ClientFrame::Requests(_) => "Requests",
        ClientFrame::ReplicaAck { .. } => "ReplicaAck",
    }
}

/// Writes answers as they come, coalescing whatever is queued into one flush.
pub async fn write_queued(mut writer: FrameWriter, mut rx: mpsc::UnboundedReceiver<ServerFrame>) {
    while let Some(frame) = rx.recv().await {
        if codec::feed(&mut writer, &frame).await.is_err() {
            return;
        }
        while let Ok(frame) = rx.try_recv() {
            if codec::feed(&mut writer, &frame).await.is_err() {
                return;
            }
        }
        if codec::flush(&mut writer).await.is_err() {
            return;
        }
    }
}
