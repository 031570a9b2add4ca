//! What berth keeps about a container: its definition (`record.json`, written once and
//! on rename, durably) and its state (`state.json`, on every change), each written
//! atomically. The state is not fsynced: after a power loss every container has stopped
//! whatever the file says, and one that cannot be read comes back as never started.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use berth_store::fsutil;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// The container's definition: Docker's `Config` and `HostConfig` as given at create
/// (merged with the image's defaults), and what berth derived from them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: Value,
    pub host_config: Value,
    /// The image id (`sha256:…`).
    pub image: String,
    /// The image as the user named it.
    pub image_name: String,
    #[serde(default)]
    pub restart_count: u32,
    /// Binds, volumes and tmpfs mounts, resolved at create.
    #[serde(default)]
    pub mounts: Vec<crate::mounts::MountPoint>,
    /// The networks the container joins when it runs, in order (the first gives the
    /// default route); empty for `none`, `host` and `container:` modes.
    #[serde(default)]
    pub networks: Vec<NetworkAttachment>,
}

/// A network the container is configured on, as `--network`, `--ip`,
/// `--network-alias` or `network connect` gave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    pub network_id: String,
    pub network_name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ipv4_address: String,
    #[serde(default)]
    pub mac_address: String,
}

impl ContainerRecord {
    pub fn config_str(&self, key: &str) -> &str {
        self.config[key].as_str().unwrap_or("")
    }

    pub fn config_bool(&self, key: &str) -> bool {
        self.config[key].as_bool().unwrap_or(false)
    }

    pub fn host_bool(&self, key: &str) -> bool {
        self.host_config[key].as_bool().unwrap_or(false)
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn tty(&self) -> bool {
        self.config_bool("Tty")
    }

    /// `Path` and `Args` as one command line, as `ps` shows it.
    pub fn command_line(&self) -> String {
        std::iter::once(self.path.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Lifecycle states, named as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub shim_pid: i32,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
    /// Stopped by the user (`stop`/`kill`): `unless-stopped` and `always` honour it.
    #[serde(default)]
    pub manually_stopped: bool,
    /// The endpoints of this run, in attachment order.
    #[serde(default)]
    pub endpoints: Vec<berth_net::Endpoint>,
    /// Host ports published for this run.
    #[serde(default)]
    pub ports: Vec<berth_net::PublishedPort>,
    /// `State.Health`, for containers with a healthcheck; reset at each start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
}

pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Default for ContainerState {
    fn default() -> Self {
        ContainerState {
            status: Status::Created,
            pid: 0,
            shim_pid: 0,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            manually_stopped: false,
            endpoints: Vec::new(),
            ports: Vec::new(),
            health: None,
        }
    }
}

impl ContainerState {
    pub fn is_running(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        )
    }
}

/// One container in memory: its definition and its state, each behind its own lock.
pub struct Container {
    pub dir: PathBuf,
    pub record: RwLock<ContainerRecord>,
    pub state: Mutex<ContainerState>,
}

impl Container {
    pub fn id(&self) -> String {
        self.record().id.clone()
    }

    pub fn record(&self) -> ContainerRecord {
        self.record
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn state(&self) -> ContainerState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes the state in memory, and writes it through only when `change` returns
    /// true: for changes too frequent to write every time (health probe logs), whose
    /// latest value goes to disk with the next written change.
    pub fn update_state_lazily(
        &self,
        change: impl FnOnce(&mut ContainerState) -> bool,
    ) -> Result<ContainerState> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = state.clone();
        if change(&mut next) {
            fsutil::write_json_unsynced(&self.dir.join("state.json"), &next)?;
        }
        *state = next.clone();
        Ok(next)
    }

    /// Changes the state and writes it through.
    pub fn update_state(&self, change: impl FnOnce(&mut ContainerState)) -> Result<ContainerState> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = state.clone();
        change(&mut next);
        fsutil::write_json_unsynced(&self.dir.join("state.json"), &next)?;
        *state = next.clone();
        Ok(next)
    }

    pub fn update_record(
        &self,
        change: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        let mut record = self.record.write().unwrap_or_else(|p| p.into_inner());
        let mut next = record.clone();
        change(&mut next);
        fsutil::write_json_atomic(&self.dir.join("record.json"), &next)?;
        *record = next.clone();
        Ok(next)
    }
}

/// Every container, by id, with a name index.
#[derive(Default)]
pub struct ContainerSet {
    by_id: RwLock<HashMap<String, Arc<Container>>>,
}

impl ContainerSet {
    /// Loads `containers/*/record.json`; a directory without a readable record is the
    /// remains of an interrupted create and is removed.
    pub fn load(dir: &Path) -> Result<Self> {
        fsutil::ensure_dir(dir)?;
        let set = ContainerSet::default();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                // A removal cut short: the container was already gone for its users.
                crate::rootfs::unmount_all_under(&path);
                let _ = fsutil::remove_tree(&path);
                continue;
            }
            let record: Option<ContainerRecord> =
                fsutil::read_json(&path.join("record.json")).ok().flatten();
            let Some(record) = record else {
                tracing::warn!(dir = %path.display(), "removing a container directory without a record");
                crate::rootfs::unmount_all_under(&path);
                let _ = fsutil::remove_tree(&path);
                continue;
            };
            let state: ContainerState = fsutil::read_json(&path.join("state.json"))
                .ok()
                .flatten()
                .unwrap_or_default();
            set.insert(Arc::new(Container {
                dir: path,
                record: RwLock::new(record),
                state: Mutex::new(state),
            }));
        }
        Ok(set)
    }

    pub fn insert(&self, container: Arc<Container>) {
        let id = container.id();
        self.by_id
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, container);
    }

    pub fn remove(&self, id: &str) {
        self.by_id
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        self.by_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<Container>> {
        let name = name.strip_prefix('/').unwrap_or(name);
        self.all().into_iter().find(|c| c.record().name == name)
    }

    /// Docker's lookup order: full id, name, unique id prefix.
    pub fn find(&self, input: &str) -> Result<Arc<Container>> {
        if input.is_empty() {
            return Err(Error::NotFound(input.to_string()));
        }
        if let Some(c) = self
            .by_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(input)
        {
            return Ok(c.clone());
        }
        if let Some(c) = self.by_name(input) {
            return Ok(c);
        }
        let matches: Vec<Arc<Container>> = self
            .all()
            .into_iter()
            .filter(|c| c.record().id.starts_with(input))
            .collect();
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(Error::NotFound(input.to_string())),
            _ => Err(Error::InvalidArgument(format!(
                "Multiple IDs found with provided prefix: {input}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removal_cut_short_is_swept_not_loaded() {
        let root = tempfile::tempdir().unwrap();
        // What a crash between hiding a container and deleting its files leaves.
        let doomed = root.path().join(".tmp-rm-0123abcd");
        std::fs::create_dir(&doomed).unwrap();
        let record = serde_json::json!({
            "id": "0123abcd", "name": "gone", "created": "", "path": "true", "args": [],
            "config": {}, "host_config": {}, "image": "sha256:00", "image_name": "busybox",
        });
        std::fs::write(doomed.join("record.json"), record.to_string()).unwrap();
        serde_json::from_value::<ContainerRecord>(record).unwrap();
        let set = ContainerSet::load(root.path()).unwrap();
        assert!(set.all().is_empty());
        assert!(!doomed.exists());
    }
}
