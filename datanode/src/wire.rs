//! The connection loop of the PostgreSQL wire endpoint, over a socket that sends a response
//! in one piece.
//!
//! pgwire's handlers flush after each message they send (BindComplete, then the rows and
//! CommandComplete, then ReadyForQuery), so a prepared statement's answer went out as three
//! TCP sends, and the client woke up three times for it. [`Batched`] holds what is written
//! until the answer is complete, the way PostgreSQL's backend buffers its output until it
//! waits for the client:
//!
//! - a flush after ReadyForQuery (the end of every answer to Sync or a simple Query) sends;
//! - before reading from the client it sends what is held (an authentication request, a
//!   CopyInResponse, the answer to a client's Flush — anything the client may be waiting for
//!   while the server waits for it);
//! - more than [`HOLD_LIMIT`] bytes held are sent at once (large results stream);
//! - shutdown sends first.
//!
//! [`serve`] is pgwire's `process_socket` loop (TLS negotiation, startup timeout, Terminate,
//! cancel requests, fatal errors) over such a socket.

use futures::StreamExt;
use pgwire::api::{ClientInfo, ErrorHandler, PgWireConnectionState, PgWireServerHandlers};
use pgwire::messages::PgWireFrontendMessage;
use pgwire::tokio::server::{negotiate_tls, process_error, process_message, MaybeTls};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

/// Bytes held before they are sent whatever else happens.
pub const HOLD_LIMIT: usize = 64 * 1024;

/// How long a client has to finish startup and authentication (as pgwire's loop).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A socket that holds written bytes until an answer is complete (see the module docs).
#[derive(Debug)]
pub struct Batched<S> {
    inner: S,
    held: Vec<u8>,
    /// How much of `held` is already sent.
    sent: usize,
    /// The held bytes end an answer: the next flush sends them.
    complete: bool,
}

impl<S> Batched<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Batched {
            inner,
            held: Vec::new(),
            sent: 0,
            complete: false,
        }
    }
}

/// Whether `bytes` end with a ReadyForQuery message (`Z`, length 5, status `I`/`T`/`E`).
fn ends_answer(bytes: &[u8]) -> bool {
    matches!(bytes, [.., b'Z', 0, 0, 0, 5, b'I' | b'T' | b'E'])
}

impl<S: AsyncWrite + Unpin> Batched<S> {
    /// Sends everything held.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        self.complete = false;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Batched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.held.is_empty() {
            std::task::ready!(this.poll_send_held(cx))?;
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Batched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.len() + buf.len() > HOLD_LIMIT && !this.held.is_empty() {
            std::task::ready!(this.poll_send_held(cx))?;
        }
        this.held.extend_from_slice(buf);
        this.complete = ends_answer(&this.held);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.complete || this.held.len() > HOLD_LIMIT {
            this.poll_send_held(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Serves one client connection with `handlers` until it ends.
pub async fn serve<H: PgWireServerHandlers>(socket: TcpStream, handlers: H) -> io::Result<()> {
    let startup_timeout = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_timeout);
    let negotiated = tokio::select! {
        _ = &mut startup_timeout => return Ok(()),
        socket = negotiate_tls(socket, None) => socket?,
    };
    // A client asking for direct TLS, which this endpoint does not offer.
    let Some(negotiated) = negotiated else {
        return Ok(());
    };
    let old = negotiated.into_parts();
    let mut parts = FramedParts::new(Batched::<MaybeTls>::new(old.io), old.codec);
    parts.read_buf = old.read_buf;
    parts.write_buf = old.write_buf;
    let mut socket = Framed::from_parts(parts);
    socket.set_state(PgWireConnectionState::AwaitingStartup);

    let startup_handler = handlers.startup_handler();
    let simple_query_handler = handlers.simple_query_handler();
    let extended_query_handler = handlers.extended_query_handler();
    let copy_handler = handlers.copy_handler();
    let cancel_handler = handlers.cancel_handler();
    let error_handler = handlers.error_handler();
    loop {
        let msg = if matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        ) {
            tokio::select! {
                _ = &mut startup_timeout => None,
                msg = socket.next() => msg,
            }
        } else {
            socket.next().await
        };
        let Some(Ok(msg)) = msg else {
            break;
        };
        // Terminate: the client is leaving and waits for the socket to close.
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let is_extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let is_cancel_request = matches!(msg, PgWireFrontendMessage::CancelRequest(_));
        if let Err(mut e) = process_message(
            msg,
            &mut socket,
            startup_handler.clone(),
            simple_query_handler.clone(),
            extended_query_handler.clone(),
            copy_handler.clone(),
            cancel_handler.clone(),
        )
        .await
        {
            error_handler.on_error(&socket, &mut e);
            // A FATAL error ends the session, as in PostgreSQL.
            let is_fatal = e.is_fatal();
            process_error(&mut socket, e, is_extended_query).await?;
            if is_fatal {
                break;
            }
        }
        if is_cancel_request {
            break;
        }
    }
    // What is still held goes out before the socket closes.
    futures::SinkExt::<pgwire::messages::PgWireBackendMessage>::close(&mut socket).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn ready_for_query_ends_an_answer() {
        assert!(ends_answer(b"C\0\0\0\x0bSELECT 1\0Z\0\0\0\x05I"));
        assert!(ends_answer(b"Z\0\0\0\x05T"));
        assert!(!ends_answer(b"2\0\0\0\x04"));
        assert!(!ends_answer(b"Z\0\0\0\x05X"));
    }

    #[tokio::test]
    async fn holds_until_an_answer_ends_or_the_server_reads() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut server = Batched::new(server);
        let mut client = client;
        // A BindComplete flushed on its own is held...
        server.write_all(b"2\0\0\0\x04").await.unwrap();
        server.flush().await.unwrap();
        let mut buf = [0u8; 64];
        let held = tokio::time::timeout(Duration::from_millis(50), client.read(&mut buf)).await;
        assert!(held.is_err(), "a partial answer must not be sent");
        // ...until ReadyForQuery ends the answer: both go out together.
        server.write_all(b"Z\0\0\0\x05I").await.unwrap();
        server.flush().await.unwrap();
        let n = client.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"2\0\0\0\x04Z\0\0\0\x05I");
        // An authentication request is sent when the server turns to read the reply.
        server.write_all(b"R\0\0\0\x08\0\0\0\x0a").await.unwrap();
        server.flush().await.unwrap();
        client.write_all(b"p").await.unwrap();
        let mut reply = [0u8; 1];
        server.read_exact(&mut reply).await.unwrap();
        let n = client.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"R\0\0\0\x08\0\0\0\x0a");
        // Large output is not held.
        let big = vec![b'D'; HOLD_LIMIT + 10];
        server.write_all(&big).await.unwrap();
        server.flush().await.unwrap();
        let mut got = vec![0u8; big.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, big);
    }
}
