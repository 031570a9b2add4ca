//! Network namespaces made by berthd and kept alive by a bind mount, so that networking
//! can be set up before the container exists and outlive its processes (as CNI does).

use std::path::Path;

use crate::error::{Error, Result};

/// Creates a new network namespace with `lo` up, pinned at `path`.
pub fn create(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    std::fs::write(path, b"").map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let target = path.to_path_buf();
    // unshare(CLONE_NEWNET) changes only the calling thread, so a short-lived thread of
    // our own does it and nothing else in the daemon is affected.
    let result = std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: CLONE_NEWNET only changes this thread's network namespace; it shares
        // no memory or descriptors differently afterwards.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET)? };
        loopback_up()?;
        let tid = rustix::thread::gettid().as_raw_nonzero();
        let source = format!("/proc/self/task/{tid}/ns/net");
        rustix::mount::mount_bind(source.as_str(), &target)?;
        Ok(())
    })
    .join()
    .map_err(|_| Error::Internal("network namespace thread panicked".into()))?;
    result.map_err(|e| {
        let _ = std::fs::remove_file(path);
        Error::io("creating a network namespace", e)
    })
}

/// Unpins and removes a namespace made by [`create`].
pub fn remove(path: &Path) -> Result<()> {
    crate::rootfs::unmount_path(path)?;
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

/// `ip link set lo up`, through the SIOCSIFFLAGS ioctl in the current namespace.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: an all-zero ifreq is a valid starting point.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo\0".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: fd is our socket and req is a valid ifreq for these ioctls.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: closing the socket we opened.
    unsafe { libc::close(fd) };
    result
}
