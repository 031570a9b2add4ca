//! The terminal side of attach and exec: copying our stdin into a hijacked connection
//! and its output back (demultiplexing docker's stdcopy frames when there is no TTY),
//! raw terminal mode, the detach key sequence, TTY resizing and signal forwarding.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::RawFd;

use http_body_util::BodyExt;
use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::client::{self, with_query, Client, Hijacked};

/// docker's default detach sequence: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// What a stream should carry.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// The container has a TTY: output is raw bytes, not stdcopy frames.
    pub tty: bool,
    /// Copy our stdin into the connection.
    pub stdin: bool,
    /// The key sequence that detaches (honoured by the client with a TTY only, as
    /// docker does; without one the daemon watches for it).
    pub detach_keys: Vec<u8>,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The container (or exec process) closed its output.
    Finished,
    /// The user typed the detach sequence; the container keeps running.
    Detached,
}

/// Pumps a hijacked connection until the output ends or the user detaches.
///
/// Input is copied until our stdin ends, then the connection's write side is shut
/// down (so the process sees EOF) while output keeps flowing, like docker's
/// `hijackedIOStreamer`.
pub async fn stream(hijacked: Hijacked, options: StreamOptions) -> anyhow::Result<StreamEnd> {
    let io = match hijacked {
        Hijacked::Upgraded(io) => io,
        Hijacked::Plain(response) => {
            // An old-style daemon that answers 200 sends the output as the body.
            let mut sink = OutputSink::new(options.tty);
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| anyhow::anyhow!("error reading the stream: {e}"))?;
                if let Some(data) = frame.data_ref() {
                    sink.write(data)?;
                }
            }
            return Ok(StreamEnd::Finished);
        }
    };
    // Raw mode only when we forward a terminal's keystrokes to a TTY, as docker.
    let _raw = if options.stdin && options.tty && std::io::stdin().is_terminal() {
        Some(RawTerminal::enable(libc::STDIN_FILENO)?)
    } else {
        None
    };
    let (mut reader, mut writer) = tokio::io::split(io);

    let output = async move {
        let mut sink = OutputSink::new(options.tty);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| anyhow::anyhow!("error reading the stream: {e}"))?;
            if n == 0 {
                return anyhow::Ok(());
            }
            sink.write(&buf[..n])?;
        }
    };
    tokio::pin!(output);

    if !options.stdin {
        // Nothing to send: half-close at once, as docker's CLI does.
        let _ = writer.shutdown().await;
        output.await?;
        return Ok(StreamEnd::Finished);
    }

    let mut input = stdin_chunks();
    let mut escape = EscapeDetector::new(if options.tty {
        options.detach_keys.clone()
    } else {
        Vec::new()
    });
    let mut input_open = true;
    loop {
        tokio::select! {
            result = &mut output => {
                result?;
                return Ok(StreamEnd::Finished);
            }
            chunk = input.recv(), if input_open => match chunk {
                Some(chunk) => {
                    let (data, detached) = escape.feed(&chunk);
                    if !data.is_empty() && writer.write_all(&data).await.is_err() {
                        // The container closed its stdin; keep reading its output.
                        input_open = false;
                    }
                    if detached {
                        return Ok(StreamEnd::Detached);
                    }
                }
                None => {
                    input_open = false;
                    // Half-close: the process sees EOF, its output keeps coming.
                    let _ = writer.shutdown().await;
                }
            },
        }
    }
}

/// Reads our stdin on a plain thread, in chunks, into a channel.
///
/// A thread rather than tokio's blocking pool: a read blocked on a terminal would
/// keep the runtime from shutting down when the command is done, and a thread is
/// simply abandoned when the process exits.
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Writes stream output to our stdout/stderr: raw with a TTY, else demultiplexed.
pub struct OutputSink {
    demux: Option<Demuxer>,
}

impl OutputSink {
    pub fn new(tty: bool) -> Self {
        OutputSink {
            demux: (!tty).then(Demuxer::default),
        }
    }

    pub fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let Some(demux) = &mut self.demux else {
            return write_out(Target::Stdout, data);
        };
        for frame in demux.push(data).map_err(|e| anyhow::anyhow!(e))? {
            write_out(frame.0, &frame.1)?;
        }
        Ok(())
    }
}

/// Where a demultiplexed frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Stdout,
    Stderr,
}

fn write_out(target: Target, data: &[u8]) -> anyhow::Result<()> {
    // A closed stdout (a pipe into `head`) ends the output quietly, as docker does.
    let result = match target {
        Target::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(data).and_then(|()| out.flush())
        }
        Target::Stderr => {
            let mut err = std::io::stderr().lock();
            err.write_all(data).and_then(|()| err.flush())
        }
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| anyhow::anyhow!("error writing output: {e}")),
    }
}

/// docker's stdcopy format: each frame is an 8-byte header (stream type in byte 0:
/// 0 stdin, 1 stdout, 2 stderr, 3 a daemon error; payload length big-endian in
/// bytes 4..8) followed by the payload.
#[derive(Debug, Default)]
pub struct Demuxer {
    pending: Vec<u8>,
}

impl Demuxer {
    /// Feeds bytes as they arrive; returns the frames completed so far.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<(Target, Vec<u8>)>, String> {
        self.pending.extend_from_slice(data);
        let mut frames = Vec::new();
        let mut at = 0;
        while self.pending.len() - at >= 8 {
            let header = &self.pending[at..at + 8];
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if self.pending.len() - at - 8 < len {
                break;
            }
            let kind = header[0];
            let payload = self.pending[at + 8..at + 8 + len].to_vec();
            at += 8 + len;
            match kind {
                0 | 1 => frames.push((Target::Stdout, payload)),
                2 => frames.push((Target::Stderr, payload)),
                3 => {
                    return Err(format!(
                        "error from daemon in stream: {}",
                        String::from_utf8_lossy(&payload)
                    ))
                }
                other => return Err(format!("Unrecognized input header: {other}")),
            }
        }
        self.pending.drain(..at);
        Ok(frames)
    }
}

/// Watches typed input for the detach sequence, holding back a partial match
/// and letting it through if the sequence breaks off (docker's escape proxy).
#[derive(Debug)]
pub struct EscapeDetector {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeDetector {
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeDetector { keys, matched: 0 }
    }

    /// Returns the bytes to forward, and whether the full sequence was typed (in
    /// which case the bytes are those typed before it).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (input.to_vec(), false);
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            if self.matched > 0 {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                    continue;
                }
            }
            out.push(b);
        }
        (out, false)
    }
}

/// docker's `term.ToBytes`: `ctrl-p,ctrl-q`, `a`, `DEL`...
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    const CTRL: [&str; 32] = [
        "ctrl-@", "ctrl-a", "ctrl-b", "ctrl-c", "ctrl-d", "ctrl-e", "ctrl-f", "ctrl-g", "ctrl-h",
        "ctrl-i", "ctrl-j", "ctrl-k", "ctrl-l", "ctrl-m", "ctrl-n", "ctrl-o", "ctrl-p", "ctrl-q",
        "ctrl-r", "ctrl-s", "ctrl-t", "ctrl-u", "ctrl-v", "ctrl-w", "ctrl-x", "ctrl-y", "ctrl-z",
        "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_",
    ];
    let mut codes = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            codes.push(key.as_bytes()[0]);
        } else if let Some(code) = CTRL.iter().position(|c| *c == key) {
            codes.push(code as u8);
        } else if key == "DEL" {
            codes.push(127);
        } else {
            return Err(format!("Unknown character: '{key}'"));
        }
    }
    Ok(codes)
}

/// The detach keys to watch for: the user's, else docker's default (an invalid
/// sequence also falls back to the default, as in docker's CLI).
pub fn detach_keys(user: Option<&str>) -> Vec<u8> {
    user.and_then(|k| parse_detach_keys(k).ok())
        .unwrap_or_else(|| DEFAULT_DETACH_KEYS.to_vec())
}

/// A terminal in raw mode, restored to its previous settings when dropped (on
/// every way out, errors and panics included).
pub struct RawTerminal {
    fd: RawFd,
    original: libc::termios,
}

impl RawTerminal {
    pub fn enable(fd: RawFd) -> anyhow::Result<Self> {
        // SAFETY: termios is a plain C struct for which all-zero bytes are valid;
        // tcgetattr fills it in before it is read.
        let mut original: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is an open descriptor and `original` a valid, writable termios.
        if unsafe { libc::tcgetattr(fd, &mut original) } != 0 {
            anyhow::bail!(
                "cannot read terminal settings: {}",
                std::io::Error::last_os_error()
            );
        }
        let mut raw = original;
        // SAFETY: `raw` is a valid termios initialised by tcgetattr above.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `fd` is open and `raw` a valid termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            anyhow::bail!(
                "cannot set the terminal to raw mode: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(RawTerminal { fd, original })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: `fd` is still open (stdin lives as long as the process) and
        // `original` holds the settings tcgetattr returned.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.original) };
    }
}

/// The size of the terminal on `fd` as (rows, columns), if it is one.
pub fn terminal_size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: winsize is a plain C struct; all-zero bytes are a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the valid pointer we pass.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } != 0 {
        return None;
    }
    Some((size.ws_row, size.ws_col))
}

/// `[rows, cols]` of our stdout when it is a terminal, else zeros (docker's
/// `ConsoleSize`).
pub fn console_size() -> [u16; 2] {
    if !std::io::stdout().is_terminal() {
        return [0, 0];
    }
    terminal_size(libc::STDOUT_FILENO)
        .map(|(h, w)| [h, w])
        .unwrap_or([0, 0])
}

/// Keeps the TTY of a container (`/containers/ID/resize`) or exec process
/// (`/exec/ID/resize`) the size of our terminal: once now, retrying briefly while
/// the process starts, then on every SIGWINCH. Runs until aborted.
pub fn monitor_tty_size(client: Client, id: String, exec: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let base = if exec {
            format!("/exec/{id}/resize")
        } else {
            format!("/containers/{id}/resize")
        };
        let resize = |client: Client, base: String| async move {
            let Some((h, w)) = terminal_size(libc::STDOUT_FILENO) else {
                return Ok(());
            };
            if h == 0 && w == 0 {
                return Ok(());
            }
            let path = with_query(&base, &[("h", h.to_string()), ("w", w.to_string())]);
            client
                .send(Method::POST, &path, client::empty(), None)
                .await
                .map(|_| ())
        };
        if resize(client.clone(), base.clone()).await.is_err() {
            for attempt in 1..=10u64 {
                tokio::time::sleep(std::time::Duration::from_millis(attempt * 10)).await;
                if resize(client.clone(), base.clone()).await.is_ok() {
                    break;
                }
            }
        }
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            let _ = resize(client.clone(), base.clone()).await;
        }
    })
}

/// Forwards the signals a user sends to the CLI to the container (docker's
/// `--sig-proxy`), by name as docker does (`INT`, `TERM`...). Runs until aborted.
pub fn forward_signals(client: Client, id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let kinds = [
            (SignalKind::interrupt(), "INT"),
            (SignalKind::terminate(), "TERM"),
            (SignalKind::hangup(), "HUP"),
            (SignalKind::quit(), "QUIT"),
            (SignalKind::user_defined1(), "USR1"),
            (SignalKind::user_defined2(), "USR2"),
        ];
        let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
        for (kind, name) in kinds {
            let Ok(mut sig) = signal(kind) else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                while sig.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            let path = with_query(
                &format!("/containers/{id}/kill"),
                &[("signal", name.to_string())],
            );
            let _ = client
                .send(Method::POST, &path, client::empty(), None)
                .await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![kind, 0, 0, 0];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn stdcopy_frames_split_anywhere() {
        let mut data = frame(1, b"hello ");
        data.extend(frame(2, b"oops\n"));
        data.extend(frame(1, b""));
        data.extend(frame(1, b"world\n"));
        // Feed one byte at a time: frames come out whole, in order.
        let mut demux = Demuxer::default();
        let mut got = Vec::new();
        for b in &data {
            got.extend(demux.push(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(
            got,
            vec![
                (Target::Stdout, b"hello ".to_vec()),
                (Target::Stderr, b"oops\n".to_vec()),
                (Target::Stdout, Vec::new()),
                (Target::Stdout, b"world\n".to_vec()),
            ]
        );
        let mut demux = Demuxer::default();
        assert_eq!(demux.push(&data).unwrap().len(), 4);
        assert!(demux.pending.is_empty());
    }

    #[test]
    fn stdcopy_errors() {
        let mut demux = Demuxer::default();
        assert_eq!(
            demux.push(&frame(3, b"boom")).unwrap_err(),
            "error from daemon in stream: boom"
        );
        let mut demux = Demuxer::default();
        assert_eq!(
            demux.push(&frame(9, b"x")).unwrap_err(),
            "Unrecognized input header: 9"
        );
    }

    #[test]
    fn detach_sequence() {
        let mut e = EscapeDetector::new(DEFAULT_DETACH_KEYS.to_vec());
        assert_eq!(e.feed(b"ls\n"), (b"ls\n".to_vec(), false));
        // A partial sequence is held back, then released when it breaks off.
        assert_eq!(e.feed(&[16]), (Vec::new(), false));
        assert_eq!(e.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(e.feed(&[b'a', 16, 16, 17]), (vec![b'a', 16], true));
        let mut none = EscapeDetector::new(Vec::new());
        assert_eq!(none.feed(&[16, 17]), (vec![16, 17], false));
    }

    #[test]
    fn detach_key_names() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Ok(vec![16, 17]));
        assert_eq!(parse_detach_keys("a,ctrl-@,DEL"), Ok(vec![b'a', 0, 127]));
        assert!(parse_detach_keys("ctrl-").is_err());
        assert_eq!(detach_keys(Some("bogus-key")), DEFAULT_DETACH_KEYS);
        assert_eq!(detach_keys(Some("ctrl-x")), vec![24]);
    }
}
