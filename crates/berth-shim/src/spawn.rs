//! Creating the process through libcontainer: the container's init (created at once,
//! started on request) or a process joining a running container (built on request, so
//! that attachers are connected before it prints anything).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

use berth_shim_proto::ShimConfig;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;

use crate::confine::ConfinedExecutor;
use crate::external::{ChildFds, ExternalRuntime};
use crate::sys;
use crate::Mode;

/// Our ends of the process's stdio.
pub struct Stdio {
    /// Read ends with the stream each carries (1 stdout, 2 stderr); with a TTY, the pty
    /// master as stream 1.
    pub outputs: Vec<(OwnedFd, u8)>,
    /// Where attached stdin goes (a pipe's write end, or the pty master).
    pub stdin: Option<OwnedFd>,
    /// The pty master, for resizing.
    pub pty: Option<OwnedFd>,
}

/// The container-side ends, handed to libcontainer.
struct ChildStdio {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

pub struct Process {
    mode: Mode,
    config: ShimConfig,
    pid: i32,
    container: Option<Container>,
    pub stdio: Stdio,
    child_stdio: Option<ChildStdio>,
    console: Option<(UnixListener, PathBuf)>,
    /// Set with `--runtime`: an external OCI runtime instead of libcontainer.
    external: Option<ExternalRuntime>,
}

fn err(context: &str, e: impl std::fmt::Display) -> String {
    format!("{context}: {e}")
}

impl Process {
    pub fn create(mode: Mode, config: &ShimConfig) -> Result<Process, String> {
        let mut process = Process {
            mode,
            config: config.clone(),
            pid: 0,
            container: None,
            stdio: Stdio {
                outputs: Vec::new(),
                stdin: None,
                pty: None,
            },
            child_stdio: None,
            console: None,
            external: config.runtime.as_ref().map(|binary| {
                let run_dir = config.socket.parent().unwrap_or(std::path::Path::new("/"));
                ExternalRuntime::new(binary, &config.state_root, &config.id, run_dir)
            }),
        };
        if config.tty {
            let path = config.socket.with_file_name(if mode == Mode::Init {
                "console.sock"
            } else {
                "exec-console.sock"
            });
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).map_err(|e| err("console socket", e))?;
            process.console = Some((listener, path));
        } else {
            let (out_r, out_w) = sys::pipe().map_err(|e| err("stdout pipe", e))?;
            let (err_r, err_w) = sys::pipe().map_err(|e| err("stderr pipe", e))?;
            let child_stdin = if config.open_stdin {
                let (in_r, in_w) = sys::pipe().map_err(|e| err("stdin pipe", e))?;
                process.stdio.stdin = Some(in_w);
                in_r
            } else {
                sys::dev_null().map_err(|e| err("open /dev/null", e))?
            };
            process.stdio.outputs = vec![(out_r, 1), (err_r, 2)];
            process.child_stdio = Some(ChildStdio {
                stdin: child_stdin,
                stdout: out_w,
                stderr: err_w,
            });
        }
        if mode == Mode::Init {
            process.create_init()?;
        }
        Ok(process)
    }

    fn builder(&mut self) -> Result<ContainerBuilder, String> {
        let mut builder = ContainerBuilder::new(self.config.id.clone(), SyscallType::default())
            .with_root_path(self.config.state_root.clone())
            .map_err(|e| err("state root", e))?
            .with_console_socket(self.console.as_ref().map(|(_, p)| p.clone()));
        if let Some(stdio) = self.child_stdio.take() {
            builder = builder
                .with_stdin(stdio.stdin)
                .with_stdout(stdio.stdout)
                .with_stderr(stdio.stderr);
        }
        Ok(builder)
    }

    fn take_child_fds(&mut self) -> Option<ChildFds> {
        self.child_stdio.take().map(|s| ChildFds {
            stdin: s.stdin,
            stdout: s.stdout,
            stderr: s.stderr,
        })
    }

    fn run_dir(&self) -> PathBuf {
        self.config
            .socket
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    fn create_init(&mut self) -> Result<(), String> {
        if self.external.is_some() {
            let fds = self.take_child_fds();
            let console = self.console.as_ref().map(|(_, p)| p.clone());
            let run_dir = self.run_dir();
            let external = self.external.as_ref().ok_or("no runtime")?;
            self.pid = external.create(&self.config.bundle, fds, console.as_deref(), &run_dir)?;
            return self.receive_console();
        }
        let mut builder = self.builder()?;
        if let Some(confinement) = &self.config.confinement {
            builder = builder.with_executor(ConfinedExecutor::precompiled(confinement)?);
        }
        let container = builder
            .as_init(self.config.bundle.clone())
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| format!("OCI runtime create failed: {}", error_chain(&e)))?;
        self.pid = container.pid().map(|p| p.as_raw()).unwrap_or(0);
        self.container = Some(container);
        self.receive_console()?;
        Ok(())
    }

    /// Lets the process run.
    pub fn start(&mut self) -> Result<(), String> {
        match self.mode {
            Mode::Init if self.external.is_some() => {
                self.external.as_ref().ok_or("no runtime")?.start()
            }
            Mode::Exec if self.external.is_some() => {
                let process_path = self
                    .config
                    .exec_process
                    .clone()
                    .ok_or("exec shim without a process")?;
                let fds = self.take_child_fds();
                let console = self.console.as_ref().map(|(_, p)| p.clone());
                let run_dir = self.run_dir();
                let external = self.external.as_ref().ok_or("no runtime")?;
                self.pid = external.exec(&process_path, fds, console.as_deref(), &run_dir)?;
                self.receive_console()
            }
            Mode::Init => {
                let container = self.container.as_mut().ok_or("no container to start")?;
                container
                    .start()
                    .map_err(|e| format!("OCI runtime start failed: {}", error_chain(&e)))
            }
            Mode::Exec => {
                let process_path = self
                    .config
                    .exec_process
                    .clone()
                    .ok_or("exec shim without a process")?;
                let mut builder = self.builder()?;
                if let Some(confinement) = &self.config.confinement {
                    builder = builder.with_executor(ConfinedExecutor::precompiled(confinement)?);
                }
                let pid = builder
                    .as_tenant()
                    .with_process(Some(process_path))
                    .with_detach(true)
                    .build()
                    .map_err(|e| format!("OCI runtime exec failed: {}", error_chain(&e)))?;
                self.pid = pid.as_raw();
                self.receive_console()
            }
        }
    }

    /// With a TTY, the container sends its pty master over the console socket.
    fn receive_console(&mut self) -> Result<(), String> {
        let Some((listener, path)) = self.console.take() else {
            return Ok(());
        };
        listener
            .set_nonblocking(true)
            .map_err(|e| err("console socket", e))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(err("waiting for the container's terminal", e)),
            }
        };
        let _ = std::fs::remove_file(&path);
        stream
            .set_nonblocking(false)
            .map_err(|e| err("console socket", e))?;
        let master =
            sys::recv_fd(stream.as_raw_fd()).map_err(|e| err("receiving the terminal", e))?;
        if let Some((rows, cols)) = self.config.console_size {
            let _ = sys::set_window_size(master.as_raw_fd(), rows, cols);
        }
        let reader = master.try_clone().map_err(|e| err("dup terminal", e))?;
        let writer = master.try_clone().map_err(|e| err("dup terminal", e))?;
        self.stdio.outputs = vec![(reader, 1)];
        if self.config.open_stdin {
            self.stdio.stdin = Some(writer);
        }
        self.stdio.pty = Some(master);
        Ok(())
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn kill(&mut self, signal: i32, all: bool) -> Result<(), String> {
        if self.pid <= 0 {
            return Err("process not started".into());
        }
        if let Some(external) = &self.external {
            if all || self.mode == Mode::Init {
                return external.kill(signal, all);
            }
        }
        if all {
            if let Some(container) = self.container.as_mut() {
                let signal =
                    libcontainer::signal::Signal::try_from(signal).map_err(|e| err("signal", e))?;
                return container
                    .kill(signal, true)
                    .map_err(|e| err("kill", error_chain(&e)));
            }
        }
        sys::kill(self.pid, signal).map_err(|e| err("kill", e))
    }

    pub fn pause(&mut self) -> Result<(), String> {
        if let (Some(external), Mode::Init) = (&self.external, self.mode) {
            return external.pause(true);
        }
        match self.container.as_mut() {
            Some(c) => c.pause().map_err(|e| err("pause", error_chain(&e))),
            None => Err("only a container's own process can be paused".into()),
        }
    }

    pub fn resume(&mut self) -> Result<(), String> {
        if let (Some(external), Mode::Init) = (&self.external, self.mode) {
            return external.pause(false);
        }
        match self.container.as_mut() {
            Some(c) => c.resume().map_err(|e| err("resume", error_chain(&e))),
            None => Err("only a container's own process can be resumed".into()),
        }
    }

    /// Whether an external OCI runtime (`--runtime`) runs the process.
    pub fn is_external(&self) -> bool {
        self.external.is_some()
    }

    /// After the process has exited: removes libcontainer's state and the cgroup.
    pub fn cleanup(&mut self) {
        if let (Some(external), Mode::Init) = (&self.external, self.mode) {
            if let Err(e) = external.delete() {
                eprintln!("berth-shim: {e}");
            }
        }
        if let Some(mut container) = self.container.take() {
            if self.mode == Mode::Init && remove_stopped(&container) {
                return;
            }
            if let Err(e) = container.delete(true) {
                eprintln!("berth-shim: deleting container state: {}", error_chain(&e));
            }
        }
    }
}

/// libcontainer's `delete`, the short way, for a container whose process has been
/// reaped and that has no poststop hooks (berth's specs have none): its cgroups, then
/// its state directory. False when it must be left to libcontainer.
fn remove_stopped(container: &Container) -> bool {
    let Ok(config) = container.spec() else {
        return false;
    };
    if config.hooks.is_some() {
        return false;
    }
    match crate::cgroups::remove_empty(&config.cgroup_path) {
        crate::cgroups::Removal::Removed => {}
        crate::cgroups::Removal::NotFound => return false,
        crate::cgroups::Removal::Refused(why) => {
            eprintln!("berth-shim: {why}; leaving it to libcontainer");
            return false;
        }
    }
    match std::fs::remove_dir_all(&container.root) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("berth-shim: removing {}: {e}", container.root.display());
            false
        }
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
