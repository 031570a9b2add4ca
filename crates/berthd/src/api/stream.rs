//! Bridges between blocking store code and streaming HTTP bodies.

use std::io::{self, Read, Write};

use axum::body::Body;
use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

const CHUNK: usize = 64 * 1024;

/// A blocking `Read` over a request body. Use only on a blocking thread.
pub fn body_reader(body: Body) -> impl Read + Send + 'static {
    let stream = body.into_data_stream().map_err(io::Error::other);
    SyncIoBridge::new(StreamReader::new(stream))
}

/// A response body fed by a blocking writer, and that writer.
pub fn body_channel() -> (ChannelWriter, Body) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        ChannelWriter {
            tx,
            buffer: Vec::with_capacity(CHUNK),
        },
        Body::from_stream(stream),
    )
}

/// Sends what is written to it as body chunks; fails once the client has gone.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }

    /// Ends the body with an error, which aborts the HTTP response.
    pub fn fail(self, error: impl std::fmt::Display) {
        let _ = self
            .tx
            .blocking_send(Err(io::Error::other(error.to_string())));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}
