//! The local volume driver: `volumes/<name>/_data` holds a volume's files and
//! `volumes/<name>/volume.json` what we know of it, written atomically. Volumes are
//! only ever deleted by an explicit remove or prune.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use berth_store::{fsutil, ErrorKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    InvalidName(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Store(#[from] berth_store::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::InvalidName(_) | Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Store(e) => e.kind(),
            Error::Io { .. } => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(context: impl Into<String>, source: std::io::Error) -> Error {
    Error::Io {
        context: context.into(),
        source,
    }
}

/// What we keep about a volume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image VOLUME) rather than by name.
    #[serde(default)]
    pub anonymous: bool,
}

/// The set of volumes under `<data root>/volumes`.
pub struct VolumeStore {
    dir: PathBuf,
    lock: Mutex<()>,
}

/// Docker's rule for local volume names.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl VolumeStore {
    pub fn open(data_root: &Path) -> Result<Self> {
        let dir = data_root.join("volumes");
        fsutil::ensure_dir(&dir)?;
        fsutil::sweep_temps(&dir)?;
        Ok(VolumeStore {
            dir,
            lock: Mutex::new(()),
        })
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("volume.json")
    }

    /// Where the volume's files are.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Creates a volume, or returns the existing one of that name (Docker's create is
    /// idempotent). `None` makes an anonymous volume with a random 64-hex name.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<(Volume, bool)> {
        let driver = if driver.is_empty() { "local" } else { driver };
        if driver != "local" {
            return Err(Error::InvalidArgument(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        for key in options.keys() {
            if !["type", "device", "o"].contains(&key.as_str()) {
                return Err(Error::InvalidArgument(format!("invalid option: \"{key}\"")));
            }
        }
        let (name, anonymous) = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !valid_name(n) {
                    return Err(Error::InvalidName(n.to_string()));
                }
                (n.to_string(), false)
            }
            None => (fsutil::random_hex(32), true),
        };
        let _guard = self.guard();
        if let Ok(existing) = self.get(&name) {
            return Ok((existing, false));
        }
        let temp = self.dir.join(format!(".tmp-{}", fsutil::random_hex(8)));
        fsutil::ensure_dir(&temp.join("_data"))?;
        let volume = Volume {
            name: name.clone(),
            driver: driver.to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            options,
            anonymous,
        };
        fsutil::write_json_atomic(&temp.join("volume.json"), &volume)?;
        fs::rename(&temp, self.dir.join(&name))
            .map_err(|e| io(format!("creating volume {name}"), e))?;
        fsutil::sync_dir(&self.dir)?;
        Ok((volume, true))
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        match fsutil::read_json::<Volume>(&self.record_path(name)) {
            Ok(Some(v)) => Ok(v),
            _ => Err(Error::NotFound(name.to_string())),
        }
    }

    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| io("listing volumes", e))?;
        let mut out: Vec<Volume> = entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// For a volume made with driver options (`-o type=tmpfs -o device=tmpfs -o
    /// o=size=64m`, or `-o type=none -o o=bind -o device=/path`), mounts them over its
    /// data directory, once; plain volumes need nothing.
    pub fn ensure_mounted(&self, name: &str) -> Result<()> {
        let volume = self.get(name)?;
        let Some(device) = volume.options.get("device") else {
            return Ok(());
        };
        let target = self.data_path(name);
        if is_mountpoint(&target) {
            return Ok(());
        }
        let kind = volume
            .options
            .get("type")
            .map(String::as_str)
            .unwrap_or("none");
        let mut flags = rustix::mount::MountFlags::empty();
        let mut data: Vec<&str> = Vec::new();
        for o in volume
            .options
            .get("o")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
            .filter(|o| !o.is_empty())
        {
            match o {
                "bind" => flags |= rustix::mount::MountFlags::BIND,
                "ro" => flags |= rustix::mount::MountFlags::RDONLY,
                "rw" => {}
                other => data.push(other),
            }
        }
        let fstype = if kind == "none" { "" } else { kind };
        let data = std::ffi::CString::new(data.join(","))
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        rustix::mount::mount(
            device.as_str(),
            &target,
            fstype,
            flags,
            Some(data.as_c_str()),
        )
        .map_err(|e| {
            io(
                format!("mounting volume {name} ({kind} {device})"),
                e.into(),
            )
        })
    }

    /// Deletes a volume and its data. The caller checks that no container uses it.
    pub fn remove(&self, name: &str) -> Result<()> {
        let _guard = self.guard();
        self.get(name)?;
        let data = self.data_path(name);
        if is_mountpoint(&data) {
            rustix::mount::unmount(&data, rustix::mount::UnmountFlags::DETACH)
                .map_err(|e| io(format!("unmounting volume {name}"), e.into()))?;
        }
        let dir = self.dir.join(name);
        let doomed = self.dir.join(format!(".tmp-rm-{}", fsutil::random_hex(6)));
        fs::rename(&dir, &doomed).map_err(|e| io(format!("removing volume {name}"), e))?;
        fsutil::remove_tree(&doomed)?;
        Ok(())
    }

    /// Bytes of file content in a volume (for prune and `system df`).
    pub fn size(&self, name: &str) -> u64 {
        fsutil::tree_size(&self.data_path(name))
    }
}

fn is_mountpoint(path: &Path) -> bool {
    let target = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|info| {
            info.lines()
                .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
        })
        .unwrap_or(false)
}

/// Docker's copy-up: a volume that is empty when first mounted gets the image's files at
/// that path (contents, ownership, modes, symlinks). `cp -a` preserves all of that and
/// runs at disk speed.
pub fn copy_up(source: &Path, volume_data: &Path) -> Result<bool> {
    let empty = fs::read_dir(volume_data)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !empty || !source.is_dir() {
        return Ok(false);
    }
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", source.display()))
        .arg(volume_data)
        .status()
        .map_err(|e| io("copying image content into the volume", e))?;
    if !status.success() {
        return Err(Error::InvalidArgument(format!(
            "copying {} into the volume failed",
            source.display()
        )));
    }
    // The volume's root takes the image directory's owner and mode.
    if let Ok(meta) = source.metadata() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let _ = fs::set_permissions(
            volume_data,
            fs::Permissions::from_mode(meta.mode() & 0o7777),
        );
        let _ = std::os::unix::fs::chown(volume_data, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(dir.path()).unwrap();
        let (v, created) = store
            .create(Some("data"), "", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(created && v.driver == "local" && !v.anonymous);
        let (_, again) = store
            .create(Some("data"), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(!again);
        let (anon, _) = store
            .create(None, "", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(anon.anonymous && anon.name.len() == 64);
        assert_eq!(store.list().unwrap().len(), 2);
        assert!(store
            .create(Some("bad name"), "", BTreeMap::new(), BTreeMap::new())
            .is_err());
        assert!(store
            .create(Some("x"), "nfs", BTreeMap::new(), BTreeMap::new())
            .is_err());
        store.remove("data").unwrap();
        assert!(matches!(store.get("data"), Err(Error::NotFound(_))));
    }

    #[test]
    fn copy_up_only_into_empty() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/f"), b"x").unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("link")).unwrap();
        let dst = dir.path().join("dst");
        fs::create_dir(&dst).unwrap();
        assert!(copy_up(&src, &dst).unwrap());
        assert_eq!(fs::read(dst.join("sub/f")).unwrap(), b"x");
        assert_eq!(fs::read_link(dst.join("link")).unwrap(), Path::new("sub/f"));
        assert!(!copy_up(&src, &dst).unwrap());
    }
}
