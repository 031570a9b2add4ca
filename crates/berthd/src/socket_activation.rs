//! systemd socket activation (`-H fd://`): the listening sockets systemd passed in,
//! as `sd_listen_fds(3)` describes them (`LISTEN_PID`, `LISTEN_FDS`, from fd 3 on).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use anyhow::{anyhow, bail};

const FIRST_FD: RawFd = 3;

/// One inherited listening unix socket.
#[derive(Debug)]
pub struct Activated {
    pub fd: RawFd,
    socket: OwnedFd,
}

impl Activated {
    pub fn into_tokio(self) -> anyhow::Result<tokio::net::UnixListener> {
        let listener = std::os::unix::net::UnixListener::from(self.socket);
        listener.set_nonblocking(true)?;
        Ok(tokio::net::UnixListener::from_std(listener)?)
    }
}

/// Takes the sockets passed to this process, once, and clears the variables so that
/// children do not see them.
pub fn take_listeners() -> Vec<Activated> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<RawFd>().ok())
        .unwrap_or(0);
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    if !for_us {
        return Vec::new();
    }
    (FIRST_FD..FIRST_FD + count)
        .filter(|fd| is_unix_listener(*fd))
        .map(|fd| Activated {
            fd,
            // SAFETY: systemd handed these descriptors to this process for it to own;
            // they are taken exactly once, here.
            socket: unsafe { OwnedFd::from_raw_fd(fd) },
        })
        .collect()
}

fn is_unix_listener(fd: RawFd) -> bool {
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `addr`, which is that large.
    let rc = unsafe { libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len) };
    rc == 0 && addr.ss_family as i32 == libc::AF_UNIX
}

/// `fd://` takes every activated socket; `fd://N` the one with that number.
pub fn select(activated: &mut Vec<Activated>, which: &str) -> anyhow::Result<Vec<Activated>> {
    if activated.is_empty() {
        bail!(
            "no sockets found via socket activation: make sure the service was started by systemd"
        );
    }
    if which.is_empty() {
        return Ok(std::mem::take(activated));
    }
    let fd: RawFd = which.parse().map_err(|_| anyhow!("invalid fd {which:?}"))?;
    let index = activated.iter().position(|a| a.fd == fd).ok_or_else(|| {
        anyhow!("too few socket activated files passed in by systemd: fd {fd} is not one of them")
    })?;
    Ok(vec![activated.remove(index)])
}
