//! Resource usage for `stats`, read from the container's cgroup (v1 or v2) and its
//! network namespace, in the shape of Docker's stats JSON.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn cgroup(controller: &str, id: &str) -> PathBuf {
    if v2() {
        PathBuf::from(format!("/sys/fs/cgroup/berth/{id}"))
    } else {
        PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth/{id}"))
    }
}

/// Total CPU time of the host in nanoseconds, from /proc/stat (Docker's system_cpu_usage).
fn system_cpu_usage() -> u64 {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    // SAFETY: sysconf with a constant name has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let total: u64 = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    total * 1_000_000_000 / ticks
}

fn cpu_stats(id: &str) -> Value {
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (total, user, system) = if v2() {
        let text = fs::read_to_string(cgroup("", id).join("cpu.stat")).unwrap_or_default();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} ")))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1000
        };
        (
            field("usage_usec"),
            field("user_usec"),
            field("system_usec"),
        )
    } else {
        let dir = cgroup("cpuacct", id);
        let total = read_u64(&dir.join("cpuacct.usage")).unwrap_or(0);
        let text = fs::read_to_string(dir.join("cpuacct.stat")).unwrap_or_default();
        // SAFETY: as above.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} ")))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1_000_000_000
                / ticks
        };
        (total, field("user"), field("system"))
    };
    json!({
        "cpu_usage": {"total_usage": total, "usage_in_kernelmode": system, "usage_in_usermode": user},
        "system_cpu_usage": system_cpu_usage(),
        "online_cpus": online,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// A cgroup file of `name value` lines (memory.stat) as a JSON map.
fn counters(path: &Path) -> serde_json::Map<String, Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| {
            v.trim()
                .parse::<u64>()
                .ok()
                .map(|v| (k.to_string(), json!(v)))
        })
        .collect()
}

fn memory_stats(id: &str) -> Value {
    let host_total = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    if v2() {
        let dir = cgroup("", id);
        let usage = read_u64(&dir.join("memory.current")).unwrap_or(0);
        let limit = fs::read_to_string(dir.join("memory.max"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(host_total);
        let stats = counters(&dir.join("memory.stat"));
        json!({"usage": usage, "limit": limit.min(host_total.max(1)), "stats": stats})
    } else {
        let dir = cgroup("memory", id);
        let usage = read_u64(&dir.join("memory.usage_in_bytes")).unwrap_or(0);
        let limit = read_u64(&dir.join("memory.limit_in_bytes")).unwrap_or(host_total);
        let stats = counters(&dir.join("memory.stat"));
        json!({
            "usage": usage,
            "max_usage": read_u64(&dir.join("memory.max_usage_in_bytes")).unwrap_or(0),
            "limit": limit.min(host_total.max(1)),
            "failcnt": read_u64(&dir.join("memory.failcnt")).unwrap_or(0),
            "stats": stats,
        })
    }
}

fn pids_stats(id: &str) -> Value {
    let dir = cgroup("pids", id);
    let current = read_u64(&dir.join("pids.current")).unwrap_or(0);
    let limit = fs::read_to_string(dir.join("pids.max"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    match limit {
        Some(l) => json!({"current": current, "limit": l}),
        None => json!({"current": current}),
    }
}

fn blkio_stats(id: &str) -> Value {
    let mut entries = Vec::new();
    if v2() {
        let text = fs::read_to_string(cgroup("", id).join("io.stat")).unwrap_or_default();
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let Some(dev) = parts.next() else { continue };
            let (major, minor) = dev.split_once(':').unwrap_or(("0", "0"));
            for kv in parts {
                if let Some((k, v)) = kv.split_once('=') {
                    let op = match k {
                        "rbytes" => "read",
                        "wbytes" => "write",
                        _ => continue,
                    };
                    entries.push(json!({"major": major.parse::<u64>().unwrap_or(0), "minor": minor.parse::<u64>().unwrap_or(0), "op": op, "value": v.parse::<u64>().unwrap_or(0)}));
                }
            }
        }
    } else {
        let text = fs::read_to_string(cgroup("blkio", id).join("blkio.throttle.io_service_bytes"))
            .unwrap_or_default();
        for line in text.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() == 3 {
                let (major, minor) = parts[0].split_once(':').unwrap_or(("0", "0"));
                entries.push(json!({"major": major.parse::<u64>().unwrap_or(0), "minor": minor.parse::<u64>().unwrap_or(0), "op": parts[1].to_lowercase(), "value": parts[2].parse::<u64>().unwrap_or(0)}));
            }
        }
    }
    json!({"io_service_bytes_recursive": entries})
}

/// Interface counters inside the container's network namespace (through its init's
/// /proc/PID/net/dev), loopback excluded as Docker does.
fn networks(pid: i32) -> Value {
    let mut out = serde_json::Map::new();
    if pid <= 0 {
        return Value::Object(out);
    }
    let text = fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                   "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]}),
        );
    }
    Value::Object(out)
}

/// One sample of Docker's stats document (without `preread`/`precpu_stats`, which the
/// caller fills from the previous sample).
pub fn sample(id: &str, name: &str, pid: i32) -> Value {
    json!({
        "read": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "name": format!("/{name}"),
        "id": id,
        "num_procs": 0,
        "pids_stats": pids_stats(id),
        "cpu_stats": cpu_stats(id),
        "memory_stats": memory_stats(id),
        "blkio_stats": blkio_stats(id),
        "networks": networks(pid),
        "storage_stats": {},
    })
}

/// The pids in the container's cgroup (for `top`).
pub fn pids(id: &str) -> Vec<i32> {
    let path = if v2() {
        cgroup("", id).join("cgroup.procs")
    } else {
        cgroup("pids", id).join("cgroup.procs")
    };
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}
