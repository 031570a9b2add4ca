//! `build` (`image build`): docker's classic, non-BuildKit client. The context goes
//! to `POST /build` as a tar made here (with `.dockerignore` applied, as docker's
//! CLI does), and the daemon's JSON message stream is shown as docker shows it.

mod context;
mod dockerignore;

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use futures_util::Stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Method;
use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;

use super::common::{fail, flag_error, parse_labels, FlagError};
use super::progress::{Decoder, Display, Progress, StreamError, Target};
use crate::cli::BuildArgs;
use crate::client::{self, with_query, Client};
use crate::credentials::ConfigFile;
use crate::reference::Reference;
use context::{DirContext, DockerfileSource};

/// What docker's progress line says while the context goes out.
const SENDING: &str = "Sending build context to Docker daemon";

/// docker's `ValidateEnv` for `--build-arg`: `K=V` as typed, a bare `K` takes its
/// value from the environment when it is set there (else it stays bare: `null`).
fn build_arg(value: &str) -> std::result::Result<String, FlagError> {
    let (key, _) = value.split_once('=').unwrap_or((value, ""));
    if key.is_empty() {
        return Err(FlagError {
            flag: "--build-arg",
            value: value.to_string(),
            message: format!("invalid environment variable: {value}"),
        });
    }
    if value.contains('=') {
        return Ok(value.to_string());
    }
    Ok(match std::env::var(key) {
        Ok(env) => format!("{key}={env}"),
        Err(_) => value.to_string(),
    })
}

/// `ConvertKVStringsToMapWithNil`: `K=V` gives `"V"`, a bare `K` gives `null`; the
/// keys sorted, as Go marshals a map.
fn build_args_json(values: &[String]) -> String {
    let map: BTreeMap<&str, Value> = values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) => (k, Value::String(val.to_string())),
            None => (v.as_str(), Value::Null),
        })
        .collect();
    if map.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&map).unwrap_or_default()
    }
}

/// A map as Go marshals it: keys sorted; nothing when empty (the parameter is then
/// left out).
fn sorted_json(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return String::new();
    }
    let sorted: BTreeMap<&String, &Value> = map.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_default()
}

/// The flags of a build, checked and converted as docker's CLI does before it
/// reads the context.
#[derive(Debug)]
struct Options {
    tags: Vec<String>,
    build_args: Vec<String>,
    labels: Map<String, Value>,
}

impl Options {
    fn parse(args: &BuildArgs) -> std::result::Result<Options, FlagError> {
        for tag in &args.tag {
            Reference::parse_normalized(tag).map_err(|message| FlagError {
                flag: "-t, --tag",
                value: tag.clone(),
                message,
            })?;
        }
        let build_args = args
            .build_arg
            .iter()
            .map(|v| build_arg(v))
            .collect::<std::result::Result<_, _>>()?;
        Ok(Options {
            tags: args.tag.clone(),
            build_args,
            labels: parse_labels(&args.label)?,
        })
    }
}

/// The query of `POST /build`, as the docker client's `imageBuildOptionsToQuery`
/// (in Go's order: sorted by key); empty values are left out by `with_query`.
/// `rm` is sent either way, so that the daemon's default does not matter.
fn build_query(
    args: &BuildArgs,
    options: &Options,
    dockerfile: &str,
) -> Vec<(&'static str, String)> {
    let flag = |on: bool| if on { "1".to_string() } else { String::new() };
    let mut query = vec![
        ("buildargs", build_args_json(&options.build_args)),
        ("dockerfile", dockerfile.to_string()),
        ("forcerm", flag(args.force_rm)),
        ("labels", sorted_json(&options.labels)),
    ];
    if args.network != "default" {
        query.push(("networkmode", args.network.clone()));
    }
    query.push(("nocache", flag(args.no_cache)));
    query.push((
        "platform",
        args.platform.clone().unwrap_or_default().to_lowercase(),
    ));
    query.push(("pull", flag(args.pull)));
    query.push(("q", flag(args.quiet)));
    query.push(("rm", if args.rm { "1" } else { "0" }.to_string()));
    for tag in &options.tags {
        query.push(("t", tag.clone()));
    }
    query.push(("target", args.target.clone().unwrap_or_default()));
    query
}

/// Where output goes: stdout, or (with `-q`) a buffer shown only if the build fails.
#[derive(Clone)]
enum Out {
    Stdout,
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl Out {
    fn new(quiet: bool) -> Out {
        if quiet {
            Out::Buffer(Arc::default())
        } else {
            Out::Stdout
        }
    }

    /// What a buffer holds (nothing for stdout).
    fn contents(&self) -> Vec<u8> {
        match self {
            Out::Stdout => Vec::new(),
            Out::Buffer(buffer) => buffer.lock().map(|b| b.clone()).unwrap_or_default(),
        }
    }
}

impl Write for Out {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Out::Stdout => io::stdout().write(data),
            Out::Buffer(buffer) => {
                if let Ok(mut b) = buffer.lock() {
                    b.extend_from_slice(data);
                }
                Ok(data.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Stdout => io::stdout().flush(),
            Out::Buffer(_) => Ok(()),
        }
    }
}

/// docker's progress reader on the context upload: on a terminal a redrawn line
/// every 512kB (at most ten a second); elsewhere the last one alone.
struct Upload {
    out: Out,
    terminal: bool,
    sent: u64,
    last_update: u64,
    last_draw: Option<Instant>,
}

impl Upload {
    /// The line docker's raw progress formatter writes; the last one ends the line.
    fn line(sent: u64, last: bool) -> String {
        let progress = Progress {
            current: sent as i64,
            ..Progress::default()
        };
        format!(
            "{SENDING} {}\r{}",
            progress.render(0, 0),
            if last { "\r\n" } else { "" }
        )
    }

    fn advance(&mut self, n: usize) {
        self.sent += n as u64;
        if self.sent - self.last_update <= 512 * 1024 {
            return;
        }
        self.last_update = self.sent;
        let due = self
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if self.terminal && due {
            self.last_draw = Some(Instant::now());
            let line = Upload::line(self.sent, false);
            let _ = self.out.write_all(line.as_bytes());
            let _ = self.out.flush();
        }
    }

    fn finish(&mut self) {
        let line = Upload::line(self.sent, true);
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + Sync>>;

/// The request body: the context's bytes, counted for the progress line.
struct Counted {
    inner: ByteStream,
    upload: Arc<Mutex<Upload>>,
    done: bool,
}

impl Stream for Counted {
    type Item = io::Result<Frame<Bytes>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Ok(mut upload) = self.upload.lock() {
                    upload.advance(chunk.len());
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => {
                if !self.done {
                    self.done = true;
                    if let Ok(mut upload) = self.upload.lock() {
                        upload.finish();
                    }
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The receiving end of the tar written on a blocking thread.
struct Channel(tokio::sync::mpsc::Receiver<io::Result<Bytes>>);

impl Stream for Channel {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// The writing end: the tar in chunks of 256kB.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    const CHUNK: usize = 256 * 1024;

    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(Self::CHUNK),
        ));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the daemon stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The context, ready to go.
enum Prepared {
    /// A directory, written as a tar while it is sent.
    Dir(DirContext),
    /// A tar from stdin: what was peeked at, then the rest of stdin.
    StdinTar(Vec<u8>),
    /// A tar made in memory (a Dockerfile from stdin).
    Memory(Vec<u8>),
}

/// docker's `urlutil.IsURL` and `IsGitURL`, which berth does not fetch.
fn is_remote(context: &str) -> bool {
    ["http://", "https://", "git://", "git@", "github.com/"]
        .iter()
        .any(|p| context.starts_with(p))
}

async fn read_stdin_to_end(mut already: Vec<u8>) -> Result<Vec<u8>> {
    tokio::io::stdin()
        .read_to_end(&mut already)
        .await
        .map_err(|e| fail(1, format!("unable to read from stdin: {e}")))?;
    Ok(already)
}

/// docker's `runBuild` up to the request: the context and the Dockerfile name the
/// daemon is given.
async fn prepare(args: &BuildArgs) -> Result<(Prepared, String)> {
    let file = args.file.as_deref().filter(|f| !f.is_empty());
    if args.context == "-" {
        // A tar (maybe compressed), or else a Dockerfile.
        let mut head = Vec::with_capacity(context::ARCHIVE_HEADER_SIZE);
        let mut stdin = tokio::io::stdin();
        while head.len() < context::ARCHIVE_HEADER_SIZE {
            let mut chunk = vec![0; context::ARCHIVE_HEADER_SIZE - head.len()];
            let n = stdin.read(&mut chunk).await.map_err(|e| {
                fail(
                    1,
                    format!(
                        "unable to prepare context: failed to peek context header from STDIN: {e}"
                    ),
                )
            })?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        if context::is_archive(&head) {
            return Ok((
                Prepared::StdinTar(head),
                file.unwrap_or_default().to_string(),
            ));
        }
        let text = read_stdin_to_end(head).await?;
        let tar = context::tar_of_dockerfile(&text)
            .map_err(|e| fail(1, format!("unable to prepare context: {e}")))?;
        return Ok((
            Prepared::Memory(tar),
            context::DEFAULT_DOCKERFILE.to_string(),
        ));
    }
    if std::fs::metadata(&args.context).is_err() {
        if is_remote(&args.context) {
            return Err(fail(
                1,
                format!(
                    "unable to prepare context: remote build contexts are not supported by berth: {}\n\
                     Clone or download it, and build from its directory.",
                    args.context
                ),
            ));
        }
        return Err(fail(
            1,
            format!(
                "unable to prepare context: path {:?} not found",
                args.context
            ),
        ));
    }
    let source = match file {
        Some("-") => DockerfileSource::Stdin(read_stdin_to_end(Vec::new()).await?),
        Some(path) => DockerfileSource::Path(path),
        None => DockerfileSource::Default,
    };
    let context = DirContext::prepare(&args.context, source).map_err(|e| fail(1, e))?;
    let dockerfile = context.dockerfile.clone();
    Ok((Prepared::Dir(context), dockerfile))
}

/// What the response stream brought.
#[derive(Debug, Default)]
struct Outcome {
    /// The image built (the `aux` `{"ID": …}`).
    image_id: Option<String>,
    /// The `errorDetail.code` of the error that ended the stream.
    code: i64,
}

/// Shows a build's message stream as docker's `DisplayJSONMessagesStream` does,
/// keeping the image ID of its `aux` message.
async fn show_stream(
    response: hyper::Response<hyper::body::Incoming>,
    out: Out,
    outcome: &mut Outcome,
) -> std::result::Result<(), StreamError> {
    let terminal = std::io::stdout().is_terminal();
    let mut display = Display::new(out, terminal, || Target::Stdout.width());
    let mut decoder = Decoder::default();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| StreamError::Broken(e.to_string()))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        for message in decoder.push(data)? {
            if let Some(id) = message.aux.as_ref().and_then(|aux| aux["ID"].as_str()) {
                outcome.image_id = Some(id.to_string());
            }
            if let Some(error) = &message.error {
                outcome.code = error.code;
            }
            display.message(&message)?;
        }
    }
    decoder.finish()
}

pub async fn build(client: &Client, args: BuildArgs, command: &str) -> Result<()> {
    let options = Options::parse(&args).map_err(|e| flag_error(command, &e))?;
    if args.file.as_deref() == Some("-") && args.context == "-" {
        return Err(fail(
            1,
            "invalid argument: can't use stdin for both build context and dockerfile",
        ));
    }
    if let Some(iidfile) = &args.iidfile {
        // No stale file is left behind if the build fails.
        if let Err(e) = std::fs::remove_file(iidfile) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(fail(1, format!("Removing image ID file: {e}")));
            }
        }
    }
    let (prepared, dockerfile) = prepare(&args).await?;

    // With -q the upload line and the daemon's output are kept, and shown only if
    // the build fails.
    let progress_out = Out::new(args.quiet);
    let build_out = Out::new(args.quiet);
    let show_kept = || {
        let mut kept = progress_out.contents();
        kept.extend(build_out.contents());
        let _ = io::stderr().write_all(&kept);
    };
    let upload = Arc::new(Mutex::new(Upload {
        out: progress_out.clone(),
        terminal: std::io::stdout().is_terminal(),
        sent: 0,
        last_update: 0,
        last_draw: None,
    }));
    let mut writer_task = None;
    let inner: ByteStream = match prepared {
        Prepared::Dir(context) => {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            writer_task = Some(tokio::task::spawn_blocking(move || {
                let writer = ChannelWriter {
                    tx: tx.clone(),
                    buffer: Vec::with_capacity(ChannelWriter::CHUNK),
                };
                let result = context.write_tar(writer).and_then(|mut w| w.flush());
                if let Err(e) = &result {
                    // An error in the body aborts the request: a cut tar could pass
                    // for a whole one.
                    let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                }
                result
            }));
            Box::pin(Channel(rx))
        }
        Prepared::StdinTar(head) => {
            let reader = std::io::Cursor::new(head).chain(tokio::io::stdin());
            Box::pin(tokio_util::io::ReaderStream::with_capacity(
                reader,
                256 * 1024,
            ))
        }
        Prepared::Memory(tar) => Box::pin(futures_util::stream::iter([Ok::<_, io::Error>(
            Bytes::from(tar),
        )])),
    };
    let body: client::Body = BodyExt::boxed(StreamBody::new(Counted {
        inner,
        upload,
        done: false,
    }));

    let registry_config = ConfigFile::load_default().registry_config();
    let path = with_query("/build", &build_query(&args, &options, &dockerfile));
    let sent = client
        .send_with_headers(
            Method::POST,
            &path,
            body,
            Some("application/x-tar"),
            &[("X-Registry-Config", &registry_config)],
        )
        .await;
    // A context that could not be read explains a failed request better.
    let context_error =
        |result: std::result::Result<io::Result<()>, tokio::task::JoinError>| match result {
            Ok(Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => {
                Some(format!("error sending build context: {e}"))
            }
            _ => None,
        };
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            if args.quiet {
                let _ = io::stderr().write_all(&progress_out.contents());
            }
            if let Some(task) = writer_task {
                if let Ok(result) = tokio::time::timeout(Duration::from_secs(2), task).await {
                    if let Some(message) = context_error(result) {
                        return Err(fail(1, message));
                    }
                }
            }
            return Err(e.into());
        }
    };

    let mut outcome = Outcome::default();
    let shown = show_stream(response, build_out.clone(), &mut outcome).await;
    if let Some(task) = writer_task {
        if let Ok(result) = tokio::time::timeout(Duration::from_secs(2), task).await {
            if let Some(message) = context_error(result) {
                if args.quiet {
                    show_kept();
                }
                return Err(fail(1, message));
            }
        }
    }
    match shown {
        Err(StreamError::Message(message)) => {
            if args.quiet {
                show_kept();
            }
            let code = u8::try_from(outcome.code)
                .ok()
                .filter(|&c| c != 0)
                .unwrap_or(1);
            return Err(fail(code, message));
        }
        Err(StreamError::Broken(message)) => return Err(fail(1, message)),
        Ok(()) => {}
    }

    let kept = build_out.contents();
    if args.quiet {
        // The daemon's quiet output is the image ID alone.
        if kept.is_empty() {
            if let Some(id) = &outcome.image_id {
                println!("{id}");
            }
        } else {
            let mut stdout = io::stdout();
            let _ = stdout.write_all(&kept);
            let _ = stdout.flush();
        }
    }
    if let Some(iidfile) = &args.iidfile {
        let id = outcome.image_id.clone().or_else(|| {
            let text = String::from_utf8_lossy(&kept).trim().to_string();
            (!text.is_empty()).then_some(text)
        });
        let Some(id) = id else {
            return Err(fail(
                1,
                format!("Server did not provide an image ID. Cannot write {iidfile}"),
            ));
        };
        std::fs::write(iidfile, id).map_err(|e| fail(1, format!("open {iidfile}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(argv: &[&str]) -> BuildArgs {
        let cli = Cli::try_parse_from(["berth", "build"].into_iter().chain(argv.iter().copied()))
            .unwrap();
        match cli.command {
            Some(Command::Build(args)) => args,
            _ => panic!("not build"),
        }
    }

    #[test]
    fn query_like_dockers() {
        std::env::set_var("BERTH_TEST_BUILD_ARG", "from-env");
        let full = args(&[
            "-t",
            "app:1",
            "-t",
            "registry.local:5000/app:latest",
            "--build-arg",
            "B=2",
            "--build-arg",
            "A=1=x",
            "--build-arg",
            "BERTH_TEST_BUILD_ARG",
            "--build-arg",
            "BERTH_TEST_UNSET_ARG",
            "--label",
            "z=1",
            "--label",
            "a",
            "--target",
            "final",
            "--no-cache",
            "--pull",
            "--force-rm",
            "--network",
            "host",
            ".",
        ]);
        let options = Options::parse(&full).unwrap();
        let query = build_query(&full, &options, "sub/Dockerfile");
        let tags: Vec<&str> = query
            .iter()
            .filter(|(k, _)| *k == "t")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(tags, ["app:1", "registry.local:5000/app:latest"]);
        let get = |key: &str| {
            query
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(
            get("buildargs"),
            r#"{"A":"1=x","B":"2","BERTH_TEST_BUILD_ARG":"from-env","BERTH_TEST_UNSET_ARG":null}"#
        );
        assert_eq!(get("labels"), r#"{"a":"","z":"1"}"#);
        assert_eq!(
            with_query("/build", &query),
            "/build?buildargs=%7B%22A%22%3A%221%3Dx%22%2C%22B%22%3A%222%22%2C%22BERTH_TEST_BUILD_ARG%22%3A%22from-env%22%2C%22BERTH_TEST_UNSET_ARG%22%3Anull%7D\
             &dockerfile=sub%2FDockerfile&forcerm=1&labels=%7B%22a%22%3A%22%22%2C%22z%22%3A%221%22%7D\
             &networkmode=host&nocache=1&pull=1&rm=1&t=app%3A1&t=registry.local%3A5000%2Fapp%3Alatest&target=final"
        );

        // The defaults: only what docker sends (and rm).
        let args_plain = args_default();
        let options = Options::parse(&args_plain).unwrap();
        assert_eq!(
            with_query("/build", &build_query(&args_plain, &options, "Dockerfile")),
            "/build?dockerfile=Dockerfile&rm=1"
        );
        let quiet = args(&["-q", "--rm=false", "--platform", "Linux/AMD64", "-"]);
        let options = Options::parse(&quiet).unwrap();
        assert_eq!(
            with_query("/build", &build_query(&quiet, &options, "")),
            "/build?platform=linux%2Famd64&q=1&rm=0"
        );
    }

    fn args_default() -> BuildArgs {
        let cli = Cli::try_parse_from(["berth", "build", "."]).unwrap();
        match cli.command {
            Some(Command::Build(mut args)) => {
                args.platform = None;
                args
            }
            _ => panic!("not build"),
        }
    }

    #[test]
    fn flags_are_checked_like_dockers() {
        let err = Options::parse(&args(&["-t", "Upper:1", "."])).unwrap_err();
        assert_eq!(err.flag, "-t, --tag");
        assert_eq!(
            err.message,
            "invalid reference format: repository name (library/Upper) must be lowercase"
        );
        let err = Options::parse(&args(&["--build-arg", "=x", "."])).unwrap_err();
        assert_eq!(
            (err.flag, err.message.as_str()),
            ("--build-arg", "invalid environment variable: =x")
        );
        let err = Options::parse(&args(&["--label", "=x", "."])).unwrap_err();
        assert_eq!(err.flag, "--label");
    }

    #[test]
    fn upload_line_like_dockers() {
        assert_eq!(
            Upload::line(2048, true),
            "Sending build context to Docker daemon  2.048kB\r\r\n"
        );
        assert_eq!(
            Upload::line(1_300_000, false),
            "Sending build context to Docker daemon    1.3MB\r"
        );
        let out = Out::new(true);
        let mut upload = Upload {
            out: out.clone(),
            terminal: false,
            sent: 0,
            last_update: 0,
            last_draw: None,
        };
        upload.advance(600 * 1024);
        upload.advance(10);
        upload.finish();
        // Off a terminal only the last line is written.
        assert_eq!(
            String::from_utf8(out.contents()).unwrap(),
            "Sending build context to Docker daemon  614.4kB\r\r\n"
        );
    }
}
