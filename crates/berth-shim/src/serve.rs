//! The shim's event loop: one `poll` over the socket, the clients, the process's output
//! and its pidfd, until the process has exited and everything it printed is delivered.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use berth_shim_proto::{frame_header, ExitStatus, Request, Response, ShimConfig};
use chrono::{SecondsFormat, Utc};

use crate::log::JsonLog;
use crate::probe;
use crate::spawn::Process;
use crate::sys;
use crate::Mode;

/// A slow attacher may lag this far behind before it is cut off, so one stuck client
/// can never stall the container or grow the shim without bound.
const MAX_CLIENT_BACKLOG: usize = 8 * 1024 * 1024;
/// After the process exits, how long to wait for its output pipes to close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// After the exit is recorded, how long to keep flushing to clients before leaving.
const LINGER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a shim waits for its Start before giving up (berthd sends it at once; only
/// a daemon that died in between leaves a shim waiting).
const UNSTARTED_TIMEOUT: Duration = Duration::from_secs(120);
const CTRL_P: u8 = 0x10;
const CTRL_Q: u8 = 0x11;

#[derive(Debug, Clone, Copy, PartialEq)]
enum ClientKind {
    /// Reading its request line.
    Request,
    Attached {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Waiting,
    /// Waiting for the health probe it asked for.
    Probing {
        id: u64,
    },
    /// Answered; closed once its output is flushed.
    Done,
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    kind: ClientKind,
    read_closed: bool,
    dead: bool,
    /// A ctrl-p seen, waiting to know whether ctrl-q follows (detach).
    held_ctrl_p: bool,
}

struct Output {
    file: File,
    stream: u8,
}

pub struct Shim {
    mode: Mode,
    config: ShimConfig,
    process: Process,
    listener: UnixListener,
    clients: Vec<Client>,
    outputs: Vec<Output>,
    stdin: Option<File>,
    stdin_pending: Vec<u8>,
    /// Close stdin once `stdin_pending` is written (the attacher sent EOF).
    stdin_close_after_flush: bool,
    log: Option<JsonLog>,
    pidfd: Option<OwnedFd>,
    started: bool,
    exit: Option<ExitStatus>,
    exited_at: Option<Instant>,
    finalized_at: Option<Instant>,
    probes: Vec<probe::Running>,
    next_probe: u64,
    /// Opened at the first probe, kept for the others.
    probe_handles: Option<probe::Handles>,
}

impl Shim {
    pub fn new(mode: Mode, config: ShimConfig, process: Process, listener: UnixListener) -> Shim {
        let _ = listener.set_nonblocking(true);
        let log = config.log.clone().and_then(|c| match JsonLog::open(c) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("berth-shim: cannot open log: {e}");
                None
            }
        });
        let mut shim = Shim {
            mode,
            config,
            process,
            listener,
            clients: Vec::new(),
            outputs: Vec::new(),
            stdin: None,
            stdin_pending: Vec::new(),
            stdin_close_after_flush: false,
            log,
            pidfd: None,
            started: false,
            exit: None,
            exited_at: None,
            finalized_at: None,
            probes: Vec::new(),
            next_probe: 0,
            probe_handles: None,
        };
        shim.adopt_stdio();
        shim
    }

    /// Takes the process's stdio into the loop (at create, and again after an exec
    /// starts, when its terminal arrives).
    fn adopt_stdio(&mut self) {
        for (fd, stream) in self.process.stdio.outputs.drain(..) {
            let _ = sys::set_nonblocking(fd.as_raw_fd());
            self.outputs.push(Output {
                file: File::from(fd),
                stream,
            });
        }
        if let Some(fd) = self.process.stdio.stdin.take() {
            let _ = sys::set_nonblocking(fd.as_raw_fd());
            self.stdin = Some(File::from(fd));
        }
    }

    pub fn run(mut self) {
        let created = Instant::now();
        loop {
            // Nothing runs until Start; if berthd never sends it (it died, or gave up),
            // there is nothing to wait for.
            if !self.started && created.elapsed() > UNSTARTED_TIMEOUT {
                if self.mode == Mode::Init {
                    // A created container nobody will start: take it down with us.
                    let _ = self.process.kill(libc::SIGKILL, false);
                    let _ = sys::try_wait(self.process.pid());
                    self.process.cleanup();
                }
                break;
            }
            if let Some(at) = self.finalized_at {
                let flushed = self.clients.iter().all(|c| c.outbuf.is_empty() || c.dead);
                if flushed || at.elapsed() > LINGER_TIMEOUT {
                    break;
                }
            }
            self.poll_once();
            if self.exit.is_some() && self.finalized_at.is_none() {
                let drained = self.outputs.is_empty();
                let timed_out = self.exited_at.is_some_and(|t| t.elapsed() > DRAIN_TIMEOUT);
                if drained || timed_out {
                    self.finalize();
                }
            }
        }
        let _ = std::fs::remove_file(&self.config.socket);
    }

    fn poll_once(&mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let pfd = |fd: i32, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        fds.push(pfd(self.listener.as_raw_fd(), libc::POLLIN));
        let pid_slot = self.pidfd.as_ref().map(|p| {
            fds.push(pfd(p.as_raw_fd(), libc::POLLIN));
            fds.len() - 1
        });
        let out_base = fds.len();
        for o in &self.outputs {
            fds.push(pfd(o.file.as_raw_fd(), libc::POLLIN));
        }
        let client_base = fds.len();
        for c in &self.clients {
            let mut events = 0;
            let wants_input = match c.kind {
                ClientKind::Request => true,
                ClientKind::Attached { .. } => !c.read_closed,
                _ => false,
            };
            if wants_input {
                events |= libc::POLLIN;
            }
            if !c.outbuf.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(pfd(c.stream.as_raw_fd(), events));
        }
        let probe_base = fds.len();
        for p in &self.probes {
            fds.push(pfd(p.pidfd.as_raw_fd(), libc::POLLIN));
            // A closed pipe keeps reporting POLLHUP whatever is asked: once it has
            // ended, poll skips it (a negative fd) until the exit comes.
            fds.push(pfd(
                if p.output_open() {
                    p.output.as_raw_fd()
                } else {
                    -1
                },
                libc::POLLIN,
            ));
        }
        let stdin_slot = match (&self.stdin, self.stdin_pending.is_empty()) {
            (Some(f), false) => {
                fds.push(pfd(f.as_raw_fd(), libc::POLLOUT));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let mut timeout = if self.exit.is_some() { 50 } else { 1000 };
        if let Some(next) = self.probes.iter().map(|p| p.deadline).min() {
            let left = next.saturating_duration_since(Instant::now()).as_millis() as i32;
            timeout = timeout.min(left + 1);
        }
        // SAFETY: fds is a valid array of pollfd for the duration of the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if ready < 0 {
            return; // EINTR: go round again
        }
        if fds[0].revents != 0 {
            self.accept();
        }
        if let Some(slot) = pid_slot {
            if fds[slot].revents != 0 {
                self.check_exit();
            }
        }
        // Outputs, newest index first so removal keeps the others' indexes valid.
        for i in (0..self.outputs.len()).rev() {
            if fds[out_base + i].revents != 0 {
                self.read_output(i);
            }
        }
        for i in 0..self.probes.len() {
            if fds[probe_base + 2 * i + 1].revents != 0 {
                self.probes[i].read_output();
            }
        }
        self.reap_children();
        self.settle_probes();
        let client_count = probe_base - client_base;
        for i in 0..client_count.min(self.clients.len()) {
            let revents = fds[client_base + i].revents;
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read_client(i);
            }
            if revents & libc::POLLOUT != 0 {
                self.flush_client(i);
            }
        }
        if let Some(slot) = stdin_slot {
            if fds[slot].revents != 0 {
                self.flush_stdin();
            }
        }
        self.clients.retain(|c| !c.dead);
        // A started exec whose pid we could not watch still gets noticed.
        if self.started && self.pidfd.is_none() && self.exit.is_none() {
            self.check_exit();
        }
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(true);
            self.clients.push(Client {
                stream,
                inbuf: Vec::new(),
                outbuf: Vec::new(),
                kind: ClientKind::Request,
                read_closed: false,
                dead: false,
                held_ctrl_p: false,
            });
        }
    }

    fn check_exit(&mut self) {
        let pid = self.process.pid();
        if pid <= 0 || self.exit.is_some() {
            return;
        }
        match sys::try_wait(pid) {
            // Other children (orphans, probes) are collected by `reap_children`,
            // which also hands each probe its own status.
            Ok(Some(status)) => self.record_exit(sys::exit_code(status), None),
            Ok(None) => {}
            Err(e) => self.record_exit(255, Some(format!("waiting for the process: {e}"))),
        }
    }

    fn record_exit(&mut self, exit_code: i32, error: Option<String>) {
        self.pidfd = None;
        self.exit = Some(ExitStatus {
            exit_code,
            finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
            oom_killed: false,
            error,
        });
        self.exited_at = Some(Instant::now());
        if self.stdin.is_some() {
            self.stdin = None;
        }
    }

    fn read_output(&mut self, index: usize) {
        let mut buf = [0u8; 64 * 1024];
        let stream = self.outputs[index].stream;
        match self.outputs[index].file.read(&mut buf) {
            Ok(0) => {
                self.outputs.remove(index);
            }
            Ok(n) => self.dispatch(stream, &buf[..n]),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted => {}
            // A pty master reads EIO once the last slave is closed: that is its EOF.
            Err(_) => {
                self.outputs.remove(index);
            }
        }
    }

    /// Sends output to the log and to every client attached to that stream.
    fn dispatch(&mut self, stream: u8, data: &[u8]) {
        if let Some(log) = self.log.as_mut() {
            if let Err(e) = log.write(stream, data) {
                eprintln!("berth-shim: writing log: {e}");
            }
        }
        let tty = self.config.tty;
        for c in &mut self.clients {
            if let ClientKind::Attached { stdout, stderr, .. } = c.kind {
                let wanted = (stream == 1 && stdout) || (stream == 2 && stderr);
                if !wanted || c.dead {
                    continue;
                }
                if c.outbuf.len() > MAX_CLIENT_BACKLOG {
                    c.dead = true;
                    continue;
                }
                if !tty {
                    c.outbuf
                        .extend_from_slice(&frame_header(stream, data.len()));
                }
                c.outbuf.extend_from_slice(data);
            }
        }
        for i in 0..self.clients.len() {
            self.flush_client(i);
        }
    }

    fn read_client(&mut self, index: usize) {
        let mut buf = [0u8; 32 * 1024];
        let result = self.clients[index].stream.read(&mut buf);
        match result {
            Ok(0) => self.client_eof(index),
            Ok(n) => match self.clients[index].kind {
                ClientKind::Request => {
                    self.clients[index].inbuf.extend_from_slice(&buf[..n]);
                    if let Some(pos) = self.clients[index].inbuf.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = self.clients[index].inbuf.drain(..=pos).collect();
                        let rest = std::mem::take(&mut self.clients[index].inbuf);
                        self.handle_request(index, &line);
                        if !rest.is_empty() {
                            self.client_input(index, &rest);
                        }
                    } else if self.clients[index].inbuf.len() > 64 * 1024 {
                        self.clients[index].dead = true;
                    }
                }
                ClientKind::Attached { .. } => self.client_input(index, &buf[..n]),
                _ => {}
            },
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.clients[index].dead = true,
        }
    }

    /// Bytes an attached client typed: to the process's stdin, watching for the detach
    /// keys (ctrl-p ctrl-q), which end this attachment and leave the process running.
    fn client_input(&mut self, index: usize, data: &[u8]) {
        let ClientKind::Attached { stdin: true, .. } = self.clients[index].kind else {
            return;
        };
        let mut forward = Vec::with_capacity(data.len() + 1);
        for &b in data {
            let client = &mut self.clients[index];
            if client.held_ctrl_p {
                client.held_ctrl_p = false;
                if b == CTRL_Q {
                    client.dead = true;
                    let _ = client.stream.shutdown(std::net::Shutdown::Both);
                    break;
                }
                forward.push(CTRL_P);
            }
            if b == CTRL_P {
                client.held_ctrl_p = true;
            } else {
                forward.push(b);
            }
        }
        if self.stdin.is_some() {
            self.stdin_pending.extend_from_slice(&forward);
            self.flush_stdin();
        }
    }

    fn client_eof(&mut self, index: usize) {
        let client = &mut self.clients[index];
        client.read_closed = true;
        match client.kind {
            ClientKind::Attached { stdin: true, .. } => {
                if self.config.stdin_once {
                    if self.stdin_pending.is_empty() {
                        self.stdin = None;
                    } else {
                        // Closed after the pending bytes are written.
                        self.stdin_close_after_flush = true;
                    }
                }
            }
            // A client that half-closes still gets its answer.
            ClientKind::Attached { .. } | ClientKind::Probing { .. } => {}
            ClientKind::Waiting => client.dead = true,
            ClientKind::Request | ClientKind::Done => client.dead = true,
        }
    }

    fn handle_request(&mut self, index: usize, line: &[u8]) {
        let request: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.respond(
                    index,
                    &Response::Error {
                        message: format!("bad request: {e}"),
                    },
                );
                self.clients[index].kind = ClientKind::Done;
                return;
            }
        };
        let response = match request {
            Request::Start => self.start(),
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                self.respond(index, &Response::Ok);
                self.clients[index].kind = if self.finalized_at.is_some() {
                    ClientKind::Done
                } else {
                    ClientKind::Attached {
                        stdin,
                        stdout,
                        stderr,
                    }
                };
                return;
            }
            Request::Wait => {
                if let (Some(status), Some(_)) = (&self.exit, self.finalized_at) {
                    Response::Exited(status.clone())
                } else {
                    self.clients[index].kind = ClientKind::Waiting;
                    return;
                }
            }
            Request::Resize { rows, cols } => match &self.process.stdio.pty {
                Some(pty) => match sys::set_window_size(pty.as_raw_fd(), rows, cols) {
                    Ok(()) => Response::Ok,
                    Err(e) => Response::Error {
                        message: format!("resize: {e}"),
                    },
                },
                None => Response::Error {
                    message: "the process has no terminal to resize".into(),
                },
            },
            Request::Kill { signal, all } => {
                if self.exit.is_some() {
                    Response::Error {
                        message: "the process has already exited".into(),
                    }
                } else {
                    match self.process.kill(signal, all) {
                        Ok(()) => Response::Ok,
                        Err(message) => Response::Error { message },
                    }
                }
            }
            Request::State => Response::State {
                pid: self.process.pid(),
                exited: self.exit.is_some(),
            },
            Request::Pause => to_response(self.process.pause()),
            Request::Resume => to_response(self.process.resume()),
            Request::Probe(spec) => {
                if self.mode != Mode::Init || !self.started || self.exit.is_some() {
                    Response::Error {
                        message: "the container is not running".into(),
                    }
                } else {
                    self.next_probe += 1;
                    let handles = match self.probe_handles.take() {
                        Some(handles) => Ok(handles),
                        None => probe::Handles::open(
                            self.process.pid(),
                            self.config.confinement.as_ref().map(|c| c.filter.as_path()),
                        ),
                    };
                    let started = handles.and_then(|mut handles| {
                        let started = probe::start(self.next_probe, &mut handles, &spec);
                        self.probe_handles = Some(handles);
                        started
                    });
                    match started {
                        Ok(running) => {
                            self.clients[index].kind = ClientKind::Probing { id: running.id };
                            self.probes.push(running);
                            return;
                        }
                        Err(e) => Response::Error {
                            message: format!("starting the probe: {e}"),
                        },
                    }
                }
            }
        };
        self.respond(index, &response);
        self.clients[index].kind = ClientKind::Done;
    }

    /// Collects every exited child. Besides the process and the probes, a probe's
    /// command whose parent was killed is reparented to us (the subreaper); it must be
    /// reaped at once, because a pid namespace cannot finish dying while a zombie of it
    /// remains, and the container's own exit would never come.
    fn reap_children(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: status is a valid out-pointer; -1 waits for any child.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            // Probes are the probe helper's children; it reports their end.
            if pid == self.process.pid() && self.exit.is_none() {
                self.record_exit(sys::exit_code(status), None);
            }
        }
    }

    /// Answers the probes that ended and kills those past their deadline.
    fn settle_probes(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.probes.len() {
            let outcome = match self.probes[i].try_finish() {
                Some(outcome) => Some(outcome),
                None if now >= self.probes[i].deadline || self.exit.is_some() => {
                    Some(self.probes[i].kill())
                }
                None => None,
            };
            let Some(outcome) = outcome else {
                i += 1;
                continue;
            };
            let id = self.probes.remove(i).id;
            if let Some(index) = self
                .clients
                .iter()
                .position(|c| c.kind == ClientKind::Probing { id })
            {
                self.respond(index, &Response::Probed(outcome));
                self.clients[index].kind = ClientKind::Done;
                self.flush_client(index);
            }
        }
    }

    fn start(&mut self) -> Response {
        if self.started {
            return Response::Error {
                message: "the process is already started".into(),
            };
        }
        match self.process.start() {
            Ok(()) => {
                self.started = true;
                sys::drop_code_pages();
                self.adopt_stdio();
                match sys::pidfd_open(self.process.pid()) {
                    Ok(fd) => self.pidfd = Some(fd),
                    Err(e) => eprintln!("berth-shim: pidfd_open: {e}; polling instead"),
                }
                self.check_exit();
                Response::Ok
            }
            Err(message) => {
                self.started = true;
                self.record_exit(
                    if self.mode == Mode::Exec { 126 } else { 128 },
                    Some(message.clone()),
                );
                self.outputs.clear();
                Response::Error { message }
            }
        }
    }

    fn respond(&mut self, index: usize, response: &Response) {
        let client = &mut self.clients[index];
        if let Ok(mut line) = serde_json::to_vec(response) {
            line.push(b'\n');
            client.outbuf.extend_from_slice(&line);
        }
        self.flush_client(index);
    }

    fn flush_client(&mut self, index: usize) {
        let Some(client) = self.clients.get_mut(index) else {
            return;
        };
        while !client.outbuf.is_empty() && !client.dead {
            match client.stream.write(&client.outbuf) {
                Ok(0) => client.dead = true,
                Ok(n) => {
                    client.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => client.dead = true,
            }
        }
        if client.outbuf.is_empty() && client.kind == ClientKind::Done {
            let _ = client.stream.shutdown(std::net::Shutdown::Both);
            client.dead = true;
        }
    }

    fn flush_stdin(&mut self) {
        let Some(stdin) = self.stdin.as_mut() else {
            self.stdin_pending.clear();
            return;
        };
        while !self.stdin_pending.is_empty() {
            match stdin.write(&self.stdin_pending) {
                Ok(n) => {
                    self.stdin_pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.stdin_pending.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
        if self.stdin_close_after_flush {
            self.stdin = None;
        }
    }

    /// The process is gone and its output drained: record the exit, answer the waiters,
    /// and let attached clients go once they have everything.
    fn finalize(&mut self) {
        if let Some(log) = self.log.as_mut() {
            let _ = log.flush();
        }
        self.outputs.clear();
        self.stdin = None;
        // The probe helper holds the container's mount namespace.
        self.probe_handles = None;
        // Read before the cgroup goes away with the container's state.
        if self.mode == Mode::Init && oom_killed(&self.config.id) {
            if let Some(exit) = self.exit.as_mut() {
                exit.oom_killed = true;
            }
        }
        // An external runtime's `delete` logs into the run directory, which berthd removes
        // once told of the exit: that cleanup has to come first.
        let clean_up_first = self.mode == Mode::Init && self.process.is_external();
        if clean_up_first {
            self.process.cleanup();
        }
        let status = self.exit.clone().unwrap_or(ExitStatus {
            exit_code: 255,
            finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
            oom_killed: false,
            error: Some("exit status unknown".into()),
        });
        if let Err(e) = write_exit_file(&self.config, &status) {
            eprintln!("berth-shim: recording exit status: {e}");
        }
        self.finalized_at = Some(Instant::now());
        for i in 0..self.clients.len() {
            match self.clients[i].kind {
                ClientKind::Waiting => {
                    self.respond(i, &Response::Exited(status.clone()));
                    self.clients[i].kind = ClientKind::Done;
                    self.flush_client(i);
                }
                ClientKind::Attached { .. } => {
                    self.clients[i].kind = ClientKind::Done;
                    self.flush_client(i);
                }
                _ => {}
            }
        }
        // Removing the cgroups and libcontainer's state takes a few milliseconds that
        // nobody waiting for the exit needs to sit through. berthd waits for this
        // process to end before it starts the container again or reports it removed.
        if self.mode == Mode::Init && !clean_up_first {
            self.process.cleanup();
        }
    }
}

/// Whether the kernel's OOM killer acted in the container's cgroup (v2 `memory.events`,
/// v1 `memory.oom_control`, both with an `oom_kill N` line).
fn oom_killed(id: &str) -> bool {
    let candidates = [
        format!("/sys/fs/cgroup/berth/{id}/memory.events"),
        format!("/sys/fs/cgroup/memory/berth/{id}/memory.oom_control"),
    ];
    candidates.iter().any(|path| {
        std::fs::read_to_string(path).is_ok_and(|text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("oom_kill "))
                .any(|n| n.trim().parse::<u64>().unwrap_or(0) > 0)
        })
    })
}

fn to_response(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => Response::Ok,
        Err(message) => Response::Error { message },
    }
}

/// Atomically (temp file, rename) but not durably: the file is for a berthd that died
/// while the container ran, and a power loss ends the container and its shim with it.
fn write_exit_file(config: &ShimConfig, status: &ExitStatus) -> io::Result<()> {
    let path = &config.exit_file;
    let temp = path.with_extension("tmp");
    let mut file = File::create(&temp)?;
    file.write_all(&serde_json::to_vec(status)?)?;
    std::fs::rename(&temp, path)
}
