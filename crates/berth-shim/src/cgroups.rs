//! Removing a stopped container's cgroups directly.
//!
//! libcontainer's `delete` builds a cgroup manager first, which looks up every
//! hierarchy's mount point through procfs again: a few milliseconds of CPU after every
//! exit. Once the process is reaped, the container's cgroups are empty directories, one
//! per hierarchy, and removing them is one `rmdir` each.

use std::io;
use std::path::{Path, PathBuf};

/// What [`remove_empty`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    /// At least one directory removed, none left behind.
    Removed,
    /// No hierarchy had the cgroup: it lives somewhere this module does not look.
    NotFound,
    /// A directory could not go (a process left in it, say): libcontainer must act.
    Refused(String),
}

/// Removes `cgroup_path` (as in the OCI spec, `/berth/<id>`) under every cgroup
/// hierarchy mounted here.
pub fn remove_empty(cgroup_path: &Path) -> Removal {
    let mountinfo = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(text) => text,
        Err(e) => return Removal::Refused(format!("reading mountinfo: {e}")),
    };
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    let mut removed = false;
    for mount_point in cgroup_mount_points(&mountinfo) {
        match std::fs::remove_dir(mount_point.join(relative)) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Removal::Refused(format!(
                    "removing {}: {e}",
                    mount_point.join(relative).display()
                ))
            }
        }
    }
    if removed {
        Removal::Removed
    } else {
        Removal::NotFound
    }
}

/// Mount points of `cgroup` and `cgroup2` filesystems in a mountinfo text.
fn cgroup_mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let fstype = fs.split(' ').next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            mount.split(' ').nth(4).map(|p| PathBuf::from(unescape(p)))
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v1_and_v2_hierarchies_and_nothing_else() {
        let text = "\
25 1 0:23 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw
27 25 0:25 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu
28 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw shared:12 - cgroup cgroup rw,net_cls,net_prio
29 1 0:27 / /mnt/with\\040space rw - cgroup cgroup rw,pids
30 1 8:1 / / rw - ext4 /dev/vda rw";
        assert_eq!(
            cgroup_mount_points(text),
            [
                "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/net_cls,net_prio",
                "/mnt/with space",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_missing_cgroup_is_not_found() {
        assert_eq!(
            remove_empty(Path::new("/berth-test-no-such-cgroup/x")),
            Removal::NotFound
        );
    }
}
