//! `--runtime NAME`: the same bundle run by an external OCI runtime binary (runc, crun,
//! youki), driven through its command line as containerd's runc shim does. The
//! processes it creates are reparented to us when it exits, since we are a subreaper.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct ExternalRuntime {
    binary: PathBuf,
    root: PathBuf,
    id: String,
    log: PathBuf,
}

/// The container-side stdio for a process the runtime starts (ignored with a console).
pub struct ChildFds {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl ExternalRuntime {
    pub fn new(binary: &Path, state_root: &Path, id: &str, run_dir: &Path) -> Self {
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        ExternalRuntime {
            binary: binary.to_path_buf(),
            root: state_root.with_file_name(format!("{name}-state")),
            id: id.to_string(),
            log: run_dir.join(format!("{name}.log")),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        cmd
    }

    /// Runs the command, giving the runtime's own error (from its log) on failure.
    fn run(&self, mut cmd: Command, what: &str) -> Result<(), String> {
        let output = cmd
            .output()
            .map_err(|e| format!("running {}: {e}", self.binary.display()))?;
        if output.status.success() {
            return Ok(());
        }
        let logged = std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["level"] == "error")
            .and_then(|v| v["msg"].as_str().map(str::to_string));
        let message =
            logged.unwrap_or_else(|| String::from_utf8_lossy(&output.stderr).trim().to_string());
        Err(format!("OCI runtime {what} failed: {message}"))
    }

    fn with_stdio(cmd: &mut Command, fds: Option<ChildFds>) {
        match fds {
            Some(fds) => {
                cmd.stdin(Stdio::from(fds.stdin))
                    .stdout(Stdio::from(fds.stdout))
                    .stderr(Stdio::from(fds.stderr));
            }
            None => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
        }
    }

    fn read_pid(path: &Path) -> Result<i32, String> {
        std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?
            .trim()
            .parse()
            .map_err(|e| format!("bad pid in {}: {e}", path.display()))
    }

    /// `create`: the process exists, stopped before the user's command.
    pub fn create(
        &self,
        bundle: &Path,
        fds: Option<ChildFds>,
        console: Option<&Path>,
        run_dir: &Path,
    ) -> Result<i32, String> {
        let pid_file = run_dir.join("init.pid");
        let mut cmd = self.command();
        cmd.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(socket) = console {
            cmd.arg("--console-socket").arg(socket);
        }
        cmd.arg(&self.id);
        Self::with_stdio(&mut cmd, fds);
        self.run(cmd, "create")?;
        Self::read_pid(&pid_file)
    }

    pub fn start(&self) -> Result<(), String> {
        let mut cmd = self.command();
        cmd.arg("start").arg(&self.id);
        self.run(cmd, "start")
    }

    /// `exec --detach` of an OCI process file; returns its pid.
    pub fn exec(
        &self,
        process: &Path,
        fds: Option<ChildFds>,
        console: Option<&Path>,
        run_dir: &Path,
    ) -> Result<i32, String> {
        let pid_file = run_dir.join("exec.pid");
        let mut cmd = self.command();
        cmd.arg("exec")
            .arg("--detach")
            .arg("--process")
            .arg(process)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(socket) = console {
            cmd.arg("--console-socket").arg(socket);
        }
        cmd.arg(&self.id);
        Self::with_stdio(&mut cmd, fds);
        self.run(cmd, "exec")?;
        Self::read_pid(&pid_file)
    }

    pub fn kill(&self, signal: i32, all: bool) -> Result<(), String> {
        let mut cmd = self.command();
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        cmd.arg(&self.id).arg(signal.to_string());
        self.run(cmd, "kill")
    }

    pub fn pause(&self, pause: bool) -> Result<(), String> {
        let mut cmd = self.command();
        cmd.arg(if pause { "pause" } else { "resume" })
            .arg(&self.id);
        self.run(cmd, if pause { "pause" } else { "resume" })
    }

    pub fn delete(&self) -> Result<(), String> {
        let mut cmd = self.command();
        cmd.arg("delete").arg("--force").arg(&self.id);
        self.run(cmd, "delete")
    }
}
