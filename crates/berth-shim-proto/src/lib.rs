//! The contract between berthd and `berth-shim`, kept apart so that berthd never links
//! libcontainer.
//!
//! # Protocol
//! berthd writes a [`ShimConfig`] (`shim.json`) and execs `berth-shim create DIR` (or
//! `exec DIR` for `docker exec`). The shim detaches, creates the process, and prints one
//! [`CreateReport`] line on its stdout. From then on it serves a unix socket: each
//! connection sends one [`Request`] line and reads one [`Response`] line. After
//! `Attach`, the connection carries raw bytes: output from the shim (docker's 8-byte
//! multiplexed frames without a TTY, raw with one) and input towards the process
//! (a half-close of the write side is EOF on the process's stdin, if `stdin_once`).
//! The exit is recorded in `exit_file` ([`ExitStatus`]) before any `Wait` is answered.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the shim needs to run one process; written by berthd as `shim.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimConfig {
    /// The container id (for exec shims: the container the process joins).
    pub id: String,
    /// The OCI bundle (`config.json` and the rootfs it names).
    pub bundle: PathBuf,
    /// libcontainer's state directory root.
    pub state_root: PathBuf,
    /// The socket the shim serves.
    pub socket: PathBuf,
    /// Where the shim records how the process ended.
    pub exit_file: PathBuf,
    /// Docker's json-file log, if logging is on.
    pub log: Option<LogConfig>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// An external OCI runtime binary to use instead of libcontainer.
    pub runtime: Option<PathBuf>,
    /// For exec shims: the OCI process (`process.json`) to start in the container.
    pub exec_process: Option<PathBuf>,
    /// Initial terminal size (rows, cols).
    pub console_size: Option<(u16, u16)>,
    /// Set when berthd compiled the container's seccomp filter itself: the OCI process
    /// then holds every capability, and the shim loads the filter and drops to these
    /// capabilities just before the process executes its program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confinement: Option<Confinement>,
}

/// A precompiled seccomp filter and the capabilities to hold under it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confinement {
    /// The filter as `struct sock_filter` instructions, in the kernel's byte order.
    pub filter: PathBuf,
    /// The OCI `process.capabilities` the process is to end with.
    pub capabilities: serde_json::Value,
}

/// json-file log settings (`--log-opt max-size=… max-file=…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogConfig {
    pub path: PathBuf,
    /// Rotate when the file reaches this many bytes (0: never).
    pub max_size: u64,
    /// How many files to keep, including the current one.
    pub max_file: u32,
    /// Written into every line as `attrs` (from `--log-opt labels=…,env=…`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attrs: std::collections::BTreeMap<String, String>,
}

/// The shim's first and only line on stdout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CreateReport {
    /// The process exists and waits for [`Request::Start`].
    Created { pid: i32, shim_pid: i32 },
    /// Nothing was started; everything the shim made is gone.
    Failed { message: String },
}

/// One request per connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Lets the created process run (runc's `start`).
    Start,
    /// Turns the connection into a stream of the chosen stdio.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Resizes the terminal.
    Resize {
        rows: u16,
        cols: u16,
    },
    /// Sends a signal to the process (with `all`, to every process of the container).
    Kill {
        signal: i32,
        all: bool,
    },
    /// Answers when the process has exited, with its [`ExitStatus`].
    Wait,
    /// The process's pid and whether it has exited.
    State,
    /// Freezes or thaws the container (cgroup freezer).
    Pause,
    Resume,
    /// Runs a health probe inside the container and answers with [`ProbeOutcome`]
    /// when it ends or its timeout passes (then it is killed).
    Probe(ProbeSpec),
}

/// A short command run in a running container's namespaces and cgroup, as the
/// container's own user, with its capabilities: what a healthcheck runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    /// `CAP_…` names: the bounding, effective and permitted sets.
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub no_new_privileges: bool,
    pub timeout_ms: u64,
    /// Bytes of output to keep (stdout and stderr together).
    pub output_limit: usize,
}

/// How a probe went.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeOutcome {
    /// The command's exit code; `None` when it could not be run or timed out.
    pub exit_code: Option<i32>,
    pub output: String,
    /// Why it could not run, in the words of the failing step.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub timed_out: bool,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    Error { message: String },
    State { pid: i32, exited: bool },
    Exited(ExitStatus),
    Probed(ProbeOutcome),
}

/// How the process ended; the shim writes it atomically to `exit_file`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitStatus {
    pub exit_code: i32,
    /// RFC 3339 with nanoseconds.
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub error: Option<String>,
}

/// Stream ids of docker's multiplexed attach/log framing.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// Docker's 8-byte frame header: stream id, three zero bytes, big-endian length.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let n = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes() {
        let line = serde_json::to_string(&Request::Attach {
            stdin: true,
            stdout: true,
            stderr: false,
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false}"#
        );
        let back: Response = serde_json::from_str(
            r#"{"result":"exited","exit_code":3,"finished_at":"2024-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(matches!(
            back,
            Response::Exited(ExitStatus { exit_code: 3, .. })
        ));
        assert_eq!(frame_header(STDERR, 258), [2, 0, 0, 0, 0, 0, 1, 2]);
    }
}
