//! Framing of GTM messages: length-delimited frames (`LengthDelimitedCodec`, 4-byte big-endian
//! length) carrying `postcard`-encoded [`ClientFrame`]s and [`ServerFrame`]s.
//!
//! [`ClientFrame`]: super::proto::ClientFrame
//! [`ServerFrame`]: super::proto::ServerFrame

use super::proto::{decode, encode, GtmError, MAX_FRAME_LEN};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use std::io;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// The reading half of a GTM connection.
pub type FrameReader = FramedRead<OwnedReadHalf, LengthDelimitedCodec>;
/// The writing half of a GTM connection.
pub type FrameWriter = FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>;

/// The codec both sides use.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_LEN)
        .new_codec()
}

/// Splits a connected socket into framed halves (with `TCP_NODELAY`: every frame is a request
/// or an answer somebody waits for).
pub fn split(stream: TcpStream) -> (FrameReader, FrameWriter) {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    (FramedRead::new(r, codec()), FramedWrite::new(w, codec()))
}

/// Sends one message as one frame.
pub async fn send<T: Serialize>(writer: &mut FrameWriter, message: &T) -> io::Result<()> {
    writer.send(Bytes::from(encode(message))).await
}

/// Queues one message without flushing (flush with [`flush`]).
pub async fn feed<T: Serialize>(writer: &mut FrameWriter, message: &T) -> io::Result<()> {
    writer.feed(Bytes::from(encode(message))).await
}

/// Flushes queued frames.
pub async fn flush(writer: &mut FrameWriter) -> io::Result<()> {
    SinkExt::<Bytes>::flush(writer).await
}

/// Receives the next frame: `None` at a clean end of stream, an I/O error for a broken one,
/// `Some(Err(..))` for a frame that arrived whole but could not be decoded.
pub async fn recv<T: DeserializeOwned>(
    reader: &mut FrameReader,
) -> io::Result<Option<Result<T, GtmError>>> {
    match reader.next().await {
        None => Ok(None),
        Some(Err(e)) => Err(e),
        Some(Ok(bytes)) => Ok(Some(decode(&bytes))),
    }
}
