//! Loading a container's seccomp filter in the shim's own code, just before a process
//! executes its program.
//!
//! berthd compiles each distinct filter once (see berth-runtime's `seccomp_filter`)
//! instead of libcontainer compiling it in every container's init; and libcontainer
//! 0.7 builds a process `exec`'d into a container ("tenant") without the container's
//! filter, which Docker applies. So the process, the container's first or an exec'd
//! one, is created holding every capability, and the executor, which runs in it just
//! before `execve`, loads the compiled filter (loading one takes CAP_SYS_ADMIN or
//! no_new_privs) and only then drops to the process's own capabilities, the order
//! libcontainer uses. Health probes inherit it from a helper that loaded it once (see
//! `probe`).

use std::io;
use std::path::Path;

use libcontainer::oci_spec::runtime::{LinuxCapabilities, Spec};
use libcontainer::workload::{default, Executor, ExecutorError, ExecutorValidationError};

/// Runs the process with the container's filter and its own capabilities.
#[derive(Clone)]
pub struct ConfinedExecutor {
    program: Vec<libc::sock_filter>,
    capabilities: LinuxCapabilities,
}

impl ConfinedExecutor {
    /// For a filter berthd compiled: `confinement` from the shim's config.
    pub fn precompiled(confinement: &berth_shim_proto::Confinement) -> Result<Self, String> {
        let program = read_program(&confinement.filter)
            .map_err(|e| format!("reading {}: {e}", confinement.filter.display()))?;
        let capabilities = serde_json::from_value(confinement.capabilities.clone())
            .map_err(|e| format!("the capabilities to confine to: {e}"))?;
        Ok(ConfinedExecutor {
            program,
            capabilities,
        })
    }
}

impl Executor for ConfinedExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        load(&self.program).map_err(|e| {
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

/// A compiled filter as berthd wrote it: `struct sock_filter` after `struct
/// sock_filter`, 8 bytes each in the kernel's byte order.
pub fn read_program(path: &Path) -> io::Result<Vec<libc::sock_filter>> {
    let bytes = std::fs::read(path)?;
    if bytes.is_empty() || bytes.len() % 8 != 0 || bytes.len() / 8 > u16::MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a seccomp program",
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|b| libc::sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

/// Installs `program` as this process's seccomp filter.
pub fn load(program: &[libc::sock_filter]) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            0 as libc::c_ulong,
            &prog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instruction(code: u16, jt: u8, jf: u8, k: u32) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..2].copy_from_slice(&code.to_ne_bytes());
        out[2] = jt;
        out[3] = jf;
        out[4..].copy_from_slice(&k.to_ne_bytes());
        out
    }

    #[test]
    fn a_program_is_read_and_loaded() {
        // getppid fails with EPERM, everything else is allowed.
        const LD_W_ABS: u16 = 0x20;
        const JEQ_K: u16 = 0x15;
        const RET_K: u16 = 0x06;
        let mut bytes = Vec::new();
        bytes.extend(instruction(LD_W_ABS, 0, 0, 0)); // seccomp_data.nr
        bytes.extend(instruction(JEQ_K, 0, 1, libc::SYS_getppid as u32));
        bytes.extend(instruction(RET_K, 0, 0, 0x0005_0000 | libc::EPERM as u32));
        bytes.extend(instruction(RET_K, 0, 0, 0x7fff_0000));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seccomp.bpf");
        std::fs::write(&path, &bytes).unwrap();
        let program = read_program(&path).unwrap();
        assert_eq!(program.len(), 4);
        std::fs::write(&path, &bytes[..12]).unwrap();
        assert!(read_program(&path).is_err());

        // SAFETY: the child only makes system calls and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let code = match load(&program) {
                    Ok(()) if libc::getppid() == -1 => 0,
                    _ => 1,
                };
                libc::_exit(code)
            }
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
