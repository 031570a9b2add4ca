//! The raw system calls the shim makes, each wrapped once with its safety argument.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A pipe whose ends are close-on-exec; (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both are fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub enum Fork {
    Parent,
    Child,
}

/// fork(2). The shim calls it only while single-threaded, before anything else runs.
pub fn fork() -> io::Result<Fork> {
    // SAFETY: the process is single-threaded here, so the child may run arbitrary code.
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 { Fork::Child } else { Fork::Parent })
}

/// fork(2) from the running shim's loop (single-threaded), returning the child's pid
/// to the parent and 0 to the child.
pub fn fork_pid() -> io::Result<libc::pid_t> {
    // SAFETY: the shim is single-threaded, so the child may run arbitrary code.
    check(unsafe { libc::fork() })
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments; fails harmlessly if already a session leader.
    check(unsafe { libc::setsid() }).map(|_| ())
}

/// Makes orphaned descendants ours to reap, so exec'd and container processes never
/// become zombies of init.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(|_| ())
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(|_| ())
}

/// Points fd 1 and 2 at `target` so the detached shim holds no terminal.
pub fn redirect_stdio(target: &impl AsRawFd) -> io::Result<()> {
    dup_onto(target, 1)?;
    dup_onto(target, 2)
}

/// dup2(2): makes `fd` a copy of `target`.
pub fn dup_onto(target: &impl AsRawFd, fd: RawFd) -> io::Result<()> {
    // SAFETY: dup2 onto a standard descriptor, which we are replacing on purpose.
    check(unsafe { libc::dup2(target.as_raw_fd(), fd) }).map(|_| ())
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Reaps `pid` if it has exited; returns its wait status.
pub fn try_wait(pid: libc::pid_t) -> io::Result<Option<libc::c_int>> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    let ret = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    match ret {
        0 => Ok(None),
        r if r < 0 => Err(io::Error::last_os_error()),
        _ => Ok(Some(status)),
    }
}

/// Docker's exit code for a wait status: the code, or 128 + the signal.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

pub fn kill(pid: libc::pid_t, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    check(unsafe { libc::kill(pid, signal) }).map(|_| ())
}

pub fn set_window_size(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which is valid for the call.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) }).map(|_| ())
}

/// Receives one descriptor passed with SCM_RIGHTS (the pty master from the container).
pub fn recv_fd(socket: RawFd) -> io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one control message with one int.
    let mut control = [0u8; 64];
    // SAFETY: an all-zero msghdr is valid; we fill the pointers below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len();
    // SAFETY: msg points at buffers that live through the call.
    let n = unsafe { libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: CMSG_FIRSTHDR reads the msghdr recvmsg just filled.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Err(io::Error::other(
            "no descriptor received on the console socket",
        ));
    }
    // SAFETY: cmsg is non-null and inside `control`.
    let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
    if level != libc::SOL_SOCKET || kind != libc::SCM_RIGHTS {
        return Err(io::Error::other(
            "unexpected control message on the console socket",
        ));
    }
    // SAFETY: an SCM_RIGHTS message carries at least one int in its data.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const RawFd) };
    // SAFETY: the kernel installed this descriptor in our table for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn dev_null() -> io::Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
}

/// Drops the shim's read-only file pages from its resident set. Creating and starting
/// a container runs most of libcontainer once; the loop that follows needs a sliver of
/// it. The pages stay in the page cache (shared by every shim), so those the loop
/// needs fault back in cheaply, and each shim keeps only what it uses. Only read-only
/// file mappings with no private (copied-on-write) page are touched: their contents
/// always equal the file's, so nothing is lost.
pub fn drop_code_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut candidate: Option<(usize, usize)> = None;
    let flush = |candidate: &mut Option<(usize, usize)>, anonymous_kb: u64| {
        if let (Some((start, end)), 0) = (candidate.take(), anonymous_kb) {
            // SAFETY: MADV_DONTNEED on a private read-only file mapping without
            // copied pages only unmaps them; the next access reads the same bytes
            // back from the file.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some(kb) = line.strip_prefix("Anonymous:") {
            let kb = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(1);
            flush(&mut candidate, kb);
            continue;
        }
        let Some((start, end)) = first.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue; // a "Key: value" line
        };
        let perms = fields.next().unwrap_or("");
        let path = fields.nth(3).unwrap_or("");
        candidate =
            (matches!(perms, "r-xp" | "r--p") && path.starts_with('/')).then_some((start, end));
    }
}
