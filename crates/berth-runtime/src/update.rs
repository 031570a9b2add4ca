//! `docker update`: new resource limits and restart policy for an existing container,
//! checked as Docker checks them, written to the live cgroup (v1 or v2) when it runs,
//! and kept in its HostConfig for the next start.
//!
//! Writes to a live cgroup are all-or-nothing: a value the kernel refuses (a memory
//! limit below current usage, a CPU the host lacks) rolls back what was written before
//! it, so the container keeps its old limits.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The HostConfig keys `update` may change.
const RESOURCE_KEYS: &[&str] = &[
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpuShares",
    "CpuPeriod",
    "CpuQuota",
    "CpusetCpus",
    "CpusetMems",
    "PidsLimit",
    "BlkioWeight",
];

fn int(v: &Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or(0)
}

/// Whether an update body sets `key`: Docker's API reads zero and empty as "leave it",
/// except for `PidsLimit`, where 0 (like any value ≤ 0) means unlimited.
fn sets(update: &Value, key: &str) -> bool {
    match &update[key] {
        Value::Number(n) => key == "PidsLimit" || n.as_i64() != Some(0),
        Value::String(s) => !s.is_empty(),
        _ => false,
    }
}

/// The HostConfig after applying an update body: zero or absent fields leave the old
/// value, as Docker's API defines them; `PidsLimit` ≤ 0 means unlimited.
pub fn merged_host_config(current: &Value, update: &Value) -> Result<Value, String> {
    let mut next = current.clone();
    if !next.is_object() {
        next = json!({});
    }
    for key in RESOURCE_KEYS {
        if sets(update, key) {
            next[*key] = update[*key].clone();
        }
    }
    // A new --memory without --memory-swap keeps Docker's "twice the memory" default
    // when swap was defaulted before.
    let memory_changed =
        int(update, "Memory") != 0 && update["MemorySwap"].as_i64().is_none_or(|s| s == 0);
    if memory_changed && int(current, "MemorySwap") == 0 {
        next["MemorySwap"] = json!(0);
    }
    if int(update, "NanoCpus") != 0
        && (int(current, "CpuQuota") != 0 || int(current, "CpuPeriod") != 0)
        && int(update, "CpuQuota") == 0
        && int(update, "CpuPeriod") == 0
    {
        return Err("Conflicting options: Nano CPUs cannot be updated as CPU Period or Quota has already been set".into());
    }
    if (int(update, "CpuQuota") != 0 || int(update, "CpuPeriod") != 0)
        && int(current, "NanoCpus") != 0
        && int(update, "NanoCpus") == 0
    {
        return Err("Conflicting options: CPU Quota or CPU Period cannot be updated as NanoCPUs has already been set".into());
    }
    if !update["RestartPolicy"].is_null() {
        if next["AutoRemove"].as_bool().unwrap_or(false)
            && !matches!(
                update["RestartPolicy"]["Name"].as_str(),
                None | Some("") | Some("no")
            )
        {
            return Err(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            );
        }
        next["RestartPolicy"] = update["RestartPolicy"].clone();
    }
    Ok(next)
}

/// Docker's checks that involve the old and new limits together.
pub fn validate_change(current: &Value, next: &Value) -> Result<(), String> {
    let memory = int(next, "Memory");
    let swap = int(next, "MemorySwap");
    if memory > 0 && swap > 0 && memory > swap && int(current, "MemorySwap") == swap {
        return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
    }
    let reservation = int(next, "MemoryReservation");
    if memory > 0 && reservation > memory {
        return Err(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        );
    }
    let weight = int(next, "BlkioWeight");
    if weight != 0 && !(10..=1000).contains(&weight) {
        return Err("Range of blkio weight is from 10 to 1000".into());
    }
    if let Some(set) = next["CpusetMems"].as_str().filter(|s| !s.is_empty()) {
        let online = std::fs::read_to_string("/sys/devices/system/node/online")
            .unwrap_or_else(|_| "0".into());
        if !within(set, online.trim()) {
            return Err(format!(
                "Requested memory nodes are not available - requested {set}, available: {}",
                online.trim()
            ));
        }
    }
    Ok(())
}

/// Whether every number of a cpuset list (`0-2,4`) lies in `available` (same syntax).
fn within(set: &str, available: &str) -> bool {
    let parse = |s: &str| -> Option<Vec<u32>> {
        let mut out = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                    if a > b {
                        return None;
                    }
                    out.extend(a..=b);
                }
                None => out.push(part.trim().parse().ok()?),
            }
        }
        Some(out)
    };
    match (parse(set), parse(available)) {
        (Some(want), Some(have)) => want.iter().all(|n| have.contains(n)),
        _ => false,
    }
}

/// One value for one cgroup file.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupWrite {
    pub file: PathBuf,
    pub value: String,
}

/// Where a container's cgroup lives, per hierarchy.
#[derive(Debug, Clone)]
pub enum CgroupDirs {
    /// cgroup v1: `<mount>/<controller>/<relative>` for each controller.
    V1 { mount: PathBuf, relative: PathBuf },
    /// cgroup v2: one unified directory.
    V2(PathBuf),
}

impl CgroupDirs {
    /// The directory holding `controller`'s files (v2 has one for all).
    fn controller_dir(&self, controller: &str) -> PathBuf {
        match self {
            CgroupDirs::V1 { mount, relative } => mount.join(controller).join(relative),
            CgroupDirs::V2(dir) => dir.clone(),
        }
    }
}

/// The writes that bring a live cgroup to `next`'s limits, for the keys the update
/// touched, in an order the kernel accepts (v1 wants memory ≤ memory+swap at every step).
pub fn cgroup_writes(
    dirs: &CgroupDirs,
    update: &Value,
    next: &Value,
    current_memsw: Option<i64>,
) -> Vec<CgroupWrite> {
    let touched = |k: &str| sets(update, k);
    let memory = int(next, "Memory");
    let swap = match int(next, "MemorySwap") {
        0 if memory > 0 => memory * 2,
        s => s,
    };
    let shares = int(next, "CpuShares");
    let nano = int(next, "NanoCpus");
    let (period, quota) = if nano > 0 {
        (100_000, nano / 10_000)
    } else {
        (int(next, "CpuPeriod"), int(next, "CpuQuota"))
    };
    let pids = int(next, "PidsLimit");
    let mut out = Vec::new();
    let mut push = |file: PathBuf, value: String| out.push(CgroupWrite { file, value });
    match dirs {
        CgroupDirs::V1 { .. } => {
            let dir = |c: &str| dirs.controller_dir(c);
            if touched("Memory") || touched("MemorySwap") {
                let mem = dir("memory");
                let limit = (
                    mem.join("memory.limit_in_bytes"),
                    memory.max(-1).to_string(),
                );
                let memsw_file = mem.join("memory.memsw.limit_in_bytes");
                let memsw = (memsw_file.exists() && swap != 0).then(|| {
                    (
                        memsw_file,
                        if swap < 0 {
                            "-1".to_string()
                        } else {
                            swap.to_string()
                        },
                    )
                });
                // The kernel wants memory ≤ memory+swap at every step: a growing
                // memsw limit is raised first, a shrinking one lowered after memory.
                let as_limit = |v: i64| if v < 0 { i64::MAX } else { v };
                let grow_swap_first =
                    current_memsw.is_some_and(|cur| as_limit(swap) > as_limit(cur));
                if grow_swap_first {
                    if let Some((f, v)) = memsw.clone() {
                        push(f, v);
                    }
                    if memory > 0 {
                        push(limit.0, limit.1);
                    }
                } else {
                    if memory > 0 {
                        push(limit.0, limit.1);
                    }
                    if let Some((f, v)) = memsw {
                        push(f, v);
                    }
                }
            }
            if touched("MemoryReservation") {
                push(
                    dir("memory").join("memory.soft_limit_in_bytes"),
                    int(next, "MemoryReservation").to_string(),
                );
            }
            if touched("CpuShares") {
                push(dir("cpu").join("cpu.shares"), shares.to_string());
            }
            if touched("NanoCpus") || touched("CpuPeriod") || touched("CpuQuota") {
                if period > 0 {
                    push(dir("cpu").join("cpu.cfs_period_us"), period.to_string());
                }
                push(
                    dir("cpu").join("cpu.cfs_quota_us"),
                    if quota > 0 {
                        quota.to_string()
                    } else {
                        "-1".into()
                    },
                );
            }
            if touched("CpusetCpus") {
                push(
                    dir("cpuset").join("cpuset.cpus"),
                    next["CpusetCpus"].as_str().unwrap_or("").to_string(),
                );
            }
            if touched("CpusetMems") {
                push(
                    dir("cpuset").join("cpuset.mems"),
                    next["CpusetMems"].as_str().unwrap_or("").to_string(),
                );
            }
            if touched("PidsLimit") {
                push(dir("pids").join("pids.max"), pids_value(pids));
            }
            if touched("BlkioWeight") {
                let file = dir("blkio").join("blkio.weight");
                if file.exists() {
                    push(file, int(next, "BlkioWeight").to_string());
                }
            }
        }
        CgroupDirs::V2(dir) => {
            if touched("Memory") || touched("MemorySwap") {
                if memory > 0 {
                    push(dir.join("memory.max"), memory.to_string());
                }
                if swap != 0 && dir.join("memory.swap.max").exists() {
                    push(
                        dir.join("memory.swap.max"),
                        if swap < 0 {
                            "max".into()
                        } else {
                            (swap - memory).max(0).to_string()
                        },
                    );
                }
            }
            if touched("MemoryReservation") {
                push(
                    dir.join("memory.low"),
                    int(next, "MemoryReservation").to_string(),
                );
            }
            if touched("CpuShares") && shares > 0 {
                // runc's conversion from v1 shares [2, 262144] to v2 weight [1, 10000].
                let weight = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
                push(dir.join("cpu.weight"), weight.to_string());
            }
            if touched("NanoCpus") || touched("CpuPeriod") || touched("CpuQuota") {
                let period = if period > 0 { period } else { 100_000 };
                let quota = if quota > 0 {
                    quota.to_string()
                } else {
                    "max".into()
                };
                push(dir.join("cpu.max"), format!("{quota} {period}"));
            }
            if touched("CpusetCpus") {
                push(
                    dir.join("cpuset.cpus"),
                    next["CpusetCpus"].as_str().unwrap_or("").to_string(),
                );
            }
            if touched("CpusetMems") {
                push(
                    dir.join("cpuset.mems"),
                    next["CpusetMems"].as_str().unwrap_or("").to_string(),
                );
            }
            if touched("PidsLimit") {
                push(dir.join("pids.max"), pids_value(pids));
            }
            if touched("BlkioWeight") && dir.join("io.weight").exists() {
                push(
                    dir.join("io.weight"),
                    format!("default {}", int(next, "BlkioWeight")),
                );
            }
        }
    }
    out
}

fn pids_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    }
}

/// Applies the writes in order; on the first refusal, restores what was written and
/// returns Docker's error text.
pub fn apply(writes: &[CgroupWrite]) -> Result<(), String> {
    let mut done: Vec<(&Path, String)> = Vec::new();
    for w in writes {
        let old = std::fs::read_to_string(&w.file)
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if let Err(e) = std::fs::write(&w.file, &w.value) {
            // What was read back is accepted again (v1 reads "unlimited" as a large
            // number it takes; v2's files read as they are written).
            for (file, value) in done.iter().rev() {
                let _ = std::fs::write(file, value);
            }
            return Err(format!(
                "failed to write {:?} to {:?}: {}",
                w.value,
                w.file.display().to_string(),
                e
            ));
        }
        done.push((&w.file, old));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fields_keep_old_values() {
        let current = json!({"Memory": 100 << 20, "CpuShares": 512, "PidsLimit": 10});
        let next = merged_host_config(
            &current,
            &json!({"Memory": 0, "CpuShares": 1024, "PidsLimit": null}),
        )
        .unwrap();
        assert_eq!(next["Memory"], 100 << 20);
        assert_eq!(next["CpuShares"], 1024);
        assert_eq!(next["PidsLimit"], 10);
        let next = merged_host_config(&current, &json!({"PidsLimit": 0})).unwrap();
        assert_eq!(next["PidsLimit"], 0);
    }

    #[test]
    fn restart_policy_and_auto_remove() {
        let current = json!({"AutoRemove": true});
        let err = merged_host_config(&current, &json!({"RestartPolicy": {"Name": "always"}}))
            .unwrap_err();
        assert!(err.contains("AutoRemove"));
        let next = merged_host_config(
            &json!({}),
            &json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}}),
        )
        .unwrap();
        assert_eq!(next["RestartPolicy"]["Name"], "always");
    }

    #[test]
    fn memory_over_existing_swap_is_refused() {
        let current = json!({"Memory": 10 << 20, "MemorySwap": 20 << 20});
        let next = merged_host_config(&current, &json!({"Memory": 30 << 20})).unwrap();
        assert!(validate_change(&current, &next)
            .unwrap_err()
            .contains("memoryswap"));
        let next = merged_host_config(
            &current,
            &json!({"Memory": 30 << 20, "MemorySwap": 60 << 20}),
        )
        .unwrap();
        assert!(validate_change(&current, &next).is_ok());
    }

    #[test]
    fn cpuset_lists() {
        assert!(within("0-1", "0-1"));
        assert!(within("1", "0-3"));
        assert!(!within("0-9", "0-1"));
        assert!(!within("x", "0-1"));
    }

    #[test]
    fn v2_writes() {
        let dirs = CgroupDirs::V2(PathBuf::from("/cg"));
        let update = json!({"NanoCpus": 1_500_000_000i64, "PidsLimit": 0, "CpuShares": 1024});
        let next = merged_host_config(&json!({}), &update).unwrap();
        let writes = cgroup_writes(&dirs, &update, &next, None);
        let find = |f: &str| {
            writes
                .iter()
                .find(|w| w.file == Path::new("/cg").join(f))
                .map(|w| w.value.clone())
        };
        assert_eq!(find("cpu.max").as_deref(), Some("150000 100000"));
        assert_eq!(find("pids.max").as_deref(), Some("max"));
        assert_eq!(find("cpu.weight").as_deref(), Some("39"));
    }

    #[test]
    fn v1_memory_order() {
        let dirs = CgroupDirs::V1 {
            mount: PathBuf::from("/cg"),
            relative: PathBuf::from("berth/x"),
        };
        let update = json!({"Memory": 50 << 20, "MemorySwap": 100 << 20});
        let next = merged_host_config(
            &json!({"Memory": 10 << 20, "MemorySwap": 20 << 20}),
            &update,
        )
        .unwrap();
        let writes = cgroup_writes(&dirs, &update, &next, Some(20 << 20));
        // memsw does not exist under /cg, so only the limit is written.
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].value, (50i64 << 20).to_string());
    }
}
