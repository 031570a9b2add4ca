//! Health probes run by the container's own shim.
//!
//! A probe is what `docker exec` would run, but it is run every few seconds for the
//! life of the container, so it must be cheap: no new shim, no runtime, no state files,
//! one fork. At the first probe the shim forks a helper that joins the container's
//! namespaces (opened once from `/proc/<pid>`) and points the pid namespace of its
//! children at the container's, and loads the container's seccomp filter when berthd
//! compiled one. The helper stays outside the container (not in its pid namespace nor
//! its cgroups, so the container never sees it) and forks each probe, which inherits
//! all that: loading the filter is the kernel compiling ~660 BPF instructions, ~0.5 ms
//! a time, paid once here instead of at every probe. The probe joins the container's
//! cgroups, takes its user and capabilities, and executes the command with its output
//! on a pipe back to the shim. The shim watches the pipe and a pidfd in its poll loop,
//! and kills the probe when its timeout passes; the helper reports how it ended.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use berth_shim_proto::{ProbeOutcome, ProbeSpec};

use crate::sys;

/// The namespaces the helper joins, in an order that keeps the paths it still needs
/// reachable: the mount namespace last. (The pid namespace is for its children.)
const NAMESPACES: &[&str] = &["ipc", "uts", "net", "cgroup", "mnt"];

/// The exit code of a probe whose command never ran; its message is on the error pipe.
const SETUP_FAILED: i32 = 125;

/// A probe in flight.
pub struct Running {
    pub id: u64,
    pub pid: libc::pid_t,
    /// The wait status, once the helper reported it.
    pub status: Option<libc::c_int>,
    pub pidfd: OwnedFd,
    /// The helper's socket, for the report of how the probe ended.
    helper: OwnedFd,
    pub output: File,
    errors: File,
    buffer: Vec<u8>,
    limit: usize,
    pub deadline: Instant,
    output_open: bool,
}

/// The container's namespaces and cgroups, opened once and kept by the shim for every
/// probe of this run.
pub struct Handles {
    namespaces: Vec<(String, OwnedFd)>,
    /// `cgroup.procs` of each of the container's hierarchies, open for writing.
    cgroup_procs: Vec<File>,
    container_pid_ns: OwnedFd,
    /// The container's compiled seccomp filter, if berthd compiled one.
    seccomp: Option<Vec<libc::sock_filter>>,
    helper: Option<Helper>,
}

impl Handles {
    pub fn open(container_pid: libc::pid_t, seccomp: Option<&Path>) -> io::Result<Handles> {
        let proc_dir = PathBuf::from(format!("/proc/{container_pid}"));
        let mut namespaces = Vec::new();
        for ns in NAMESPACES {
            let file = File::open(proc_dir.join("ns").join(ns))?;
            namespaces.push((ns.to_string(), OwnedFd::from(file)));
        }
        let cgroups = std::fs::read_to_string(proc_dir.join("cgroup"))?;
        Ok(Handles {
            namespaces,
            // A hierarchy the container does not use (or a read-only one) is skipped.
            cgroup_procs: cgroup_procs_files(&cgroups, Path::new("/sys/fs/cgroup"))
                .iter()
                .filter_map(|path| std::fs::OpenOptions::new().write(true).open(path).ok())
                .collect(),
            container_pid_ns: File::open(proc_dir.join("ns/pid"))?.into(),
            seccomp: seccomp.map(crate::confine::read_program).transpose()?,
            helper: None,
        })
    }

    fn helper(&mut self) -> io::Result<&Helper> {
        if self.helper.is_none() {
            self.helper = Some(Helper::spawn(self)?);
        }
        Ok(self.helper.as_ref().expect("just spawned"))
    }
}

/// The process that forks the probes; see the module's text.
struct Helper {
    pid: libc::pid_t,
    /// To kill it even after the reaper took it and its pid went to someone else.
    pidfd: OwnedFd,
    /// A SOCK_SEQPACKET socket: one message per request or report.
    socket: OwnedFd,
}

impl Helper {
    fn spawn(handles: &Handles) -> io::Result<Helper> {
        let (ours, theirs) = sys::seqpacket_pair()?;
        let pid = sys::fork_pid()?;
        if pid == 0 {
            drop(ours);
            let code = match helper_main(handles, &theirs) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = sys::send_with_fds(
                        theirs.as_raw_fd(),
                        format!("failed {e}").as_bytes(),
                        &[],
                    );
                    1
                }
            };
            // SAFETY: leaving the forked helper without running the shim's destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(Helper {
            pid,
            pidfd: sys::pidfd_open(pid)?,
            socket: ours,
        })
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // It holds the container's mount namespace: gone before the shim reports the exit.
        kill_by_pidfd(&self.pidfd);
        // SAFETY: waiting for our own child; if the reaper took it already, the pid is
        // no child of ours any more and this returns at once.
        unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
    }
}

/// SIGKILL through a pidfd: never reaches a process that reused the pid.
fn kill_by_pidfd(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal on a pidfd we hold, no siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

/// The helper's life: into the container's namespaces, under its filter, then a probe
/// per request until the shim goes.
fn helper_main(handles: &Handles, socket: &OwnedFd) -> Result<(), String> {
    // Its children, not itself, are born in the container's pid namespace.
    setns(&handles.container_pid_ns, libc::CLONE_NEWPID)
        .map_err(|e| format!("joining the container's pid namespace: {e}"))?;
    for (name, fd) in &handles.namespaces {
        setns(fd, 0).map_err(|e| format!("joining the container's {name} namespace: {e}"))?;
    }
    if let Some(program) = &handles.seccomp {
        crate::confine::load(program)
            .map_err(|e| format!("loading the container's seccomp filter: {e}"))?;
    }
    let mut buffer = vec![0u8; REQUEST_LIMIT];
    loop {
        let (len, fds) = sys::recv_with_fds(socket.as_raw_fd(), &mut buffer)
            .map_err(|e| format!("reading from the shim: {e}"))?;
        if len == 0 {
            return Ok(()); // the shim is done with probes
        }
        let report = run_probe(handles, &buffer[..len], fds);
        sys::send_with_fds(socket.as_raw_fd(), report.as_bytes(), &[])
            .map_err(|e| e.to_string())?;
        if let Some(pid) = report.strip_prefix("started ").and_then(|p| p.parse().ok()) {
            let mut status = 0;
            // SAFETY: waiting for the probe we just forked.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            let exited = format!("exited {pid} {status}");
            sys::send_with_fds(socket.as_raw_fd(), exited.as_bytes(), &[])
                .map_err(|e| e.to_string())?;
        }
    }
}

/// Forks one probe for `request` (a ProbeSpec) with its output and error pipes;
/// "started <pid>" or "failed <why>".
fn run_probe(handles: &Handles, request: &[u8], fds: Vec<OwnedFd>) -> String {
    let prepared = serde_json::from_slice::<ProbeSpec>(request)
        .map_err(io::Error::other)
        .and_then(|spec| Prepared::new(&spec));
    let (prepared, [output, errors]) = match (prepared, <[OwnedFd; 2]>::try_from(fds)) {
        (Ok(p), Ok(fds)) => (p, fds),
        (Err(e), _) => return format!("failed {e}"),
        (_, Err(_)) => return "failed the probe's pipes did not arrive".into(),
    };
    match sys::fork_pid() {
        Ok(0) => {
            join_cgroups(handles);
            let message = command(&prepared, &output);
            let _ = File::from(errors).write_all(message.as_bytes());
            // SAFETY: leaving the forked probe without running destructors.
            unsafe { libc::_exit(SETUP_FAILED) }
        }
        Ok(pid) => format!("started {pid}"),
        Err(e) => format!("failed fork: {e}"),
    }
}

/// Requests (a ProbeSpec in JSON: the command, its environment) stay well under this.
const REQUEST_LIMIT: usize = 1 << 20;

/// The helper's next report of `kind` ("started"/"failed" or "exited") as text, within
/// `timeout`; reports about earlier probes (a killed one's exit) are skipped.
fn next_report(socket: &OwnedFd, wanted: &[&str], timeout: Duration) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int) };
        if ready <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the probe helper did not answer",
            ));
        }
        let (len, _) = sys::recv_with_fds(socket.as_raw_fd(), &mut buffer)?;
        if len == 0 {
            return Err(io::Error::other("the probe helper is gone"));
        }
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        if wanted.iter().any(|w| text.starts_with(w)) {
            return Ok(text);
        }
    }
}

/// Starts `spec` in the container `handles` were opened for.
pub fn start(id: u64, handles: &mut Handles, spec: &ProbeSpec) -> io::Result<Running> {
    let (out_read, out_write) = sys::pipe()?;
    let (err_read, err_write) = sys::pipe()?;
    let request = serde_json::to_vec(spec).map_err(io::Error::other)?;
    let fds = [out_write.as_raw_fd(), err_write.as_raw_fd()];
    let helper = handles.helper()?;
    let report = sys::send_with_fds(helper.socket.as_raw_fd(), &request, &fds)
        .and_then(|_| next_report(&helper.socket, &["started ", "failed "], HELPER_ANSWER));
    // The probe holds the write ends now; ours would keep the pipes from ever ending.
    drop(out_write);
    drop(err_write);
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            // A helper that stopped answering is replaced at the next probe.
            handles.helper = None;
            return Err(e);
        }
    };
    let pid: libc::pid_t = match report.strip_prefix("started ") {
        Some(pid) => pid.parse().map_err(io::Error::other)?,
        None => {
            return Err(io::Error::other(
                report.trim_start_matches("failed ").to_string(),
            ))
        }
    };
    sys::set_nonblocking(out_read.as_raw_fd())?;
    sys::set_nonblocking(err_read.as_raw_fd())?;
    let pidfd = sys::pidfd_open(pid)?;
    let timeout = Duration::from_millis(spec.timeout_ms.max(1));
    Ok(Running {
        id,
        pid,
        status: None,
        pidfd,
        helper: helper.socket.try_clone()?,
        output: File::from(out_read),
        errors: File::from(err_read),
        buffer: Vec::new(),
        limit: spec.output_limit,
        deadline: Instant::now() + timeout,
        output_open: true,
    })
}

/// How long the helper may take to say it forked a probe, or how one ended.
const HELPER_ANSWER: Duration = Duration::from_secs(2);

impl Running {
    /// Takes what the command wrote; the pipe is drained past the limit so the command
    /// never blocks on it.
    pub fn read_output(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.output.read(&mut chunk) {
                Ok(0) => {
                    self.output_open = false;
                    return;
                }
                Ok(n) => {
                    let room = self.limit.saturating_sub(self.buffer.len());
                    self.buffer.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    pub fn output_open(&self) -> bool {
        self.output_open
    }

    /// Whether the pidfd says the process is gone.
    fn has_exited(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no waiting.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    /// The outcome once the probe's process has exited, else `None`.
    pub fn try_finish(&mut self) -> Option<ProbeOutcome> {
        if self.status.is_none() && self.has_exited() {
            let wanted = format!("exited {} ", self.pid);
            let report = next_report(&self.helper, &[wanted.as_str()], HELPER_ANSWER);
            self.status = match report {
                Ok(text) => text.rsplit(' ').next().and_then(|s| s.parse().ok()),
                // No word from the helper: the probe ended, how is unknown.
                Err(_) => Some(SETUP_FAILED << 8),
            };
        }
        let status = self.status?;
        self.read_output();
        let mut error = String::new();
        let _ = self.errors.read_to_string(&mut error);
        let output = String::from_utf8_lossy(&self.buffer).into_owned();
        let code = sys::exit_code(status);
        Some(if !error.is_empty() {
            ProbeOutcome {
                exit_code: None,
                output,
                error: Some(error),
                timed_out: false,
            }
        } else {
            ProbeOutcome {
                exit_code: Some(code),
                output,
                error: None,
                timed_out: false,
            }
        })
    }

    /// Kills a probe past its deadline (the helper reaps it).
    pub fn kill(&mut self) -> ProbeOutcome {
        if self.status.is_none() {
            kill_by_pidfd(&self.pidfd);
        }
        self.read_output();
        ProbeOutcome {
            exit_code: None,
            output: String::from_utf8_lossy(&self.buffer).into_owned(),
            error: None,
            timed_out: true,
        }
    }
}

/// Everything the children need, made before forking so they only make system calls.
struct Prepared {
    args: Vec<CString>,
    env: Vec<CString>,
    path: Vec<String>,
    cwd: CString,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    capabilities: caps::CapsHashSet,
    no_new_privileges: bool,
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a probe string"))
}

impl Prepared {
    fn new(spec: &ProbeSpec) -> io::Result<Prepared> {
        if spec.args.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no probe command",
            ));
        }
        let mut capabilities = caps::CapsHashSet::new();
        for name in &spec.capabilities {
            if let Ok(cap) = caps::Capability::from_str(name) {
                capabilities.insert(cap);
            }
        }
        Ok(Prepared {
            args: spec
                .args
                .iter()
                .map(|a| cstring(a))
                .collect::<io::Result<_>>()?,
            env: spec
                .env
                .iter()
                .map(|e| cstring(e))
                .collect::<io::Result<_>>()?,
            path: spec
                .env
                .iter()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
                .split(':')
                .map(str::to_string)
                .collect(),
            cwd: cstring(if spec.cwd.is_empty() { "/" } else { &spec.cwd })?,
            uid: spec.uid,
            gid: spec.gid,
            groups: spec.additional_gids.clone(),
            capabilities,
            no_new_privileges: spec.no_new_privileges,
        })
    }
}

/// `cgroup.procs` of every hierarchy the container is in, from its `/proc/<pid>/cgroup`.
fn cgroup_procs_files(proc_cgroup: &str, mount: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        let dir = if controllers.is_empty() {
            // The unified hierarchy: at the mount itself on v2, under `unified` on hybrid.
            if mount.join("cgroup.controllers").exists() {
                mount.to_path_buf()
            } else {
                mount.join("unified")
            }
        } else if let Some(name) = controllers.strip_prefix("name=") {
            mount.join(name)
        } else {
            mount.join(controllers)
        };
        out.push(dir.join(relative).join("cgroup.procs"));
    }
    out
}

fn setns(fd: &OwnedFd, kind: libc::c_int) -> io::Result<()> {
    // SAFETY: setns on a namespace descriptor we hold open.
    if unsafe { libc::setns(fd.as_raw_fd(), kind) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// In the probe's process: joins the container's cgroups.
fn join_cgroups(handles: &Handles) {
    for mut file in &handles.cgroup_procs {
        // "0" is the writer itself.
        let _ = file.write_all(b"0");
    }
}

/// Becomes the container's user and executes the command. Returns only on failure,
/// with the reason.
fn command(p: &Prepared, output: &OwnedFd) -> String {
    let null = match std::fs::OpenOptions::new().read(true).open("/dev/null") {
        Ok(f) => f,
        Err(e) => return format!("opening /dev/null: {e}"),
    };
    for (from, to) in [
        (null.as_raw_fd(), 0),
        (output.as_raw_fd(), 1),
        (output.as_raw_fd(), 2),
    ] {
        // SAFETY: dup2 onto the standard descriptors of this process.
        if unsafe { libc::dup2(from, to as RawFd) } < 0 {
            return format!("setting up stdio: {}", io::Error::last_os_error());
        }
    }
    // Nothing else of the shim's (the container's stdio, its terminal, the log, the
    // socket) may reach the command: every other descriptor closes at exec.
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only sets a flag on this process's own descriptors.
    if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) } != 0 {
        return format!(
            "closing inherited descriptors: {}",
            io::Error::last_os_error()
        );
    }
    // SAFETY: chdir with a valid C string.
    if unsafe { libc::chdir(p.cwd.as_ptr()) } != 0 {
        return format!(
            "chdir to cwd ({:?}) set in config.json failed: {}",
            p.cwd,
            io::Error::last_os_error()
        );
    }
    if let Err(e) = become_user(p) {
        return e;
    }
    let program = match resolve(&p.args[0], &p.path) {
        Ok(program) => program,
        Err(e) => return e,
    };
    let mut argv: Vec<*const libc::c_char> = p.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = p.env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are NUL-terminated arrays of valid C strings that outlive
    // the call; execve returns only on failure.
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    format!(
        "exec: {:?}: {}",
        p.args[0].to_string_lossy(),
        io::Error::last_os_error()
    )
}

fn become_user(p: &Prepared) -> Result<(), String> {
    let fail = |what: &str| format!("{what}: {}", io::Error::last_os_error());
    // The bounding set shrinks while we still hold CAP_SETPCAP, before the uid change.
    for cap in caps::all() {
        if !p.capabilities.contains(&cap) {
            caps::drop(None, caps::CapSet::Bounding, cap)
                .map_err(|e| format!("dropping {cap} from the bounding set: {e}"))?;
        }
    }
    // Keep the permitted set across the uid change, then set exactly the container's.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    // SAFETY: setgroups reads `groups.len()` gids from a valid slice.
    if unsafe { libc::setgroups(p.groups.len(), p.groups.as_ptr()) } != 0 {
        return Err(fail("setgroups"));
    }
    // SAFETY: plain integer arguments.
    if unsafe { libc::setgid(p.gid) } != 0 {
        return Err(fail("setgid"));
    }
    // SAFETY: plain integer arguments.
    if unsafe { libc::setuid(p.uid) } != 0 {
        return Err(fail("setuid"));
    }
    for set in [
        caps::CapSet::Effective,
        caps::CapSet::Permitted,
        caps::CapSet::Inheritable,
    ] {
        caps::set(None, set, &p.capabilities).map_err(|e| format!("setting capabilities: {e}"))?;
    }
    let _ = caps::clear(None, caps::CapSet::Ambient);
    if p.no_new_privileges {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(fail("setting no_new_privs"));
        }
    }
    Ok(())
}

/// Finds the program as execvp would, in the container's PATH (not the shim's).
fn resolve(program: &CString, path: &[String]) -> Result<CString, String> {
    let name = program.to_string_lossy().into_owned();
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        })
    };
    if name.contains('/') {
        return if Path::new(&name).exists() {
            Ok(program.clone())
        } else {
            Err(format!(
                "exec: {name:?}: stat {name}: no such file or directory"
            ))
        };
    }
    for dir in path {
        let candidate = Path::new(if dir.is_empty() { "." } else { dir }).join(&name);
        if executable(&candidate) {
            return CString::new(candidate.as_os_str().as_bytes().to_vec())
                .map_err(|_| "NUL in a path".to_string());
        }
    }
    Err(format!(
        "exec: {name:?}: executable file not found in $PATH"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_files_for_each_hierarchy() {
        let text =
            "12:pids:/berth/abc\n4:cpu,cpuacct:/berth/abc\n1:name=systemd:/x\n0::/berth/abc\n";
        let files = cgroup_procs_files(text, Path::new("/nonexistent"));
        assert_eq!(
            files,
            vec![
                PathBuf::from("/nonexistent/pids/berth/abc/cgroup.procs"),
                PathBuf::from("/nonexistent/cpu,cpuacct/berth/abc/cgroup.procs"),
                PathBuf::from("/nonexistent/systemd/x/cgroup.procs"),
                PathBuf::from("/nonexistent/unified/berth/abc/cgroup.procs"),
            ]
        );
    }

    #[test]
    fn programs_resolve_in_the_given_path() {
        let sh = CString::new("sh").unwrap();
        assert!(resolve(&sh, &["/bin".to_string()]).is_ok());
        let missing = CString::new("no-such-program").unwrap();
        let err = resolve(&missing, &["/bin".to_string()]).unwrap_err();
        assert!(err.contains("executable file not found in $PATH"), "{err}");
    }
}
