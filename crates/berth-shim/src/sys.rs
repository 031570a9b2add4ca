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
    let (_, fds) = recv_with_fds(socket, &mut [0u8; 4096])?;
    fds.into_iter()
        .next()
        .ok_or_else(|| io::Error::other("no descriptor received on the console socket"))
}

/// A connected pair of SOCK_SEQPACKET unix sockets (message boundaries kept),
/// close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors socketpair writes.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair returned two fresh descriptors that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Room in a control buffer for the descriptors one message carries (at most 8).
const CONTROL_ROOM: usize = 64;

/// Sends one message, with `fds` (at most 8) attached through SCM_RIGHTS.
pub fn send_with_fds(socket: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut control = [0u8; CONTROL_ROOM];
    // SAFETY: an all-zero msghdr is valid; the pointers are filled below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let bytes = std::mem::size_of_val(fds) as u32;
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is arithmetic.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(bytes) } as usize;
        if msg.msg_controllen > CONTROL_ROOM {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many descriptors",
            ));
        }
        // SAFETY: msg_control points at `control`, which has room for the message.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(bytes) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), fds.len());
        }
    }
    // SAFETY: msg points at buffers that outlive the call.
    if unsafe { libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one message into `buffer`, with the descriptors attached to it
/// (close-on-exec); a length of 0 is the peer's end.
pub fn recv_with_fds(socket: RawFd, buffer: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let mut control = [0u8; CONTROL_ROOM];
    // SAFETY: an all-zero msghdr is valid; the pointers are filled below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len();
    let n = loop {
        // SAFETY: msg points at buffers that outlive the call.
        let n = unsafe { libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: walking the control messages recvmsg just filled in; each SCM_RIGHTS
    // descriptor was installed in our table for us.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg) as *const RawFd;
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, fds))
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
