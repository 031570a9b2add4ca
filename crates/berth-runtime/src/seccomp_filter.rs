//! An OCI `linux.seccomp` section compiled into the BPF program the kernel loads.
//!
//! libcontainer compiles a container's filter with libseccomp inside the container's
//! init process, at every start: about 4.5 ms for Docker's default profile on its two
//! x86 tables. The program depends only on the profile, so berthd compiles each
//! distinct profile once, here, with the same libseccomp, and the shim loads the
//! result (see the shim's `confine` module). Profiles this module cannot express
//! (listener notifications, filter flags) are left to libcontainer.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde_json::Value;

/// Compiled programs by profile text.
#[derive(Default)]
pub struct FilterCache {
    programs: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl FilterCache {
    /// The program for `section`, compiled on first use; None when libcontainer has to
    /// load this profile itself.
    pub fn program(&self, section: &Value) -> Result<Option<Arc<Vec<u8>>>, String> {
        let key = section.to_string();
        if let Some(program) = self.lock().get(&key) {
            return Ok(Some(program.clone()));
        }
        let Some(program) = compile(section)? else {
            return Ok(None);
        };
        let program = Arc::new(program);
        self.lock().insert(key, program.clone());
        Ok(Some(program))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vec<u8>>>> {
        self.programs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Compiles an OCI seccomp section; None for what only libcontainer can load.
pub fn compile(section: &Value) -> Result<Option<Vec<u8>>, String> {
    if section
        .get("flags")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
        || section.get("listenerPath").is_some()
    {
        return Ok(None);
    }
    let rules = section["syscalls"].as_array().cloned().unwrap_or_default();
    if rules.iter().any(|r| r["action"] == "SCMP_ACT_NOTIFY") {
        return Ok(None);
    }
    let default = action(&section["defaultAction"], &section["defaultErrnoRet"])?;
    let mut filter = ScmpFilterContext::new(default).map_err(|e| e.to_string())?;
    for arch in section["architectures"].as_array().into_iter().flatten() {
        let name = arch.as_str().unwrap_or_default();
        let arch = ScmpArch::from_str(name).map_err(|_| format!("unknown architecture {name}"))?;
        filter.add_arch(arch).map_err(|e| e.to_string())?;
    }
    // As the OCI runtime spec wants: no_new_privs comes from the process, not the filter.
    filter.set_ctl_nnp(false).map_err(|e| e.to_string())?;
    for rule in &rules {
        let act = action(&rule["action"], &rule["errnoRet"])?;
        if act == default {
            continue; // libseccomp refuses a rule that repeats the default
        }
        let comparisons = comparisons(rule)?;
        for name in rule["names"].as_array().into_iter().flatten() {
            // A name this libseccomp does not know is a call no program here can make.
            let Ok(syscall) = ScmpSyscall::from_name(name.as_str().unwrap_or_default()) else {
                continue;
            };
            let added = if comparisons.is_empty() {
                filter.add_rule(act, syscall)
            } else if repeats_an_argument(&comparisons) {
                // libseccomp compares each argument once per rule: one rule each.
                comparisons
                    .iter()
                    .try_for_each(|c| {
                        filter
                            .add_rule_conditional(act, syscall, &[c.1])
                            .map(|_| ())
                    })
                    .map(|_| &mut filter)
            } else {
                let only: Vec<ScmpArgCompare> = comparisons.iter().map(|c| c.1).collect();
                filter.add_rule_conditional(act, syscall, &only)
            };
            added.map_err(|e| format!("seccomp rule for {name}: {e}"))?;
        }
    }
    let mut out = memfd()?;
    filter.export_bpf(&out).map_err(|e| e.to_string())?;
    let mut program = Vec::new();
    out.rewind()
        .and_then(|_| out.read_to_end(&mut program))
        .map_err(|e| e.to_string())?;
    Ok(Some(program))
}

fn action(name: &Value, errno: &Value) -> Result<ScmpAction, String> {
    let errno = errno.as_u64().map(|n| n as i32);
    Ok(match name.as_str().unwrap_or_default() {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno.unwrap_or(libc::EPERM)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno.unwrap_or(libc::EPERM) as u16),
        "SCMP_ACT_LOG" => ScmpAction::Log,
        other => return Err(format!("unknown seccomp action {other:?}")),
    })
}

/// A rule's argument comparisons, with the argument index of each.
fn comparisons(rule: &Value) -> Result<Vec<(u64, ScmpArgCompare)>, String> {
    let mut out = Vec::new();
    for arg in rule["args"].as_array().into_iter().flatten() {
        let index = arg["index"]
            .as_u64()
            .ok_or("seccomp argument without an index")?;
        let value = arg["value"].as_u64().unwrap_or(0);
        let op_name = arg["op"].as_str().unwrap_or_default();
        let op = match ScmpCompareOp::from_str(op_name) {
            Ok(ScmpCompareOp::MaskedEqual(_)) => {
                ScmpCompareOp::MaskedEqual(arg["valueTwo"].as_u64().unwrap_or(0))
            }
            Ok(op) => op,
            Err(_) => return Err(format!("unknown seccomp operator {op_name:?}")),
        };
        out.push((index, ScmpArgCompare::new(index as u32, op, value)));
    }
    Ok(out)
}

fn repeats_an_argument(comparisons: &[(u64, ScmpArgCompare)]) -> bool {
    let mut seen = std::collections::HashSet::new();
    comparisons.iter().any(|(index, _)| !seen.insert(*index))
}

fn memfd() -> Result<std::fs::File, String> {
    let fd = rustix::fs::memfd_create("seccomp-bpf", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| format!("memfd_create: {e}"))?;
    Ok(std::fs::File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_compiles_to_a_program() {
        let profile = crate::seccomp::default_profile(&[]);
        let program = compile(&profile).unwrap().unwrap();
        // struct sock_filter is 8 bytes; Docker's allowlist is hundreds of them.
        assert_eq!(program.len() % 8, 0);
        assert!(program.len() / 8 > 300, "{}", program.len() / 8);
    }

    #[test]
    fn notifications_and_flags_are_left_to_libcontainer() {
        let notify = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
        });
        assert!(compile(&notify).unwrap().is_none());
        let flagged = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        });
        assert!(compile(&flagged).unwrap().is_none());
    }

    #[test]
    fn the_cache_compiles_each_profile_once() {
        let cache = FilterCache::default();
        let profile = crate::seccomp::default_profile(&[]);
        let first = cache.program(&profile).unwrap().unwrap();
        let second = cache.program(&profile).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }
}
