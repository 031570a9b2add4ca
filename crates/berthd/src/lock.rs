//! One daemon per data root: an exclusive `flock` held for the daemon's lifetime.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{bail, Context};
use rustix::fs::{flock, FlockOperation};

/// Held while the daemon runs; the kernel releases it if the process dies, even by SIGKILL.
pub struct DataRootLock {
    _file: File,
}

impl DataRootLock {
    pub fn acquire(data_root: &Path) -> anyhow::Result<Self> {
        let path = data_root.join("berthd.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            bail!(
                "another berthd (pid {}) is already using data root {}: stop it first, or give this one its own --data-root",
                pid.trim(),
                data_root.display()
            );
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(DataRootLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataRootLock::acquire(dir.path()).unwrap();
        let err = DataRootLock::acquire(dir.path()).err().unwrap().to_string();
        assert!(err.contains("already using data root"), "{err}");
        drop(first);
        assert!(DataRootLock::acquire(dir.path()).is_ok());
    }
}
