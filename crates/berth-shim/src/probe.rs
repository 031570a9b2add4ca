//! Health probes run by the container's own shim.
//!
//! A probe is what `docker exec` would run, but it is run every few seconds for the
//! life of the container, so it must be cheap: no new shim, no runtime, no state files,
//! one fork. The shim points the pid namespace of its next child at the container's
//! (and back right after), forks, and the child joins the container's cgroups and
//! other namespaces (opened once from `/proc/<pid>`), takes the container's user and
//! capabilities, and executes the command with its output on a pipe back to the shim.
//! The shim watches the pipe and a pidfd in its poll loop, and kills the probe when its
//! timeout passes.
//!
//! The container's seccomp filter is not loaded into probes (Docker's, being execs, run
//! under it). Loading it is the kernel compiling ~660 BPF instructions, about 0.5 ms of
//! CPU per probe, more than the rest of a probe; the way to have it without that cost
//! is a helper forked once into the container's namespaces with the filter loaded,
//! which forks the probes, so that they inherit it.

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

/// The namespaces a probe joins itself, in an order that keeps the paths it still
/// needs reachable: the mount namespace last. (The pid namespace is its parent's doing.)
const NAMESPACES: &[&str] = &["ipc", "uts", "net", "cgroup", "mnt"];

/// The exit code of a probe whose command never ran; its message is on the error pipe.
const SETUP_FAILED: i32 = 125;

/// A probe in flight.
pub struct Running {
    pub id: u64,
    pub pid: libc::pid_t,
    /// The wait status, once the shim's reaper collected it.
    pub status: Option<libc::c_int>,
    pub pidfd: OwnedFd,
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
    own_pid_ns: OwnedFd,
}

impl Handles {
    pub fn open(container_pid: libc::pid_t) -> io::Result<Handles> {
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
            own_pid_ns: File::open("/proc/self/ns/pid")?.into(),
        })
    }
}

/// Starts `spec` in the container `handles` were opened for.
pub fn start(id: u64, handles: &Handles, spec: &ProbeSpec) -> io::Result<Running> {
    let (out_read, out_write) = sys::pipe()?;
    let (err_read, err_write) = sys::pipe()?;
    let prepared = Prepared::new(spec)?;
    // Only the shim's children see this pid namespace; the shim stays in its own.
    setns(&handles.container_pid_ns, libc::CLONE_NEWPID)?;
    let forked = sys::fork_pid();
    if let Ok(0) = forked {
        drop(out_read);
        drop(err_read);
        let message = match enter(handles) {
            Ok(()) => command(&prepared, &out_write),
            Err(message) => message,
        };
        let _ = File::from(err_write).write_all(message.as_bytes());
        // SAFETY: leaving the forked child without running the shim's destructors.
        unsafe { libc::_exit(SETUP_FAILED) }
    }
    setns(&handles.own_pid_ns, libc::CLONE_NEWPID)?;
    let pid = forked?;
    drop(out_write);
    drop(err_write);
    sys::set_nonblocking(out_read.as_raw_fd())?;
    sys::set_nonblocking(err_read.as_raw_fd())?;
    let pidfd = sys::pidfd_open(pid)?;
    let timeout = Duration::from_millis(spec.timeout_ms.max(1));
    Ok(Running {
        id,
        pid,
        status: None,
        pidfd,
        output: File::from(out_read),
        errors: File::from(err_read),
        buffer: Vec::new(),
        limit: spec.output_limit,
        deadline: Instant::now() + timeout,
        output_open: true,
    })
}

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

    /// The outcome once the probe's process has exited, else `None`.
    pub fn try_finish(&mut self) -> Option<ProbeOutcome> {
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

    /// Kills a probe past its deadline and reaps it.
    pub fn kill(&mut self) -> ProbeOutcome {
        // Once reaped, the pid may already name another process.
        if self.status.is_none() {
            let _ = sys::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            // SAFETY: waiting for our own child; status is a valid out-pointer.
            unsafe { libc::waitpid(self.pid, &mut status, 0) };
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

/// In the probe's process (already in the container's pid namespace): joins the
/// container's cgroups and its other namespaces.
fn enter(handles: &Handles) -> Result<(), String> {
    for mut file in &handles.cgroup_procs {
        // "0" is the writer itself.
        let _ = file.write_all(b"0");
    }
    for (name, fd) in &handles.namespaces {
        setns(fd, 0).map_err(|e| format!("joining the container's {name} namespace: {e}"))?;
    }
    Ok(())
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
