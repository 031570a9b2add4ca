//! A container's root filesystem: an overlay of the image's layers (read-only) and the
//! container's own upper directory, plus the generated /etc/hostname, /etc/hosts and
//! /etc/resolv.conf that are bind-mounted over it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

use crate::error::{Error, Result};

/// Mounts `lower` (bottom first) under `upper` at `target`.
/// `volatile` (for `--rm` containers, whose writes are thrown away anyway) skips the
/// sync of the whole upper filesystem that overlayfs does at unmount: with fresh data
/// on that filesystem (a copy-up, a big write) that sync was most of a `run --rm`.
pub fn mount_overlay(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<()> {
    if lower.is_empty() {
        return Err(Error::Internal(
            "an image without layers cannot be mounted".into(),
        ));
    }
    let lowerdir = lower
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let mut options = format!(
        "lowerdir={lowerdir},upperdir={},workdir={},index=off",
        upper.display(),
        work.display()
    );
    // A volatile mount that was not unmounted cleanly leaves a marker that makes every
    // later mount fail; the work directory holds nothing else worth keeping.
    let _ = std::fs::remove_dir_all(work.join("work").join("incompat"));
    if volatile {
        options.push_str(",volatile");
    }
    // The kernel takes one page of options; deeper images need the newer mount API.
    if options.len() >= 4000 {
        return Err(Error::Internal(format!(
            "the image has too many layers ({}) to mount",
            lower.len()
        )));
    }
    let data = std::ffi::CString::new(options).map_err(|e| Error::Internal(e.to_string()))?;
    mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(|e| {
        Error::io(
            format!(
                "mounting the container's root filesystem at {}",
                target.display()
            ),
            e.into(),
        )
    })
}

/// Detaches the mount at `target`; "not mounted" is not an error.
pub fn unmount_path(target: &Path) -> Result<()> {
    match unmount(target, UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::io(
            format!("unmounting {}", target.display()),
            e.into(),
        )),
    }
}

/// Unmounts everything mounted at or below `dir`, deepest first.
pub fn unmount_all_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = unmount_path(Path::new(&p));
    }
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// What the container's /etc/hostname, /etc/hosts and /etc/resolv.conf say.
pub struct EtcFiles<'a> {
    pub hostname: &'a str,
    /// `--add-host name:ip` entries.
    pub extra_hosts: &'a [String],
    /// `--dns` servers.
    pub dns: &'a [String],
    /// `ip<TAB>names` lines for the container's own addresses.
    pub own_addresses: &'a [String],
    /// The embedded resolver of the container's first user-defined network.
    pub resolver: Option<std::net::Ipv4Addr>,
    /// `--network host`: the host's own files.
    pub host_network: bool,
}

/// Writes the container's /etc/hostname, /etc/hosts and /etc/resolv.conf into `dir`.
pub fn write_etc_files(dir: &Path, files: &EtcFiles<'_>) -> Result<()> {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    };
    write("hostname", format!("{}\n", files.hostname))?;
    let mut hosts = if files.host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        )
    };
    if !hosts.is_empty() && !hosts.ends_with('\n') {
        hosts.push('\n');
    }
    for entry in files.extra_hosts {
        if let Some((name, ip)) = entry.split_once(':') {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    for line in files.own_addresses {
        hosts.push_str(line);
        hosts.push('\n');
    }
    write("hosts", hosts)?;
    let resolv = match files.resolver {
        Some(ip) if files.dns.is_empty() => embedded_resolv_conf(ip),
        _ if files.host_network && files.dns.is_empty() => {
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        }
        _ => resolv_conf(files.dns),
    };
    write("resolv.conf", resolv)
}

/// User-defined networks: our resolver, with the host's search domains (Docker's
/// `options ndots:0` keeps short names from being tried with every domain first).
fn embedded_resolv_conf(resolver: std::net::Ipv4Addr) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = format!("nameserver {resolver}\n");
    for line in host.lines() {
        if line.starts_with("search ") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("options ndots:0\n");
    out
}

/// The host's resolv.conf minus loopback resolvers, which a container cannot reach
/// (Docker's rule); Google's public resolvers if nothing is left. `--dns` replaces it.
fn resolv_conf(dns: &[String]) -> String {
    if !dns.is_empty() {
        return dns.iter().map(|d| format!("nameserver {d}\n")).collect();
    }
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["nameserver", addr, ..] => {
                if addr.starts_with("127.") || *addr == "::1" {
                    continue;
                }
                servers += 1;
                out.push_str(line);
                out.push('\n');
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// Checks that `arg0` names an executable inside `rootfs`, the way the runtime would
/// find it, so that a missing command fails with Docker's message before anything runs.
pub fn check_executable(rootfs: &Path, arg0: &str, path_env: &str, workdir: &str) -> Result<()> {
    let candidates: Vec<String> = if arg0.contains('/') {
        if arg0.starts_with('/') {
            vec![arg0.to_string()]
        } else {
            vec![format!("{}/{arg0}", workdir.trim_end_matches('/'))]
        }
    } else {
        path_env
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{}/{arg0}", d.trim_end_matches('/')))
            .collect()
    };
    for candidate in &candidates {
        let Ok(file) = berth_store::extract::open_beneath(rootfs, candidate) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
            if arg0.contains('/') {
                return Err(Error::Start(format!("exec: \"{arg0}\": permission denied")));
            }
            continue;
        }
        return Ok(());
    }
    Err(Error::Start(if arg0.contains('/') {
        format!("exec: \"{arg0}\": stat {arg0}: no such file or directory")
    } else {
        format!("exec: \"{arg0}\": executable file not found in $PATH")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_found_like_the_runtime_would() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("bin")).unwrap();
        std::fs::write(root.path().join("bin/busybox"), b"x").unwrap();
        std::fs::set_permissions(
            root.path().join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("busybox", root.path().join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", root.path().join("bin/abs")).unwrap();
        std::fs::write(root.path().join("bin/noexec"), b"x").unwrap();
        let p = "/usr/bin:/bin";
        assert!(check_executable(root.path(), "sh", p, "/").is_ok());
        assert!(check_executable(root.path(), "abs", p, "/").is_ok());
        assert!(check_executable(root.path(), "/bin/sh", p, "/").is_ok());
        let e = check_executable(root.path(), "nope", p, "/")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "exec: \"nope\": executable file not found in $PATH");
        let e = check_executable(root.path(), "/nope", p, "/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such file or directory"));
        let e = check_executable(root.path(), "/bin/noexec", p, "/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("permission denied"));
    }

    #[test]
    fn loopback_resolvers_are_dropped() {
        let text = resolv_conf(&["1.1.1.1".into()]);
        assert_eq!(text, "nameserver 1.1.1.1\n");
    }
}
