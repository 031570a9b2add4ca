//! The container's seccomp filter for processes `exec`'d into it.
//!
//! Docker confines an exec'd process with the container's filter. libcontainer 0.7
//! builds an exec'd ("tenant") process's spec without it, so berth adds it back
//! itself: the process is created with every capability, and the executor, which runs
//! in the new process just before `execve`, loads the container's filter (loading one
//! takes CAP_SYS_ADMIN or no_new_privs) and only then drops to the process's own
//! capabilities, as libcontainer does for a container's first process.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxSeccomp, Process, Spec,
};
use libcontainer::workload::{default, Executor, ExecutorError, ExecutorValidationError};

/// Runs the process with the container's filter and its own capabilities.
#[derive(Clone)]
pub struct ConfinedExecutor {
    seccomp: LinuxSeccomp,
    capabilities: LinuxCapabilities,
}

impl Executor for ConfinedExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        libcontainer::seccomp::initialize_seccomp(&self.seccomp).map_err(|e| {
            ExecutorError::Other(format!("loading the container's seccomp filter: {e}"))
        })?;
        let syscall = libcontainer::syscall::syscall::create_syscall();
        libcontainer::capabilities::drop_privileges(&self.capabilities, syscall.as_ref())
            .map_err(|e| ExecutorError::Other(format!("dropping capabilities: {e}")))?;
        default::get_executor().exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        default::get_executor().validate(spec)
    }
}

/// For an exec into the container whose bundle is `bundle`: when the container has a
/// seccomp filter, writes beside `process` the process as libcontainer must create it
/// (every capability) and returns that file with the executor that finishes the job.
pub fn confine(
    bundle: &Path,
    process: &Path,
) -> Result<Option<(PathBuf, ConfinedExecutor)>, String> {
    let spec = Spec::load(bundle.join("config.json"))
        .map_err(|e| format!("reading the container's spec: {e}"))?;
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        return Ok(None);
    };
    if libcontainer::seccomp::is_notify(&seccomp) {
        // A filter that hands syscalls to a listener needs libcontainer's own plumbing.
        return Ok(None);
    }
    let text = std::fs::read(process).map_err(|e| format!("reading {}: {e}", process.display()))?;
    let mut wanted: Process =
        serde_json::from_slice(&text).map_err(|e| format!("reading {}: {e}", process.display()))?;
    let Some(capabilities) = wanted.capabilities().clone() else {
        return Ok(None);
    };
    let every = every_capability();
    let mut created = capabilities.clone();
    created
        .set_bounding(Some(every.clone()))
        .set_effective(Some(every.clone()))
        .set_permitted(Some(every));
    wanted.set_capabilities(Some(created));
    let path = process.with_file_name("process-before-seccomp.json");
    let json = serde_json::to_vec(&wanted).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(Some((
        path,
        ConfinedExecutor {
            seccomp,
            capabilities,
        },
    )))
}

/// Every capability the shim itself holds (a host may keep some out of reach even of
/// root: this one has no CAP_SYS_RESOURCE in its bounding set).
fn every_capability() -> Capabilities {
    caps::read(None, caps::CapSet::Permitted)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| serde_json::from_value::<Capability>(serde_json::json!(c.to_string())).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_held_is_known_to_the_spec() {
        let held = caps::read(None, caps::CapSet::Permitted).unwrap();
        assert_eq!(every_capability().len(), held.len());
    }
}
