//! `create`, `run`, `start` and `attach`: creating a container (pulling its image
//! when missing), then attaching, waiting and starting in docker's order so that no
//! output and no exit status is lost.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use hyper::Method;
use serde_json::Value;
use tokio::sync::oneshot;

use super::opts::{self, CreateRequest, OptError, PullPolicy};
use super::stream::{self, StreamEnd, StreamOptions};
use super::{exit_status, fail, inspect_container};
use crate::cli::{AttachArgs, CreateArgs, RunArgs, StartArgs};
use crate::client::{self, path_segment, with_query, Client, ClientError};
use crate::commands::image::create_from_registry;
use crate::commands::progress::{self, Target};
use crate::credentials::{self, ConfigFile};
use crate::reference::Reference;
use crate::ExitStatus;

/// Prints a refused option as docker does and exits 125.
fn usage_error(command: &str, error: &OptError) -> anyhow::Error {
    match error {
        OptError::Flag { .. } => eprintln!("{error}\nSee 'berth {command} --help'."),
        OptError::Plain(message) => eprintln!(
            "berth: {}.\nSee 'berth {command} --help'.",
            message.trim_end_matches('.')
        ),
    }
    ExitStatus(125).into()
}

/// docker's `runStartContainerErr`: 127 when the command cannot be found, 126
/// when it cannot be run, 125 for anything else.
pub fn start_error_status(message: &str) -> u8 {
    let message = message
        .strip_prefix("Error response from daemon: ")
        .unwrap_or(message);
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

fn parse_options(opts: &crate::cli::ContainerOpts) -> Result<CreateRequest, OptError> {
    let console = if opts.tty {
        stream::console_size()
    } else {
        [0, 0]
    };
    opts::parse(
        opts,
        &|key| std::env::var(key).ok(),
        &|path| std::fs::read_to_string(path),
        console,
    )
}

pub async fn create(client: &Client, args: CreateArgs) -> Result<()> {
    let request = parse_options(&args.opts).map_err(|e| usage_error("create", &e))?;
    match create_container(client, &request).await {
        Ok(id) => {
            println!("{id}");
            Ok(())
        }
        Err(message) => Err(fail(message)),
    }
}

/// A familiar image reference split as the pull endpoint wants it.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The fully qualified repository (`docker.io/library/busybox`), as docker's
    /// client sends in `fromImage`.
    pub name: String,
    /// The tag (`latest` when none was given) or the digest.
    pub tag: String,
    /// docker's "familiar" form for messages (`busybox:latest`).
    pub familiar: String,
    /// The familiar repository alone (`busybox`, `localhost:5000/app`).
    pub familiar_name: String,
    /// The registry (`docker.io`), whose credentials a pull sends.
    pub domain: String,
}

/// Normalizes an image reference like docker's `ParseNormalizedNamed` +
/// `TagNameOnly`; `None` for image IDs, which are never pulled, and for
/// references docker would not parse (the daemon words that refusal).
pub fn parse_image_ref(image: &str) -> Option<ImageRef> {
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if image.is_empty() || image.starts_with("sha256:") || hex64(image) {
        return None;
    }
    let reference = Reference::parse_normalized(image).ok()?.with_default_tag();
    Some(ImageRef {
        name: reference.name(),
        tag: reference.api_tag(),
        familiar: reference.familiar_string(),
        familiar_name: reference.familiar_name(),
        domain: reference.domain,
    })
}

/// Pulls an image through `POST /images/create` with the stored credentials for
/// its registry, showing the progress on stderr (stdout is kept for the container
/// id), or nowhere with `--quiet`, as docker's `pullImage` for create and run.
async fn pull_image(
    client: &Client,
    image: &ImageRef,
    platform: Option<&str>,
    quiet: bool,
) -> Result<(), String> {
    let auth =
        ConfigFile::load_default().registry_auth(&credentials::key_for_domain(&image.domain));
    let response = create_from_registry(client, &image.name, Some(&image.tag), platform, &auth)
        .await
        .map_err(|e| e.to_string())?;
    let target = if quiet {
        Target::Discard
    } else {
        Target::Stderr
    };
    progress::show(response, target)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Creates the container as docker's `createContainer` does: `--pull always` first,
/// on a missing image print "Unable to find image" and pull, then retry once;
/// `--cidfile` written; warnings printed. Returns the id, or the error as docker
/// words it.
pub async fn create_container(client: &Client, request: &CreateRequest) -> Result<String, String> {
    let cidfile = match &request.cidfile {
        Some(path) => {
            if std::path::Path::new(path).exists() {
                return Err(format!(
                    "container ID file found, make sure the other container isn't running or delete {path}"
                ));
            }
            let file = std::fs::File::create(path).map_err(|e| {
                format!(
                    "failed to create the container ID file: {}",
                    opts::open_error(path, &e)
                )
            })?;
            Some((path.clone(), file))
        }
        None => None,
    };
    let result = create_with_pull(client, request).await;
    match (&result, cidfile) {
        (Ok(id), Some((path, mut file))) => {
            if let Err(e) = file.write_all(id.as_bytes()) {
                return Err(format!(
                    "failed to write the container ID to the file: {path}: {e}"
                ));
            }
        }
        (Err(_), Some((path, file))) => {
            drop(file);
            let _ = std::fs::remove_file(path);
        }
        _ => {}
    }
    result
}

async fn create_with_pull(client: &Client, request: &CreateRequest) -> Result<String, String> {
    let image_ref = parse_image_ref(&request.image);
    if request.pull == PullPolicy::Always {
        if let Some(image_ref) = &image_ref {
            pull_image(
                client,
                image_ref,
                request.platform.as_deref(),
                request.quiet,
            )
            .await?;
        }
    }
    let path = with_query(
        "/containers/create",
        &[
            ("name", request.name.clone().unwrap_or_default()),
            ("platform", request.platform.clone().unwrap_or_default()),
        ],
    );
    let response = match client.post_json(&path, Some(&request.body)).await {
        Ok(response) => response,
        Err(e)
            if e.is_not_found() && image_ref.is_some() && request.pull == PullPolicy::Missing =>
        {
            let image_ref = image_ref.as_ref().expect("checked above");
            if !request.quiet {
                eprintln!("Unable to find image '{}' locally", image_ref.familiar);
            }
            pull_image(
                client,
                image_ref,
                request.platform.as_deref(),
                request.quiet,
            )
            .await?;
            client
                .post_json(&path, Some(&request.body))
                .await
                .map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    for warning in response["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = warning.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    response["Id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "the daemon answered create without an Id".to_string())
}

/// The exit status of a container, once it reaches the awaited condition, or the
/// reason waiting failed.
pub type WaitResult = oneshot::Receiver<Result<i64, String>>;

/// Sends `POST /containers/ID/wait?condition=...` and returns once the daemon has
/// answered with its headers (so the wait is in place before anything starts); the
/// body, with the status code, arrives when the container reaches the condition.
pub async fn wait_exit(client: &Client, id: &str, condition: &str) -> WaitResult {
    let (tx, rx) = oneshot::channel();
    let path = with_query(
        &format!("/containers/{}/wait", path_segment(id)),
        &[("condition", condition.to_string())],
    );
    match client
        .send(Method::POST, &path, client::empty(), None)
        .await
    {
        Ok(response) => {
            tokio::spawn(async move {
                let status = match client::read_json(response).await {
                    Ok(body) => match body["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
                        Some(message) => Err(message.to_string()),
                        None => Ok(body["StatusCode"].as_i64().unwrap_or(0)),
                    },
                    Err(e) => Err(e.to_string()),
                };
                let _ = tx.send(status);
            });
        }
        Err(e) => {
            let _ = tx.send(Err(e.to_string()));
        }
    }
    rx
}

/// The exit status `run` and `start` report: the container's, or 125 (with the
/// reason on stderr) when waiting failed, as docker.
async fn exit_code(wait: WaitResult) -> i64 {
    match wait.await {
        Ok(Ok(code)) => code,
        Ok(Err(message)) => {
            eprintln!("error waiting for container: {message}");
            125
        }
        Err(_) => {
            eprintln!("error waiting for container: the wait ended early");
            125
        }
    }
}

/// The attach endpoint's path for the given streams.
fn attach_path(
    id: &str,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: Option<&str>,
) -> String {
    let flag = |on: bool| if on { "1".to_string() } else { String::new() };
    with_query(
        &format!("/containers/{}/attach", path_segment(id)),
        &[
            ("stream", "1".into()),
            ("stdin", flag(stdin)),
            ("stdout", flag(stdout)),
            ("stderr", flag(stderr)),
            ("detachKeys", detach_keys.unwrap_or_default().to_string()),
        ],
    )
}

async fn start_container(client: &Client, id: &str) -> Result<(), ClientError> {
    client
        .send(
            Method::POST,
            &format!("/containers/{}/start", path_segment(id)),
            client::empty(),
            None,
        )
        .await
        .map(|_| ())
}

/// Aborts a background task when dropped, so every way out of a command stops
/// the signal forwarding and TTY resizing it started.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

pub async fn run(client: &Client, args: RunArgs) -> Result<()> {
    let mut request = parse_options(&args.opts).map_err(|e| usage_error("run", &e))?;
    let tty = request.config_bool("Tty");
    if !args.detach {
        if request.config_bool("AttachStdin") && tty && !std::io::stdin().is_terminal() {
            return Err(fail("the input device is not a TTY"));
        }
    } else {
        if !args.opts.attach.is_empty() {
            return Err(fail(
                "conflicting options: cannot specify both --attach and --detach",
            ));
        }
        for field in ["AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce"] {
            request.body[field] = Value::Bool(false);
        }
    }
    let attach_stdin = request.config_bool("AttachStdin");
    let attach_stdout = request.config_bool("AttachStdout");
    let attach_stderr = request.config_bool("AttachStderr");
    let auto_remove = args.opts.rm;

    let id = match create_container(client, &request).await {
        Ok(id) => id,
        Err(message) => {
            eprintln!(
                "berth: {}.\nSee 'berth run --help'.",
                message.trim_end_matches('.')
            );
            return Err(ExitStatus(start_error_status(&message)).into());
        }
    };
    // docker disables the signal proxy with a TTY: the terminal sends ^C as a byte.
    let _signals = AbortOnDrop(
        (args.sig_proxy && !tty).then(|| stream::forward_signals(client.clone(), id.clone())),
    );
    if !attach_stdout && !attach_stderr {
        println!("{id}");
    }
    let attached = attach_stdin || attach_stdout || attach_stderr;
    let streaming = if attached {
        let hijacked = client
            .hijack(
                &attach_path(
                    &id,
                    attach_stdin,
                    attach_stdout,
                    attach_stderr,
                    args.detach_keys.as_deref(),
                ),
                None,
            )
            .await?;
        let options = StreamOptions {
            tty,
            stdin: attach_stdin,
            detach_keys: stream::detach_keys(args.detach_keys.as_deref()),
        };
        Some(tokio::spawn(stream::stream(hijacked, options)))
    } else {
        None
    };
    let status = wait_exit(
        client,
        &id,
        if auto_remove { "removed" } else { "next-exit" },
    )
    .await;

    if let Err(e) = start_container(client, &id).await {
        if let Some(task) = &streaming {
            // Ends the stream and, through its guard, restores the terminal.
            task.abort();
        }
        if let Some(task) = streaming {
            let _ = task.await;
        }
        let message = e.to_string();
        eprintln!("berth: {}.", message.trim_end_matches('.'));
        if auto_remove {
            let _ = status.await;
        }
        return Err(ExitStatus(start_error_status(&message)).into());
    }

    let _resize = AbortOnDrop(
        (attached && tty && std::io::stdout().is_terminal())
            .then(|| stream::monitor_tty_size(client.clone(), id.clone(), false)),
    );
    if let Some(task) = streaming {
        match task.await {
            Ok(Ok(StreamEnd::Detached)) => return Ok(()),
            Ok(Ok(StreamEnd::Finished)) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(anyhow::anyhow!("attach failed: {e}")),
        }
    }
    if !attach_stdout && !attach_stderr {
        return Ok(());
    }
    let code = exit_code(status).await;
    if code != 0 {
        return Err(exit_status(code));
    }
    Ok(())
}

pub async fn start(client: &Client, args: StartArgs) -> Result<()> {
    if !(args.attach || args.interactive) {
        let mut failed = Vec::new();
        for name in &args.containers {
            match start_container(client, name).await {
                Ok(()) => println!("{name}"),
                Err(e @ ClientError::Daemon { .. }) => {
                    eprintln!("{e}");
                    failed.push(name.as_str());
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !failed.is_empty() {
            return Err(fail(format!(
                "Error: failed to start containers: {}",
                failed.join(", ")
            )));
        }
        return Ok(());
    }
    if args.containers.len() > 1 {
        return Err(fail(
            "you cannot start and attach multiple containers at once",
        ));
    }
    let container = inspect_container(client, &args.containers[0], false).await?;
    let id = container["Id"].as_str().unwrap_or_default().to_string();
    let tty = container["Config"]["Tty"].as_bool().unwrap_or(false);
    let open_stdin = container["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let auto_remove = container["HostConfig"]["AutoRemove"]
        .as_bool()
        .unwrap_or(false);
    let stdin = args.interactive && open_stdin;

    let _signals = AbortOnDrop((!tty).then(|| stream::forward_signals(client.clone(), id.clone())));
    let hijacked = client
        .hijack(
            &attach_path(&id, stdin, true, true, args.detach_keys.as_deref()),
            None,
        )
        .await?;
    let options = StreamOptions {
        tty,
        stdin,
        detach_keys: stream::detach_keys(args.detach_keys.as_deref()),
    };
    let streaming = tokio::spawn(stream::stream(hijacked, options));
    let status = wait_exit(
        client,
        &id,
        if auto_remove { "removed" } else { "next-exit" },
    )
    .await;
    if let Err(e) = start_container(client, &id).await {
        streaming.abort();
        let _ = streaming.await;
        if auto_remove {
            let _ = status.await;
        }
        return Err(e.into());
    }
    let _resize = AbortOnDrop(
        (tty && std::io::stdout().is_terminal())
            .then(|| stream::monitor_tty_size(client.clone(), id.clone(), false)),
    );
    match streaming.await {
        Ok(Ok(StreamEnd::Detached)) => return Ok(()),
        Ok(Ok(StreamEnd::Finished)) => {}
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(anyhow::anyhow!("attach failed: {e}")),
    }
    let code = exit_code(status).await;
    if code != 0 {
        return Err(exit_status(code));
    }
    Ok(())
}

pub async fn attach(client: &Client, args: AttachArgs) -> Result<()> {
    // Ask for the exit status first, so an exit during the attach is not missed.
    let status = wait_exit(client, &args.container, "").await;
    let container = inspect_container(client, &args.container, false).await?;
    let state = &container["State"];
    if !state["Running"].as_bool().unwrap_or(false) {
        return Err(fail(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if state["Paused"].as_bool().unwrap_or(false) {
        return Err(fail(
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    if state["Restarting"].as_bool().unwrap_or(false) {
        return Err(fail(
            "You cannot attach to a restarting container, wait until it is running",
        ));
    }
    let id = container["Id"].as_str().unwrap_or_default().to_string();
    let tty = container["Config"]["Tty"].as_bool().unwrap_or(false);
    if !args.no_stdin && tty && !std::io::stdin().is_terminal() {
        return Err(fail("the input device is not a TTY"));
    }
    let stdin = !args.no_stdin && container["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let _signals = AbortOnDrop(
        (args.sig_proxy && !tty).then(|| stream::forward_signals(client.clone(), id.clone())),
    );
    let hijacked = client
        .hijack(
            &attach_path(&id, stdin, true, true, args.detach_keys.as_deref()),
            None,
        )
        .await?;
    let _resize = AbortOnDrop(
        (tty && std::io::stdout().is_terminal())
            .then(|| stream::monitor_tty_size(client.clone(), id.clone(), false)),
    );
    let options = StreamOptions {
        tty,
        stdin,
        detach_keys: stream::detach_keys(args.detach_keys.as_deref()),
    };
    if stream::stream(hijacked, options).await? == StreamEnd::Detached {
        // docker's attach reports the detach as its error.
        return Err(fail("read escape sequence"));
    }
    match status.await {
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(code)) => Err(exit_status(code)),
        Ok(Err(message)) => Err(fail(message)),
        Err(_) => Err(fail("the wait for the container ended early")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_like_docker() {
        let r = parse_image_ref("busybox").unwrap();
        assert_eq!(
            r,
            ImageRef {
                name: "docker.io/library/busybox".into(),
                tag: "latest".into(),
                familiar: "busybox:latest".into(),
                familiar_name: "busybox".into(),
                domain: "docker.io".into(),
            }
        );
        let r = parse_image_ref("user/app:1.2").unwrap();
        assert_eq!(
            (r.name.as_str(), r.tag.as_str()),
            ("docker.io/user/app", "1.2")
        );
        assert_eq!(r.familiar, "user/app:1.2");
        let r = parse_image_ref("localhost:5000/app").unwrap();
        assert_eq!(r.name, "localhost:5000/app");
        assert_eq!(r.familiar, "localhost:5000/app:latest");
        assert_eq!(r.domain, "localhost:5000");
        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = parse_image_ref(&format!("busybox@{digest}")).unwrap();
        assert_eq!(r.tag, digest);
        assert_eq!(r.familiar, format!("busybox@{digest}"));
        let r = parse_image_ref(&format!("busybox:1@{digest}")).unwrap();
        assert_eq!(
            (r.tag.as_str(), r.familiar_name.as_str()),
            (digest.as_str(), "busybox")
        );
        assert_eq!(parse_image_ref("busybox@sha256:abc"), None);
        assert_eq!(parse_image_ref("Busybox"), None);
        assert_eq!(parse_image_ref(&"a".repeat(64)), None);
        assert_eq!(parse_image_ref("sha256:0123"), None);
    }

    #[test]
    fn start_errors_map_to_docker_exit_codes() {
        assert_eq!(
            start_error_status(
                "Error response from daemon: exec: \"nope\": executable file not found in $PATH"
            ),
            127
        );
        assert_eq!(
            start_error_status("open /x: no such file or directory"),
            127
        );
        assert_eq!(start_error_status("exec /bin/x: permission denied"), 126);
        assert_eq!(
            start_error_status("Error response from daemon: conflict"),
            125
        );
    }

    #[test]
    fn attach_query() {
        assert_eq!(
            attach_path("abc", true, true, false, None),
            "/containers/abc/attach?stream=1&stdin=1&stdout=1"
        );
        assert_eq!(
            attach_path("abc", false, true, true, Some("ctrl-x")),
            "/containers/abc/attach?stream=1&stdout=1&stderr=1&detachKeys=ctrl-x"
        );
    }
}
