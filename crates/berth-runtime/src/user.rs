//! `--user` resolved against the container's own /etc/passwd and /etc/group, as Docker
//! does: `name`, `uid`, `name:group`, `uid:gid`.

use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// Reads `etc/passwd` and `etc/group` under `rootfs` (missing files are empty).
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ResolvedUser> {
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    resolve_in(&passwd, &group, spec)
}

pub fn resolve_in(passwd: &str, group: &str, spec: &str) -> Result<ResolvedUser> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = users
        .iter()
        .find(|f| f[0] == user_part)
        .or_else(|| users.iter().find(|f| f[2] == user_part));
    let (uid, mut gid, home, name) = match (entry, user_part.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[5].to_string(),
            f[0].to_string(),
        ),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), String::new()),
        (None, Err(_)) => {
            return Err(Error::InvalidArgument(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(g) = group_part {
        gid = match groups.iter().find(|f| f[0] == g) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                Error::InvalidArgument(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    let additional_gids = if name.is_empty() {
        Vec::new()
    } else {
        groups
            .iter()
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .collect()
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:alice\nalice:x:1000:\n";

    #[test]
    fn forms() {
        assert_eq!(resolve_in(PASSWD, GROUP, "").unwrap().uid, 0);
        let a = resolve_in(PASSWD, GROUP, "alice").unwrap();
        assert_eq!((a.uid, a.gid, a.home.as_str()), (1000, 1000, "/home/alice"));
        assert_eq!(a.additional_gids, vec![50]);
        assert_eq!(resolve_in(PASSWD, GROUP, "1000:50").unwrap().gid, 50);
        assert_eq!(resolve_in(PASSWD, GROUP, "4242").unwrap().uid, 4242);
        assert_eq!(resolve_in(PASSWD, GROUP, "nobody:staff").unwrap().gid, 50);
        assert!(resolve_in(PASSWD, GROUP, "ghost").is_err());
        assert!(resolve_in(PASSWD, GROUP, "alice:ghosts").is_err());
    }
}
