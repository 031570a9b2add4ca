//! The OCI runtime spec (`config.json`) for a container, with Docker's defaults:
//! capabilities, masked and read-only paths, mounts, cgroup limits.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::record::ContainerRecord;
use crate::user::ResolvedUser;

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, for `--privileged` and `--cap-add ALL`.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Every capability this process may hand on: `ALL_CAPABILITIES` is in kernel number
/// order, so bit N of our bounding set (`CapBnd`) says whether the Nth is ours. A
/// sandboxed daemon can lack some (CAP_SYS_RESOURCE here), and asking for those fails.
/// Read once: berthd never changes its own bounding set, and every confined start
/// asks.
pub fn host_capabilities() -> Vec<String> {
    static HELD: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    HELD.get_or_init(read_host_capabilities).clone()
}

fn read_host_capabilities() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(i, _)| bounding & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// Normalizes `chown`, `CHOWN` and `CAP_CHOWN` to `CAP_CHOWN`.
pub fn normalize_capability(cap: &str) -> Result<String> {
    let upper = cap.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(Error::InvalidArgument(format!(
            "unknown capability: {cap:?}"
        )))
    }
}

/// The capability set after `--privileged`, `--cap-add` and `--cap-drop`.
pub fn capabilities(host: &Value) -> Result<Vec<String>> {
    if host["Privileged"].as_bool().unwrap_or(false) {
        return Ok(host_capabilities());
    }
    let list = |key: &str| -> Result<Vec<String>> {
        host[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(normalize_capability)
            .collect()
    };
    let add = list("CapAdd")?;
    let drop = list("CapDrop")?;
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if add.iter().any(|c| c == "ALL") {
        caps = host_capabilities();
    } else {
        for c in add {
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    Ok(caps)
}

/// What the spec needs beyond the record.
pub struct SpecInputs<'a> {
    pub rootfs: &'a Path,
    pub etc_dir: &'a Path,
    pub user: &'a ResolvedUser,
    pub env: Vec<String>,
    /// The network namespace to join; `None` shares the host's.
    pub netns: Option<&'a Path>,
    /// The host's hard RLIMIT_NOFILE: no rlimit is raised past it.
    pub host_nofile_hard: u64,
    /// Binds, volumes and tmpfs mounts of the container, in OCI form.
    pub extra_mounts: Vec<Value>,
}

/// The init process `--init` runs as PID 1 (Docker's docker-init is tini).
pub fn init_binary() -> Option<std::path::PathBuf> {
    [
        "/usr/bin/docker-init",
        "/usr/bin/tini-static",
        "/usr/libexec/docker/docker-init",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
}

const INIT_PATH: &str = "/sbin/docker-init";

/// `--security-opt no-new-privileges` in any of its spellings.
pub fn no_new_privileges(host: &Value) -> bool {
    host["SecurityOpt"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|o| {
            o == "no-new-privileges"
                || o == "no-new-privileges:true"
                || o == "no-new-privileges=true"
        })
}

pub fn generate(record: &ContainerRecord, inputs: &SpecInputs) -> Result<Value> {
    let host = &record.host_config;
    let privileged = host["Privileged"].as_bool().unwrap_or(false);
    let caps = capabilities(host)?;
    let no_new_privs = no_new_privileges(host);
    let mut args = vec![record.path.clone()];
    args.extend(record.args.iter().cloned());
    let init = host["Init"].as_bool().unwrap_or(false);
    if init {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let cwd = match record.config_str("WorkingDir") {
        "" => "/".to_string(),
        dir => dir.to_string(),
    };

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
    ];
    let shm_size = host["ShmSize"]
        .as_i64()
        .filter(|s| *s > 0)
        .unwrap_or(64 * 1024 * 1024);
    mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}));
    for (name, dest) in [
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
    ] {
        let mut options = vec!["rbind", "rprivate"];
        if host["ReadonlyRootfs"].as_bool().unwrap_or(false) {
            options.push("ro");
        }
        mounts.push(json!({"destination": dest, "type": "bind", "source": inputs.etc_dir.join(name), "options": options}));
    }
    if init {
        let binary = init_binary().ok_or_else(|| {
            Error::InvalidArgument(
                "--init needs tini (docker-init) on the host, and none was found".into(),
            )
        })?;
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": binary, "options": ["bind", "ro"]}));
    }
    if let Some(tmpfs) = host["Tmpfs"].as_object() {
        for (dest, opts) in tmpfs {
            let mut options = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ];
            for o in opts
                .as_str()
                .unwrap_or("")
                .split(',')
                .filter(|o| !o.is_empty())
            {
                let key = o.split('=').next().unwrap_or(o);
                options.retain(|x| {
                    x.split('=').next() != Some(key) && !(key == "exec" && x == "noexec")
                });
                options.push(o.to_string());
            }
            mounts.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}));
        }
    }

    mounts.extend(inputs.extra_mounts.iter().cloned());

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    if let Some(netns) = inputs.netns {
        namespaces.push(json!({"type": "network", "path": netns}));
    }

    let mut resources = json!({
        "devices": if privileged {
            json!([{"allow": true, "access": "rwm"}])
        } else {
            json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            ])
        },
    });
    let memory = host["Memory"].as_i64().unwrap_or(0);
    if memory > 0 {
        let mut m = json!({"limit": memory});
        match host["MemorySwap"].as_i64().unwrap_or(0) {
            0 => m["swap"] = json!(memory * 2),
            -1 => {}
            swap => m["swap"] = json!(swap),
        }
        // Swap limits need memsw accounting; without it, asking for one fails the start.
        if !Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
            && Path::new("/sys/fs/cgroup/memory").exists()
        {
            m.as_object_mut().map(|o| o.remove("swap"));
        }
        if let Some(r) = host["MemoryReservation"].as_i64().filter(|r| *r > 0) {
            m["reservation"] = json!(r);
        }
        resources["memory"] = m;
    }
    let mut cpu = serde_json::Map::new();
    if let Some(shares) = host["CpuShares"].as_i64().filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(shares));
    }
    let nano = host["NanoCpus"].as_i64().unwrap_or(0);
    if nano > 0 {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(nano / 10_000));
    } else {
        if let Some(p) = host["CpuPeriod"].as_i64().filter(|p| *p > 0) {
            cpu.insert("period".into(), json!(p));
        }
        if let Some(q) = host["CpuQuota"].as_i64().filter(|q| *q > 0) {
            cpu.insert("quota".into(), json!(q));
        }
    }
    if let Some(set) = host["CpusetCpus"].as_str().filter(|s| !s.is_empty()) {
        cpu.insert("cpus".into(), json!(set));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(limit) = host["PidsLimit"].as_i64().filter(|l| *l != 0) {
        resources["pids"] = json!({"limit": limit});
    }

    let mut rlimits = Vec::new();
    for u in host["Ulimits"].as_array().into_iter().flatten() {
        let name = u["Name"].as_str().unwrap_or("");
        let kind = format!("RLIMIT_{}", name.to_ascii_uppercase());
        let mut soft = u["Soft"].as_u64().unwrap_or(0);
        let mut hard = u["Hard"].as_u64().unwrap_or(soft);
        if kind == "RLIMIT_NOFILE" {
            hard = hard.min(inputs.host_nofile_hard);
            soft = soft.min(hard);
        }
        rlimits.push(json!({"type": kind, "soft": soft, "hard": hard}));
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": format!("/berth/{}", record.id),
        "resources": resources,
    });
    if !privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    let security_opts: Vec<&str> = host["SecurityOpt"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let unconfined = security_opts
        .iter()
        .any(|o| *o == "seccomp=unconfined" || *o == "seccomp:unconfined");
    // The docker CLI reads a profile file itself and sends its content.
    let custom = security_opts
        .iter()
        .find(|o| (o.starts_with("seccomp=") || o.starts_with("seccomp:")) && !unconfined)
        .map(|o| &o["seccomp=".len()..])
        .filter(|p| *p != "builtin");
    match custom {
        Some(profile) if profile.trim_start().starts_with('{') => {
            linux["seccomp"] = crate::seccomp::from_docker_profile(profile, &caps)
                .map_err(Error::InvalidArgument)?;
        }
        Some(other) => {
            return Err(Error::InvalidArgument(format!(
                "opening seccomp profile ({other}) failed: open {other}: no such file or directory"
            )))
        }
        None if !privileged && !unconfined => {
            linux["seccomp"] = crate::seccomp::default_profile(&caps);
        }
        None => {}
    }
    let mut process = json!({
        "terminal": record.tty(),
        "user": {"uid": inputs.user.uid, "gid": inputs.user.gid, "additionalGids": inputs.user.additional_gids},
        "args": args,
        "env": inputs.env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
    });
    // Only when asked for: libcontainer reads the field's presence, not its value, to
    // decide whether seccomp loads before capabilities are dropped (as it must without
    // no_new_privs) or right before exec.
    if no_new_privs {
        process["noNewPrivileges"] = json!(true);
    }
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": inputs.rootfs, "readonly": host["ReadonlyRootfs"].as_bool().unwrap_or(false)},
        "hostname": record.config_str("Hostname"),
        "mounts": mounts,
        "linux": linux,
    });
    // Round-trip through oci-spec's types: a field we got wrong fails here, not in the shim.
    let typed: oci_spec::runtime::Spec = serde_json::from_value(spec)
        .map_err(|e| Error::Internal(format!("generated an invalid OCI spec: {e}")))?;
    serde_json::to_value(&typed).map_err(|e| Error::Internal(e.to_string()))
}

/// The process of an exec (`process.json`), sharing the container's capabilities.
pub fn exec_process(
    record: &ContainerRecord,
    args: Vec<String>,
    env: Vec<String>,
    cwd: &str,
    user: &ResolvedUser,
    tty: bool,
    privileged: bool,
) -> Result<Value> {
    let caps = if privileged {
        host_capabilities()
    } else {
        capabilities(&record.host_config)?
    };
    let process = json!({
        "terminal": tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
        "args": args,
        "env": env,
        "cwd": if cwd.is_empty() { "/" } else { cwd },
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
    });
    let typed: oci_spec::runtime::Process = serde_json::from_value(process)
        .map_err(|e| Error::Internal(format!("generated an invalid OCI process: {e}")))?;
    serde_json::to_value(&typed).map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_arithmetic() {
        let caps = capabilities(&json!({"CapDrop": ["NET_RAW"], "CapAdd": ["sys_admin"]})).unwrap();
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(
            capabilities(&json!({"CapDrop": ["ALL"]})).unwrap(),
            Vec::<String>::new()
        );
        assert!(capabilities(&json!({"CapAdd": ["BOGUS"]})).is_err());
        assert_eq!(
            capabilities(&json!({"Privileged": true})).unwrap(),
            host_capabilities()
        );
    }
}
