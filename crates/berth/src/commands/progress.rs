//! The JSON message streams of `pull`, `push`, `import` and `load`, shown as docker's
//! `jsonmessage.DisplayJSONMessagesStream` shows them: on a terminal one line per
//! layer, redrawn in place with its progress bar; elsewhere one line per status, with
//! the progress updates left out. An `error` in the stream ends the display with
//! that message.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::os::fd::AsRawFd;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Response;
use serde::Deserialize;
use serde_json::Value;

use crate::output::human_size_precision;

/// One message of the stream (docker's `JSONMessage`).
#[derive(Debug, Default, Deserialize)]
pub struct JsonMessage {
    #[serde(default)]
    pub stream: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, rename = "progressDetail")]
    pub progress: Option<Progress>,
    /// The bar as the daemon drew it; docker only shows it when there is no
    /// `progressDetail`.
    #[serde(default, rename = "progress")]
    pub progress_message: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub time: i64,
    #[serde(default, rename = "timeNano")]
    pub time_nano: i64,
    #[serde(default, rename = "errorDetail")]
    pub error: Option<ErrorDetail>,
    #[serde(default, rename = "error")]
    pub error_message: String,
    #[serde(default)]
    pub aux: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorDetail {
    /// A status for the command to end with (the classic builder's `RUN` exit
    /// code); 0 when the daemon gives none.
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
}

/// `JSONProgress`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Progress {
    #[serde(default)]
    pub current: i64,
    #[serde(default)]
    pub total: i64,
    /// Unix time the transfer started, for the time left.
    #[serde(default)]
    pub start: i64,
    #[serde(default, rename = "hidecounts")]
    pub hide_counts: bool,
    #[serde(default)]
    pub units: String,
}

impl Progress {
    /// The bar docker draws: `[===>   ]  1.049MB/2.219MB 3s`; the bar only on a
    /// terminal wider than 110 columns; empty when there is nothing to show.
    pub fn render(&self, width: usize, now: i64) -> String {
        if self.current <= 0 && self.total <= 0 {
            return String::new();
        }
        if self.total <= 0 {
            return match self.units.as_str() {
                "" => format!("{:>8}", human_size_precision(self.current as f64, 4)),
                units => format!("{} {units}", self.current),
            };
        }
        let percentage = ((self.current as f64 / self.total as f64 * 100.0) as i64 / 2).min(50);
        let mut out = String::new();
        if width > 110 {
            let done = percentage.max(0) as usize;
            out.push_str(&format!(
                "[{}>{}] ",
                "=".repeat(done),
                " ".repeat(50usize.saturating_sub(done))
            ));
        }
        if !self.hide_counts {
            if self.units.is_empty() {
                let current = human_size_precision(self.current as f64, 4);
                if self.current > self.total {
                    out.push_str(&format!("{current:>8}"));
                } else {
                    let total = human_size_precision(self.total as f64, 4);
                    out.push_str(&format!("{current:>8}/{total}"));
                }
            } else if self.current > self.total {
                out.push_str(&format!("{} {}", self.current, self.units));
            } else {
                out.push_str(&format!("{}/{} {}", self.current, self.total, self.units));
            }
        }
        if self.current > 0 && self.start > 0 && percentage < 50 {
            let elapsed = (now - self.start).max(0) as f64;
            let left = (self.total - self.current) as f64 * elapsed / self.current as f64;
            out.push(' ');
            out.push_str(&go_duration(left.round() as i64));
        }
        out
    }
}

/// Go's `time.Duration.String()` for whole seconds (`0s`, `42s`, `1m5s`, `2h0m3s`).
fn go_duration(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// How a stream ended badly.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The daemon reported a failure in the stream: its message, as docker prints it.
    Message(String),
    /// The stream itself broke (bad JSON, connection lost).
    Broken(String),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Message(m) | StreamError::Broken(m) => f.write_str(m),
        }
    }
}

/// Where the messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Stdout,
    Stderr,
    /// Nowhere (`--quiet`): the stream is still read to its end for its errors.
    Discard,
}

impl Target {
    pub(super) fn is_terminal(self) -> bool {
        match self {
            Target::Stdout => std::io::stdout().is_terminal(),
            Target::Stderr => std::io::stderr().is_terminal(),
            Target::Discard => false,
        }
    }

    pub(super) fn width(self) -> usize {
        let fd = match self {
            Target::Stdout => std::io::stdout().as_raw_fd(),
            Target::Stderr => std::io::stderr().as_raw_fd(),
            Target::Discard => return 200,
        };
        super::container::stream::terminal_size(fd)
            .map(|(_, cols)| cols as usize)
            .filter(|&c| c > 0)
            .unwrap_or(200)
    }
}

/// The renderer's state: which layer ids own which of the lines above the cursor.
pub struct Display<W: Write> {
    out: W,
    terminal: bool,
    /// Terminal columns, asked for each message as docker does (fixed in tests).
    width: Box<dyn Fn() -> usize>,
    /// Unix time now, for the time left (fixed in tests).
    now: Box<dyn Fn() -> i64>,
    ids: HashMap<String, usize>,
    /// The `aux` payloads seen, for the command to act on (push's notes).
    pub aux: Vec<Value>,
}

impl<W: Write> Display<W> {
    pub fn new(out: W, terminal: bool, width: impl Fn() -> usize + 'static) -> Self {
        Display {
            out,
            terminal,
            width: Box::new(width),
            now: Box::new(|| chrono::Utc::now().timestamp()),
            ids: HashMap::new(),
            aux: Vec::new(),
        }
    }

    /// Shows one message; an error message ends the display.
    pub fn message(&mut self, jm: &JsonMessage) -> Result<(), StreamError> {
        if let Some(aux) = &jm.aux {
            self.aux.push(aux.clone());
            return Ok(());
        }
        let mut diff = 0;
        if !jm.id.is_empty() && (jm.progress.is_some() || !jm.progress_message.is_empty()) {
            let line = match self.ids.get(&jm.id) {
                Some(&line) => line,
                None => {
                    // A new layer takes a new line at the bottom.
                    let line = self.ids.len();
                    self.ids.insert(jm.id.clone(), line);
                    if self.terminal {
                        self.write("\n");
                    }
                    line
                }
            };
            diff = self.ids.len() - line;
            if self.terminal && diff > 0 {
                self.write(&format!("\x1b[{diff}A"));
            }
        } else {
            // Anything else starts a new group of lines (pull -a: the next tag).
            self.ids.clear();
        }
        let result = self.display(jm);
        if !jm.id.is_empty() && self.terminal && diff > 0 {
            self.write(&format!("\x1b[{diff}B"));
        }
        let _ = self.out.flush();
        result
    }

    /// `JSONMessage.Display`.
    fn display(&mut self, jm: &JsonMessage) -> Result<(), StreamError> {
        if let Some(error) = &jm.error {
            return Err(StreamError::Message(error.message.clone()));
        }
        if !jm.error_message.is_empty() {
            return Err(StreamError::Message(jm.error_message.clone()));
        }
        let width = (self.width)();
        let now = (self.now)();
        let bar = jm.progress.as_ref().map(|p| p.render(width, now));
        let mut endl = "";
        if self.terminal && jm.stream.is_empty() && jm.progress.is_some() {
            self.write("\x1b[2K\r");
            endl = "\r";
        } else if bar.as_deref().is_some_and(|b| !b.is_empty()) {
            // Progress updates are for terminals only.
            return Ok(());
        }
        let mut line = String::new();
        if jm.time_nano != 0 {
            line.push_str(&format!("{} ", rfc3339_nano_fixed(jm.time_nano)));
        } else if jm.time != 0 {
            line.push_str(&format!("{} ", rfc3339_nano_fixed(jm.time * 1_000_000_000)));
        }
        if !jm.id.is_empty() {
            line.push_str(&format!("{}: ", jm.id));
        }
        if !jm.from.is_empty() {
            line.push_str(&format!("(from {}) ", jm.from));
        }
        match (&bar, self.terminal) {
            (Some(bar), true) => line.push_str(&format!("{} {bar}{endl}", jm.status)),
            _ if !jm.progress_message.is_empty() => {
                line.push_str(&format!("{} {}{endl}", jm.status, jm.progress_message))
            }
            _ if !jm.stream.is_empty() => line.push_str(&format!("{}{endl}", jm.stream)),
            _ => line.push_str(&format!("{}{endl}\n", jm.status)),
        }
        self.write(&line);
        Ok(())
    }

    fn write(&mut self, s: &str) {
        let _ = self.out.write_all(s.as_bytes());
    }

    /// Shows every message of a whole stream held in memory.
    #[cfg(test)]
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        let mut decoder = Decoder::default();
        for jm in decoder.push(bytes)? {
            self.message(&jm)?;
        }
        decoder.finish()
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Go's `RFC3339NanoFixed` in local time.
fn rfc3339_nano_fixed(nanos: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
        .to_string()
        .replace("+00:00", "Z")
}

/// Splits a byte stream into JSON messages as they complete, like Go's
/// `json.Decoder` (values need no separator; whitespace between them is skipped).
#[derive(Default)]
pub struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<JsonMessage>, StreamError> {
        self.pending.extend_from_slice(data);
        let mut messages = Vec::new();
        let mut consumed = 0;
        {
            let mut stream =
                serde_json::Deserializer::from_slice(&self.pending).into_iter::<JsonMessage>();
            loop {
                match stream.next() {
                    Some(Ok(jm)) => {
                        consumed = stream.byte_offset();
                        messages.push(jm);
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => return Err(StreamError::Broken(e.to_string())),
                    None => {
                        consumed = self.pending.len();
                        break;
                    }
                }
            }
        }
        self.pending.drain(..consumed);
        Ok(messages)
    }

    /// The end of the stream: anything left over is a message cut short.
    pub fn finish(&self) -> Result<(), StreamError> {
        if self.pending.trim_ascii().is_empty() {
            Ok(())
        } else {
            Err(StreamError::Broken("unexpected EOF".into()))
        }
    }
}

/// Reads a response's message stream to its end, showing it on `target` as it
/// comes. Returns the `aux` payloads met.
pub async fn show(response: Response<Incoming>, target: Target) -> Result<Vec<Value>, StreamError> {
    let terminal = target.is_terminal();
    let out: Box<dyn Write> = match target {
        Target::Stdout => Box::new(std::io::stdout()),
        Target::Stderr => Box::new(std::io::stderr()),
        Target::Discard => Box::new(std::io::sink()),
    };
    let mut display = Display::new(out, terminal, move || target.width());
    let mut decoder = Decoder::default();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| StreamError::Broken(e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            for jm in decoder.push(data)? {
                display.message(&jm)?;
            }
        }
    }
    decoder.finish()?;
    Ok(display.aux)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pull as dockerd streams it, cut into uneven pieces.
    const PULL: &str = concat!(
        r#"{"status":"Pulling from library/busybox","id":"latest"}"#,
        "\r\n",
        r#"{"status":"Pulling fs layer","progressDetail":{},"id":"a1b2c3d4e5f6"}"#,
        "\r\n",
        r#"{"status":"Downloading","progressDetail":{"current":1049000,"total":2219000},"progress":"[=>  ]","id":"a1b2c3d4e5f6"}"#,
        r#"{"status":"Verifying Checksum","progressDetail":{},"id":"a1b2c3d4e5f6"}"#,
        "\n",
        r#"{"status":"Download complete","progressDetail":{},"id":"a1b2c3d4e5f6"}"#,
        "\n",
        r#"{"status":"Extracting","progressDetail":{"current":32768,"total":2219000},"id":"a1b2c3d4e5f6"}"#,
        "\n",
        r#"{"status":"Pull complete","progressDetail":{},"id":"a1b2c3d4e5f6"}"#,
        "\n",
        r#"{"status":"Digest: sha256:3f1d6c17773a45c97bd8f158d665c9709d7b29ed7917ac934086ad96f92e4510"}"#,
        "\n",
        r#"{"status":"Status: Downloaded newer image for busybox:latest"}"#,
        "\n",
    );

    fn render(stream: &str, terminal: bool, width: usize) -> (String, Result<(), StreamError>) {
        let mut display = Display::new(Vec::new(), terminal, move || width);
        display.now = Box::new(|| 1_000);
        let mut decoder = Decoder::default();
        let mut result = Ok(());
        // Feed in 7-byte pieces: messages arrive split anywhere.
        'outer: for piece in stream.as_bytes().chunks(7) {
            match decoder.push(piece) {
                Ok(messages) => {
                    for jm in messages {
                        if let Err(e) = display.message(&jm) {
                            result = Err(e);
                            break 'outer;
                        }
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() {
            result = decoder.finish();
        }
        (String::from_utf8(display.into_inner()).unwrap(), result)
    }

    #[test]
    fn pipe_output_like_docker() {
        let (out, result) = render(PULL, false, 200);
        assert_eq!(result, Ok(()));
        assert_eq!(
            out,
            "latest: Pulling from library/busybox\n\
             a1b2c3d4e5f6: Pulling fs layer\n\
             a1b2c3d4e5f6: Verifying Checksum\n\
             a1b2c3d4e5f6: Download complete\n\
             a1b2c3d4e5f6: Pull complete\n\
             Digest: sha256:3f1d6c17773a45c97bd8f158d665c9709d7b29ed7917ac934086ad96f92e4510\n\
             Status: Downloaded newer image for busybox:latest\n"
        );
    }

    #[test]
    fn errors_end_the_stream() {
        let stream = concat!(
            r#"{"status":"Pulling from library/nope","id":"latest"}"#,
            "\n",
            r#"{"errorDetail":{"message":"pull access denied for nope, repository does not exist or may require 'docker login'"},"error":"pull access denied for nope, repository does not exist or may require 'docker login'"}"#,
            "\n",
            r#"{"status":"never shown"}"#,
            "\n",
        );
        let (out, result) = render(stream, false, 200);
        assert_eq!(out, "latest: Pulling from library/nope\n");
        assert_eq!(
            result,
            Err(StreamError::Message(
                "pull access denied for nope, repository does not exist or may require 'docker login'"
                    .into()
            ))
        );
        // The old `error` field alone is an error too.
        let (_, result) = render(r#"{"error":"boom"}"#, false, 200);
        assert_eq!(result, Err(StreamError::Message("boom".into())));
        let (_, result) = render(r#"{"status":"cut"#, false, 200);
        assert_eq!(result, Err(StreamError::Broken("unexpected EOF".into())));
        let (_, result) = render("{\"status\":1}", false, 200);
        assert!(matches!(result, Err(StreamError::Broken(_))));
    }

    #[test]
    fn streams_aux_and_plain_status() {
        let stream = concat!(
            r#"{"stream":"Loaded image: busybox:latest\n"}"#,
            r#"{"status":"sha256:abc"}"#,
            r#"{"aux":{"Tag":"1","Digest":"sha256:d","Size":527}}"#,
            r#"{"status":"Preparing","progressDetail":{},"id":"l1"}"#,
            r#"{"status":"Pushing","progress":"[==>  ] 1MB/2MB","id":"l1"}"#,
        );
        let mut display = Display::new(Vec::new(), false, || 200);
        display.feed(stream.as_bytes()).unwrap();
        assert_eq!(display.aux.len(), 1);
        assert_eq!(display.aux[0]["Size"], 527);
        assert_eq!(
            String::from_utf8(display.into_inner()).unwrap(),
            "Loaded image: busybox:latest\nsha256:abc\nl1: Preparing\nl1: Pushing [==>  ] 1MB/2MB"
        );
    }

    #[test]
    fn terminal_output_redraws_each_layer() {
        let stream = concat!(
            r#"{"status":"Pulling from library/busybox","id":"latest"}"#,
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"aaa"}"#,
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"bbb"}"#,
            r#"{"status":"Downloading","progressDetail":{"current":500,"total":1000},"id":"aaa"}"#,
            r#"{"status":"Pull complete","progressDetail":{},"id":"bbb"}"#,
            r#"{"status":"Digest: sha256:x"}"#,
        );
        let (out, result) = render(stream, true, 120);
        assert_eq!(result, Ok(()));
        let bar = format!("[{}>{}]     500B/1kB", "=".repeat(25), " ".repeat(25));
        assert_eq!(
            out,
            format!(
                "latest: Pulling from library/busybox\n\
                 \n\x1b[1A\x1b[2K\raaa: Pulling fs layer \r\x1b[1B\
                 \n\x1b[1A\x1b[2K\rbbb: Pulling fs layer \r\x1b[1B\
                 \x1b[2A\x1b[2K\raaa: Downloading {bar}\r\x1b[2B\
                 \x1b[1A\x1b[2K\rbbb: Pull complete \r\x1b[1B\
                 Digest: sha256:x\n"
            )
        );
        // Narrow terminals get the counts without the bar.
        let (out, _) = render(stream, true, 80);
        assert!(out.contains("aaa: Downloading     500B/1kB\r"), "{out:?}");
    }

    #[test]
    fn progress_like_jsonprogress() {
        let p = |current, total| Progress {
            current,
            total,
            ..Progress::default()
        };
        assert_eq!(p(0, 0).render(200, 0), "");
        assert_eq!(p(1_049_000, 0).render(200, 0), " 1.049MB");
        assert_eq!(
            p(1_049_000, 2_219_000).render(200, 0),
            format!("[{}>{}]  1.049MB/2.219MB", "=".repeat(23), " ".repeat(27))
        );
        assert_eq!(p(3000, 2000).render(80, 0), "     3kB");
        let units = Progress {
            current: 3,
            total: 10,
            units: "files".into(),
            ..Progress::default()
        };
        assert_eq!(units.render(80, 0), "3/10 files");
        let timed = Progress {
            current: 100,
            total: 1000,
            start: 900,
            ..Progress::default()
        };
        // 100 bytes in 100s: 900 more take 900s.
        assert_eq!(timed.render(80, 1000), "    100B/1kB 15m0s");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(3723), "1h2m3s");
    }
}
