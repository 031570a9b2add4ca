//! The container lifecycle: create, start, stop, kill, restart, pause, remove, wait,
//! exec, and the monitor that notices exits and applies restart policies. Exits survive
//! a daemon restart: shims outlive berthd, and [`Runtime::recover`] reconnects to them.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_shim_proto::{
    Confinement, CreateReport, ExitStatus, LogConfig, Request, Response, ShimConfig,
};
use berth_store::{fsutil, ImageStore, ImageUsage};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot};

use crate::error::{Error, Result};
use crate::health::{Health, HealthConfig, ProbeResult};
use crate::network::{self, from_net};
use crate::record::NetworkAttachment;
use crate::record::{Container, ContainerRecord, ContainerSet, ContainerState, Status, ZERO_TIME};
use crate::shim::{self, RegisteredWait, ShimClient};
use crate::{mounts, names, netns, rootfs, spec, user};
use berth_net::{Endpoint, Member, Networks, PublishedPort};
use berth_volume::VolumeStore;

/// A state change the daemon turns into a Docker event.
#[derive(Debug, Clone)]
pub struct RuntimeEvent {
    /// `container`, or `volume` for mounts and unmounts.
    pub kind: &'static str,
    pub action: String,
    pub id: String,
    pub attributes: BTreeMap<String, String>,
}

pub type EventSink = Arc<dyn Fn(RuntimeEvent) + Send + Sync>;

/// What waiters hear about a container.
#[derive(Debug, Clone)]
pub enum Change {
    Exited(i32),
    Removed,
}

/// Where things live.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
}

/// An attach that arrived before its container started: the starter hands it the shim,
/// and waits for the attach to be in place before letting the process run.
struct PendingAttach {
    shim: oneshot::Sender<ShimClient>,
    ready: oneshot::Receiver<()>,
}

/// What a volume takes on disk and how many containers mount it.
#[derive(Debug, Clone, Copy, Default)]
pub struct VolumeUsage {
    pub size: u64,
    pub refs: usize,
}

/// A `docker exec` instance.
#[derive(Debug, Clone)]
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: Value,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
    pub dir: PathBuf,
}

pub struct Runtime {
    config: RuntimeConfig,
    images: Arc<ImageStore>,
    volumes: Arc<VolumeStore>,
    networks: Arc<Networks>,
    pub containers: ContainerSet,
    execs: Mutex<HashMap<String, Exec>>,
    changes: Mutex<HashMap<String, broadcast::Sender<Change>>>,
    pending_attaches: Mutex<HashMap<String, Vec<PendingAttach>>>,
    events: EventSink,
    names_lock: tokio::sync::Mutex<()>,
    /// Held shared by every container create, from resolving its image to recording
    /// the container, and exclusively by whatever removes images, volumes or networks
    /// because no container uses them: so a prune racing a `run` never removes what the
    /// run is about to use.
    references: tokio::sync::RwLock<()>,
    pub(crate) sizes: crate::sizes::SizeCache,
    /// Shims whose container has exited, by container id, as pidfds. A shim reports
    /// the exit first and removes the cgroups and libcontainer's state after; a new
    /// start and a removal wait for it to end.
    retiring_shims: Mutex<HashMap<String, OwnedFd>>,
    /// Compiled seccomp filters, one per distinct profile.
    filters: crate::seccomp_filter::FilterCache,
}

/// The file in a bundle holding the container's compiled seccomp filter.
const SECCOMP_PROGRAM: &str = "seccomp.bpf";

/// Has a process (its OCI `capabilities`) created with every capability berthd holds,
/// and says which to drop to once the filter at `filter` is loaded.
fn confine_to(capabilities: &mut Value, filter: PathBuf) -> Confinement {
    let wanted = capabilities.clone();
    let every = json!(spec::host_capabilities());
    for set in ["bounding", "effective", "permitted"] {
        capabilities[set] = every.clone();
    }
    Confinement {
        filter,
        capabilities: wanted,
    }
}

/// What `launch` started.
struct Launched {
    pid: i32,
    shim_pid: i32,
    /// The shim's answer to come when the process exits.
    exit: Option<RegisteredWait>,
}

/// How long a start or removal waits for the previous shim's cleanup (a few ms).
const RETIRING_SHIM_TIMEOUT: Duration = Duration::from_secs(2);

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Parses a signal given by name (`TERM`, `SIGTERM`) or number.
pub fn parse_signal(input: &str) -> Result<i32> {
    if let Ok(n) = input.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let name = input.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(Error::InvalidArgument(format!("Invalid signal: {input}"))),
    };
    Ok(n)
}

impl Runtime {
    /// Loads every container record. Call [`recover`](Self::recover) once the daemon runs.
    pub fn open(
        config: RuntimeConfig,
        images: Arc<ImageStore>,
        volumes: Arc<VolumeStore>,
        networks: Arc<Networks>,
        events: EventSink,
    ) -> Result<Self> {
        let containers = ContainerSet::load(&config.data_root.join("containers"))?;
        fsutil::ensure_dir(&config.exec_root.join("c"))?;
        Ok(Runtime {
            config,
            images,
            volumes,
            networks,
            containers,
            execs: Mutex::new(HashMap::new()),
            changes: Mutex::new(HashMap::new()),
            pending_attaches: Mutex::new(HashMap::new()),
            events,
            names_lock: tokio::sync::Mutex::new(()),
            references: tokio::sync::RwLock::new(()),
            sizes: Default::default(),
            retiring_shims: Mutex::new(HashMap::new()),
            filters: Default::default(),
        })
    }

    fn emit(&self, action: &str, record: &ContainerRecord, extra: &[(&str, String)]) {
        let mut attributes: BTreeMap<String, String> = record.labels();
        attributes.insert("image".into(), record.image_name.clone());
        attributes.insert("name".into(), record.name.clone());
        for (k, v) in extra {
            attributes.insert(k.to_string(), v.clone());
        }
        (self.events)(RuntimeEvent {
            kind: "container",
            action: action.to_string(),
            id: record.id.clone(),
            attributes,
        });
    }

    /// Docker's `volume mount`/`volume unmount` events, one per volume of a run.
    fn emit_volume_events(&self, action: &str, record: &ContainerRecord) {
        for m in record.mounts.iter().filter(|m| m.kind == "volume") {
            let mut attributes = BTreeMap::new();
            attributes.insert("container".to_string(), record.id.clone());
            attributes.insert("driver".to_string(), "local".to_string());
            if action == "mount" {
                attributes.insert("destination".to_string(), m.destination.clone());
                attributes.insert("propagation".to_string(), String::new());
                attributes.insert("read/write".to_string(), (!m.read_only).to_string());
            }
            (self.events)(RuntimeEvent {
                kind: "volume",
                action: action.to_string(),
                id: m.name.clone(),
                attributes,
            });
        }
    }

    /// Docker's `network connect`/`network disconnect` events for a container's run.
    fn emit_network_event(&self, action: &str, container_id: &str, endpoint: &Endpoint) {
        let mut attributes = BTreeMap::new();
        attributes.insert("container".to_string(), container_id.to_string());
        attributes.insert("name".to_string(), endpoint.network_name.clone());
        attributes.insert("type".to_string(), "bridge".to_string());
        (self.events)(RuntimeEvent {
            kind: "network",
            action: action.to_string(),
            id: endpoint.network_id.clone(),
            attributes,
        });
    }

    fn notify(&self, id: &str, change: Change) {
        if let Some(tx) = self
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            let _ = tx.send(change);
        }
    }

    /// Excludes container creation while images, volumes or networks are removed for
    /// being unused. Take it before looking at who uses what.
    pub async fn exclude_creation(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.references.write().await
    }

    /// Whether a client may be in the middle of running this container: `docker run`
    /// creates, then attaches and waits, then starts, in separate requests. So a
    /// container that was never started and is only seconds old, or that a client
    /// waits on or attaches to, counts as being run. Container prune leaves these alone.
    pub fn is_being_run(&self, id: &str) -> bool {
        const JUST_CREATED: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
        if let Ok(container) = self.find(id) {
            let state = container.state();
            let fresh = chrono::DateTime::parse_from_rfc3339(&container.record().created)
                .is_ok_and(|t| Utc::now().signed_duration_since(t) < JUST_CREATED);
            if state.status == Status::Created && state.started_at == ZERO_TIME && fresh {
                return true;
            }
        }
        let waited = self
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .is_some_and(|tx| tx.receiver_count() > 0);
        let attached = self
            .pending_attaches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .is_some_and(|a| !a.is_empty());
        waited || attached
    }

    /// Subscribes to a container's exits and removal.
    pub fn subscribe(&self, id: &str) -> broadcast::Receiver<Change> {
        let mut map = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string())
            .or_insert_with(|| broadcast::channel(16).0)
            .subscribe()
    }

    /// Which containers use an image, for the image store's deletion rules.
    pub fn image_usage(&self, image: &str) -> ImageUsage {
        let mut usage = ImageUsage::default();
        for c in self.containers.all() {
            let record = c.record();
            if record.image != image {
                continue;
            }
            if c.state().is_running() {
                usage.running_container.get_or_insert(record.id);
            } else {
                usage.stopped_container.get_or_insert(record.id);
            }
        }
        usage
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.config.data_root.join("containers").join(id)
    }

    /// Sockets live under the run root with short names: unix socket paths are limited
    /// to 108 bytes.
    fn run_dir(&self, id: &str) -> PathBuf {
        self.config
            .exec_root
            .join("c")
            .join(&id[..id.len().min(16)])
    }

    /// Where a container's network namespace is pinned (`SandboxKey`).
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.config
            .exec_root
            .join("netns")
            .join(&id[..id.len().min(16)])
    }

    pub fn find(&self, name: &str) -> Result<Arc<Container>> {
        self.containers.find(name)
    }

    // ---------------------------------------------------------------- create

    /// Creates a container from Docker's create body. Returns its id and warnings.
    pub async fn create(
        &self,
        name: Option<&str>,
        mut config: Value,
        mut host_config: Value,
        networking_config: Value,
    ) -> Result<(String, Vec<String>)> {
        let image_name = config["Image"].as_str().unwrap_or("").to_string();
        if image_name.is_empty() {
            return Err(Error::InvalidArgument("Config.Image is required".into()));
        }
        let _references = self.references.read().await;
        let view = self.images.resolve(&image_name)?;
        let image = view.image;
        merge_image_config(&mut config, &image.config.config);
        let (path, args) = command_of(&config)?;
        validate_host_config(&mut host_config)?;
        crate::health::validate(&config["Healthcheck"]).map_err(Error::InvalidArgument)?;
        let networks = network::plan(&self.networks, &host_config, &networking_config, &config)?;
        if host_config["NetworkMode"] == "host"
            && config["Hostname"].as_str().unwrap_or("").is_empty()
        {
            // Docker: a container on the host's network carries the host's name.
            if let Ok(name) = rustix::system::uname().nodename().to_str() {
                config["Hostname"] = json!(name);
            }
        }
        let mut mount_plan = mounts::plan(&host_config, &config["Volumes"])?;
        // --volumes-from: the other container's mounts, at the same places, where this
        // one has nothing of its own.
        for spec in host_config["VolumesFrom"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let (source, mode) = match spec.rsplit_once(':') {
                Some((s, m)) if m == "ro" || m == "rw" => (s, Some(m)),
                _ => (spec, None),
            };
            let other = self.find(source)?.record();
            for m in other.mounts.iter().filter(|m| m.kind != "tmpfs") {
                if mount_plan.iter().any(|x| x.destination == m.destination) {
                    continue;
                }
                let mut inherited = m.clone();
                if let Some(mode) = mode {
                    inherited.read_only = mode == "ro";
                }
                // Shared, so never the borrower's to remove or to fill.
                inherited.copy = false;
                mount_plan.push(inherited);
            }
        }
        let mut warnings = Vec::new();
        if host_config["Memory"].as_i64().unwrap_or(0) > 0
            && !Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
            && Path::new("/sys/fs/cgroup/memory").exists()
        {
            warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".to_string());
        }

        let _names = self.names_lock.lock().await;
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = names::validate(n)?;
                if let Some(existing) = self.containers.by_name(&n) {
                    return Err(Error::Conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        existing.id()
                    )));
                }
                n
            }
            None => names::generate(|n| self.containers.by_name(n).is_some()),
        };
        let id = fsutil::random_hex(32);
        if config["Hostname"].as_str().unwrap_or("").is_empty() {
            config["Hostname"] = json!(short(&id));
        }
        let dir = self.container_dir(&id);
        let made = (|| -> Result<()> {
            for sub in ["upper", "work", "merged"] {
                fsutil::ensure_dir(&dir.join(sub))?;
            }
            Ok(())
        })();
        if let Err(e) = made {
            let _ = fsutil::remove_tree(&dir);
            return Err(e);
        }
        // Everything is checked: now volumes may be made, and missing -v host paths.
        let made_volumes = match mounts::realize(&mut mount_plan, &self.volumes) {
            Ok(made) => made,
            Err(e) => {
                let _ = fsutil::remove_tree(&dir);
                return Err(e);
            }
        };
        for m in mount_plan.iter().filter(|m| m.kind == "bind") {
            let _ = std::fs::create_dir_all(&m.source);
        }
        let record = ContainerRecord {
            id: id.clone(),
            name,
            created: now(),
            path,
            args,
            config,
            host_config,
            image: image.id.to_string(),
            image_name,
            restart_count: 0,
            mounts: mount_plan,
            networks,
        };
        let state = ContainerState::default();
        // The record is written last: a directory without one is swept at start-up.
        let write = fsutil::write_json_unsynced(&dir.join("state.json"), &state)
            .and_then(|_| fsutil::write_json_atomic(&dir.join("record.json"), &record));
        if let Err(e) = write {
            let _ = fsutil::remove_tree(&dir);
            for v in made_volumes {
                let _ = self.volumes.remove(&v);
            }
            return Err(e.into());
        }
        self.containers.insert(Arc::new(Container {
            dir,
            record: std::sync::RwLock::new(record.clone()),
            state: Mutex::new(state),
        }));
        self.emit("create", &record, &[]);
        Ok((id, warnings))
    }

    // ---------------------------------------------------------------- start

    /// Registers an attach for a container that is not running yet; the returned
    /// receiver yields the shim once the container is created, and `ready` must be sent
    /// when the attach is in place.
    pub fn attach_before_start(
        &self,
        id: &str,
    ) -> (oneshot::Receiver<ShimClient>, oneshot::Sender<()>) {
        let (shim_tx, shim_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        self.pending_attaches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .push(PendingAttach {
                shim: shim_tx,
                ready: ready_rx,
            });
        (shim_rx, ready_tx)
    }

    /// The shim of a running container.
    pub fn shim_of(&self, container: &Container) -> Result<ShimClient> {
        let record = container.record();
        if !container.state().is_running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        Ok(ShimClient::new(self.run_dir(&record.id).join("shim.sock")))
    }

    pub async fn start(self: &Arc<Self>, name: &str) -> Result<bool> {
        let container = self.find(name)?;
        let state = container.state();
        match state.status {
            Status::Running | Status::Restarting => return Ok(false),
            Status::Paused => {
                return Err(Error::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(Error::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    container.id()
                )))
            }
            _ => {}
        }
        self.start_container(&container).await?;
        Ok(true)
    }

    async fn start_container(self: &Arc<Self>, container: &Arc<Container>) -> Result<()> {
        let record = container.record();
        let id = record.id.clone();
        match self.launch(container, &record).await {
            Ok(Launched {
                pid,
                shim_pid,
                exit,
            }) => {
                self.emit_volume_events("mount", &record);
                container.update_state(|s| {
                    s.status = Status::Running;
                    s.pid = pid;
                    s.shim_pid = shim_pid;
                    s.started_at = now();
                    s.finished_at = ZERO_TIME.into();
                    s.exit_code = 0;
                    s.error.clear();
                    s.oom_killed = false;
                    s.manually_stopped = false;
                    s.health = HealthConfig::from_config(&record.config["Healthcheck"])
                        .map(|_| Health::starting());
                })?;
                self.emit("start", &record, &[]);
                self.spawn_monitor(container.clone(), exit);
                Ok(())
            }
            Err(e) => {
                self.release_networks(container).await;
                self.teardown(&id);
                let message = e.to_string();
                let code = if message.contains("executable file not found")
                    || message.contains("not found in $PATH")
                    || message.contains("no such file or directory")
                {
                    127
                } else if message.contains("permission denied") {
                    126
                } else {
                    128
                };
                let _ = container.update_state(|s| {
                    s.status = if s.started_at == ZERO_TIME {
                        Status::Created
                    } else {
                        Status::Exited
                    };
                    s.exit_code = code;
                    s.error = message.clone();
                    s.pid = 0;
                });
                // Pending attaches of a start that failed end with nothing.
                self.pending_attaches
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                self.notify(&id, Change::Exited(code));
                // As Docker: a --rm container that cannot start is removed, which is what
                // the CLI's `wait?condition=removed` is waiting for.
                if record.host_bool("AutoRemove") {
                    let runtime = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = runtime.remove_with_volumes(&id, true, true).await {
                            tracing::warn!(%id, "auto-remove after a failed start: {e}");
                        }
                    });
                }
                Err(e)
            }
        }
    }

    /// Mounts the rootfs, writes the bundle, spawns the shim, connects pending attaches
    /// and lets the process run.
    async fn launch(&self, container: &Container, record: &ContainerRecord) -> Result<Launched> {
        let id = &record.id;
        let dir = &container.dir;
        self.shim_retired(id).await;
        let run_dir = self.run_dir(id);
        let _ = fsutil::remove_tree(&run_dir);
        fsutil::ensure_dir(&run_dir)?;
        let image_id = berth_store::Digest::parse(&record.image)?;
        let lowers = self.images.layer_paths(&image_id)?;
        let merged = dir.join("merged");
        rootfs::unmount_path(&merged)?;
        rootfs::mount_overlay(
            &lowers,
            &dir.join("upper"),
            &dir.join("work"),
            &merged,
            record.host_bool("AutoRemove"),
        )?;

        for m in record.mounts.iter().filter(|m| m.kind == "volume") {
            self.volumes
                .ensure_mounted(&m.name)
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        // Copy-up: an empty volume first mounted gets the image's files at that path.
        for m in record
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" && m.copy)
        {
            let source = copy_up_source(&merged, &dir.join("upper"), &lowers, &m.destination);
            berth_volume::copy_up(&source, Path::new(&m.source)).map_err(|e| {
                Error::Internal(format!("copying image content into volume {}: {e}", m.name))
            })?;
        }
        let user = user::resolve(&merged, record.config_str("User"))?;
        let env = container_env(record, &user);
        let path_env = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(spec::DEFAULT_PATH)
            .to_string();
        // The check sees the image's files only: a command that may come from a
        // volume or bind mount is left for the runtime to find.
        if !may_come_from_a_mount(record, &record.path, &path_env) {
            rootfs::check_executable(
                &merged,
                &record.path,
                &path_env,
                record.config_str("WorkingDir"),
            )?;
        }
        if let Some(workdir) = Some(record.config_str("WorkingDir")).filter(|w| !w.is_empty()) {
            // Docker creates a missing working directory.
            let _ = std::fs::create_dir_all(merged.join(workdir.trim_start_matches('/')));
        }

        let host = &record.host_config;
        let network_mode = host["NetworkMode"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let netns = if network_mode == "host" {
            None
        } else if let Some(other) = network_mode.strip_prefix("container:") {
            let other = self.find(other)?;
            if !other.state().is_running() {
                return Err(Error::Conflict(format!(
                    "cannot join network of a non running container: {}",
                    other.id()
                )));
            }
            Some(self.netns_path(&other.id()))
        } else {
            let path = self.netns_path(id);
            let _ = netns::remove(&path);
            netns::create(&path)?;
            Some(path)
        };
        let endpoints = match &netns {
            Some(path) if !network_mode.starts_with("container:") => {
                let (endpoints, ports) = self.connect_networks(record, path).await?;
                if !endpoints.is_empty() {
                    let saved = container.update_state(|s| {
                        s.endpoints = endpoints.clone();
                        s.ports = ports.clone();
                    });
                    if let Err(e) = saved {
                        self.disconnect_endpoints(&record.id, &endpoints, &ports)
                            .await;
                        return Err(e);
                    }
                }
                endpoints
            }
            _ => Vec::new(),
        };
        let extra_hosts: Vec<String> = str_list(&host["ExtraHosts"]);
        let resolver = endpoints
            .first()
            .and_then(|e| self.networks.resolver_for(&e.network_id));
        rootfs::write_etc_files(
            dir,
            &rootfs::EtcFiles {
                hostname: record.config_str("Hostname"),
                extra_hosts: &extra_hosts,
                dns: &str_list(&host["Dns"]),
                own_addresses: &network::hosts_lines(record, &endpoints),
                resolver,
                host_network: network_mode == "host",
            },
        )?;
        let host_nofile_hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .maximum
            .unwrap_or(u64::MAX);
        let inputs = spec::SpecInputs {
            rootfs: &merged,
            etc_dir: dir,
            user: &user,
            env,
            netns: netns.as_deref(),
            host_nofile_hard,
            extra_mounts: record.mounts.iter().map(mounts::to_spec).collect(),
        };
        let mut oci = spec::generate(record, &inputs)?;
        // The bundle is made anew for every run, so it lives with the run's other
        // files in the exec root (a tmpfs), not on the data root's disk.
        let bundle = run_dir.join("bundle");
        fsutil::ensure_dir(&bundle)?;
        let runtime = runtime_binary(record.host_config["Runtime"].as_str().unwrap_or(""))?;
        let confinement = match runtime {
            // An external runtime loads the filter from config.json, its own way.
            Some(_) => None,
            None => self.precompile_filter(&mut oci, &bundle)?,
        };
        fsutil::write_json_unsynced(&bundle.join("config.json"), &oci)?;
        let log_config = host["LogConfig"].clone();
        let log = match log_config["Type"].as_str().unwrap_or("json-file") {
            "none" => None,
            _ => Some(LogConfig {
                path: dir.join(format!("{id}-json.log")),
                max_size: parse_size(log_config["Config"]["max-size"].as_str().unwrap_or(""))
                    .unwrap_or(0),
                max_file: log_config["Config"]["max-file"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
                attrs: log_attributes(record, &log_config["Config"]),
            }),
        };
        let exit_file = dir.join("exit.json");
        let _ = std::fs::remove_file(&exit_file);
        let shim_config = ShimConfig {
            id: id.clone(),
            bundle: bundle.clone(),
            state_root: self.config.exec_root.join("libcontainer"),
            socket: run_dir.join("shim.sock"),
            exit_file,
            log,
            tty: record.tty(),
            open_stdin: record.config_bool("OpenStdin"),
            stdin_once: record.config_bool("StdinOnce"),
            runtime,
            exec_process: None,
            console_size: console_size(&host["ConsoleSize"]),
            confinement,
        };
        let shim_config_path = bundle.join("shim.json");
        fsutil::write_json_unsynced(&shim_config_path, &shim_config)?;
        let (pid, shim_pid) = match shim::spawn("create", &shim_config_path).await? {
            CreateReport::Created { pid, shim_pid } => (pid, shim_pid),
            CreateReport::Failed { message } => return Err(Error::Start(message)),
        };
        let client = ShimClient::new(&shim_config.socket);
        let pending = self
            .pending_attaches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .unwrap_or_default();
        for attach in pending {
            if attach.shim.send(client.clone()).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), attach.ready).await;
            }
        }
        // Registered before Start: asked after, the wait of a process that ends at once
        // found a shim already on its way out and fell back to the exit file, late.
        let exit = client.register_wait().await.ok();
        if let Err(e) = client.call(Request::Start).await {
            // If the shim cannot be reached, killing the created process directly still
            // makes it notice the exit, clean up and leave.
            if client
                .call(Request::Kill {
                    signal: libc::SIGKILL,
                    all: true,
                })
                .await
                .is_err()
                && pid > 0
            {
                // SAFETY: kill(2) with plain integers; pid is the process the shim created.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            return Err(e);
        }
        Ok(Launched {
            pid,
            shim_pid,
            exit,
        })
    }

    /// Attaches a starting container to its networks and publishes its ports on the
    /// first; on failure whatever was attached is released again.
    async fn connect_networks(
        &self,
        record: &ContainerRecord,
        netns: &Path,
    ) -> Result<(Vec<Endpoint>, Vec<PublishedPort>)> {
        let member = Member {
            id: record.id.clone(),
            name: record.name.clone(),
        };
        let mut endpoints = Vec::new();
        let result: Result<Vec<PublishedPort>> = async {
            for (i, a) in record.networks.iter().enumerate() {
                let request = network::endpoint_request(a)?;
                let endpoint = self
                    .networks
                    .attach(
                        &member,
                        netns,
                        &a.network_id,
                        &request,
                        &format!("eth{i}"),
                        i == 0,
                    )
                    .await
                    .map_err(|e| match e {
                        berth_net::Error::NotFound(_) => {
                            Error::Network(berth_net::Error::NotFound(a.network_name.clone()))
                        }
                        e => from_net(e),
                    })?;
                endpoints.push(endpoint);
            }
            let requests = network::port_requests(record)?;
            match endpoints.first() {
                Some(first) if !requests.is_empty() => self
                    .networks
                    .publish(&member, first, &requests)
                    .await
                    .map_err(from_net),
                _ => Ok(Vec::new()),
            }
        }
        .await;
        match result {
            Ok(ports) => {
                for endpoint in &endpoints {
                    self.emit_network_event("connect", &record.id, endpoint);
                }
                Ok((endpoints, ports))
            }
            Err(e) => {
                self.disconnect_endpoints(&record.id, &endpoints, &[]).await;
                Err(e)
            }
        }
    }

    async fn disconnect_endpoints(
        &self,
        id: &str,
        endpoints: &[Endpoint],
        ports: &[PublishedPort],
    ) {
        if let (Some(first), false) = (endpoints.first(), ports.is_empty()) {
            self.networks.unpublish(id, first, ports);
        }
        for endpoint in endpoints {
            self.networks.detach(id, endpoint).await;
        }
    }

    /// Releases a run's endpoints and published ports, once.
    async fn release_networks(&self, container: &Container) {
        let state = container.state();
        if state.endpoints.is_empty() && state.ports.is_empty() {
            return;
        }
        let id = container.id();
        if let (Some(first), false) = (state.endpoints.first(), state.ports.is_empty()) {
            self.networks.unpublish(&id, first, &state.ports);
        }
        for endpoint in &state.endpoints {
            self.networks.release(&id, endpoint);
            self.emit_network_event("disconnect", &id, endpoint);
        }
        let _ = container.update_state(|s| {
            s.endpoints.clear();
            s.ports.clear();
        });
    }

    /// After a daemon restart: a running container's addresses, names and ports are
    /// known again.
    fn restore_networks(&self, container: &Container) {
        let state = container.state();
        let record = container.record();
        let member = Member {
            id: record.id.clone(),
            name: record.name.clone(),
        };
        for endpoint in &state.endpoints {
            self.networks.restore(&member, endpoint);
        }
        if let (Some(first), false) = (state.endpoints.first(), state.ports.is_empty()) {
            self.networks.restore_ports(&record.id, first, &state.ports);
        }
    }

    pub fn networks(&self) -> &Arc<Networks> {
        &self.networks
    }

    /// `network connect`: recorded for the container's next runs, and attached now
    /// if it runs.
    pub async fn connect(
        &self,
        name: &str,
        network_name: &str,
        endpoint_config: &Value,
    ) -> Result<()> {
        let container = self.find(name)?;
        let record = container.record();
        let mode = record.host_config["NetworkMode"]
            .as_str()
            .unwrap_or("bridge");
        if mode == "host" || network_name == "host" {
            return Err(Error::Conflict(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        if network::is_special_mode(mode) || network_name == "none" {
            return Err(Error::Conflict(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode".into(),
            ));
        }
        let attachment = network::attachment(&self.networks, network_name, endpoint_config)?;
        if record
            .networks
            .iter()
            .any(|a| a.network_id == attachment.network_id)
        {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                record.name, attachment.network_name
            )));
        }
        let state = container.state();
        if state.is_running() {
            let taken: Vec<&str> = state.endpoints.iter().map(|e| e.ifname.as_str()).collect();
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !taken.contains(&n.as_str()))
                .unwrap_or_else(|| "eth9".into());
            let member = Member {
                id: record.id.clone(),
                name: record.name.clone(),
            };
            let endpoint = self
                .networks
                .attach(
                    &member,
                    &self.netns_path(&record.id),
                    &attachment.network_id,
                    &network::endpoint_request(&attachment)?,
                    &ifname,
                    state.endpoints.is_empty(),
                )
                .await
                .map_err(from_net)?;
            container.update_state(|s| s.endpoints.push(endpoint))?;
        }
        container.update_record(|r| r.networks.push(attachment.clone()))?;
        Ok(())
    }

    /// `network disconnect`.
    pub async fn disconnect(&self, name: &str, network_name: &str) -> Result<()> {
        let container = self.find(name)?;
        let record = container.record();
        let network = self.networks.get(network_name).map_err(from_net)?;
        let mode = record.host_config["NetworkMode"]
            .as_str()
            .unwrap_or("bridge");
        if mode == "host" && network.name == "host" {
            return Err(Error::Conflict(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        let attached: Option<NetworkAttachment> = record
            .networks
            .iter()
            .find(|a| a.network_id == network.id)
            .cloned();
        if attached.is_none() {
            return Err(Error::Conflict(format!(
                "container {} is not connected to network {}",
                record.id, network.name
            )));
        }
        let state = container.state();
        if let Some(index) = state
            .endpoints
            .iter()
            .position(|e| e.network_id == network.id)
        {
            let endpoint = state.endpoints[index].clone();
            let ports = if index == 0 {
                state.ports.clone()
            } else {
                Vec::new()
            };
            self.disconnect_endpoints(&record.id, std::slice::from_ref(&endpoint), &ports)
                .await;
            container.update_state(|s| {
                s.endpoints.retain(|e| e.network_id != network.id);
                if index == 0 {
                    s.ports.clear();
                }
            })?;
        }
        container.update_record(|r| r.networks.retain(|a| a.network_id != network.id))?;
        Ok(())
    }

    /// Releases what a run of the container held: rootfs mount, network namespace.
    fn teardown(&self, id: &str) {
        let dir = self.container_dir(id);
        if let Err(e) = rootfs::unmount_path(&dir.join("merged")) {
            tracing::warn!("{e}");
        }
        let _ = netns::remove(&self.netns_path(id));
    }

    /// Takes the container's seccomp filter out of its OCI spec when berthd can compile
    /// it (once per distinct profile), and has the process created with every
    /// capability: the shim then loads the compiled filter and drops to the process's
    /// own capabilities just before the program runs. The program is written into the
    /// bundle as `seccomp.bpf`, where processes exec'd into the container find it too.
    fn precompile_filter(&self, oci: &mut Value, bundle: &Path) -> Result<Option<Confinement>> {
        let Some(section) = oci["linux"].get("seccomp").filter(|s| !s.is_null()) else {
            return Ok(None);
        };
        let Some(program) = self.filters.program(section).map_err(Error::Start)? else {
            return Ok(None);
        };
        let filter = bundle.join(SECCOMP_PROGRAM);
        fsutil::write_unsynced(&filter, &program)?;
        if let Some(linux) = oci["linux"].as_object_mut() {
            linux.remove("seccomp");
        }
        Ok(Some(confine_to(
            &mut oci["process"]["capabilities"],
            filter,
        )))
    }

    /// Keeps a pidfd on the shim of a container that has just exited; see `retiring_shims`.
    fn retire_shim(&self, id: &str, shim_pid: i32) {
        let Some(pid) = rustix::process::Pid::from_raw(shim_pid) else {
            return;
        };
        let Ok(pidfd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        else {
            return; // already gone
        };
        // The shim is not berthd's child: make sure the pid was not reused meanwhile.
        let comm = std::fs::read_to_string(format!("/proc/{shim_pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "berth-shim" {
            self.retiring_shims
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_string(), pidfd);
        }
    }

    /// Waits, briefly, for the retiring shim of `id` (if any) to end.
    async fn shim_retired(&self, id: &str) {
        let pidfd = self
            .retiring_shims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        let Some(pidfd) = pidfd else { return };
        // A pidfd polls readable once its process has exited.
        // SAFETY: the OwnedFd moves into the AsyncFd and stays open, the same
        // descriptor, until the AsyncFd is dropped.
        let registered = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
        };
        let Ok(pidfd) = registered else { return };
        let ended = tokio::time::timeout(RETIRING_SHIM_TIMEOUT, pidfd.readable()).await;
        if ended.is_err() {
            tracing::warn!(%id, "the container's previous shim is still cleaning up");
        }
    }

    /// Watches for the container's exit, through `exit` when a wait is registered already.
    fn spawn_monitor(self: &Arc<Self>, container: Arc<Container>, exit: Option<RegisteredWait>) {
        self.spawn_health_monitor(container.clone());
        let runtime = self.clone();
        tokio::spawn(async move {
            let id = container.id();
            let exited = match exit {
                Some(registered) => registered.exited().await,
                None => {
                    let client = ShimClient::new(runtime.run_dir(&id).join("shim.sock"));
                    client.wait().await
                }
            };
            let status = match exited {
                Ok(status) => status,
                Err(_) => read_exit_file(&container.dir).unwrap_or(ExitStatus {
                    exit_code: 255,
                    finished_at: now(),
                    oom_killed: false,
                    error: Some("the container's shim exited without recording a status".into()),
                }),
            };
            runtime.handle_exit(container, status).await;
        });
    }

    async fn handle_exit(self: &Arc<Self>, container: Arc<Container>, status: ExitStatus) {
        let record = container.record();
        let id = record.id.clone();
        self.release_networks(&container).await;
        self.teardown(&id);
        self.emit_volume_events("unmount", &record);
        let previous = container.state();
        self.retire_shim(&id, previous.shim_pid);
        let started_at = previous.started_at;
        let state = match container.update_state(|s| {
            s.status = Status::Exited;
            s.pid = 0;
            s.shim_pid = 0;
            s.exit_code = status.exit_code;
            s.finished_at = status.finished_at.clone();
            s.oom_killed = status.oom_killed;
            if let Some(e) = &status.error {
                s.error = e.clone();
            }
        }) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(%id, "recording exit: {e}");
                return;
            }
        };
        let _ = std::fs::remove_dir_all(self.run_dir(&id));
        if status.oom_killed {
            self.emit("oom", &record, &[]);
        }
        self.emit(
            "die",
            &record,
            &[("exitCode", status.exit_code.to_string())],
        );
        self.notify(&id, Change::Exited(status.exit_code));
        if record.host_bool("AutoRemove") {
            if let Err(e) = self.remove_with_volumes(&id, true, true).await {
                tracing::warn!(%id, "auto-remove: {e}");
            }
            return;
        }
        let policy = record.host_config["RestartPolicy"].clone();
        let name = policy["Name"].as_str().unwrap_or("no");
        let max = policy["MaximumRetryCount"].as_u64().unwrap_or(0) as u32;
        // As Docker's restart manager: a container the user stopped, killed or removed
        // never comes back by itself, whatever its policy.
        let restart = !state.manually_stopped
            && match name {
                "always" | "unless-stopped" => true,
                "on-failure" => status.exit_code != 0 && (max == 0 || record.restart_count < max),
                _ => false,
            };
        if !restart {
            return;
        }
        // Docker's back-off: 100ms doubling per quick failure, reset after 10s of running.
        let ran = chrono::DateTime::parse_from_rfc3339(&started_at)
            .map(|t| Utc::now().signed_duration_since(t).num_seconds())
            .unwrap_or(0);
        let count = if ran >= 10 { 0 } else { record.restart_count };
        let delay = Duration::from_millis((100u64 << count.min(10)).min(60_000));
        let _ = container.update_state(|s| s.status = Status::Restarting);
        let runtime = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if container.state().status != Status::Restarting {
                return; // stopped or removed meanwhile
            }
            let _ = container.update_record(|r| r.restart_count += 1);
            if let Err(e) = runtime.start_container(&container).await {
                tracing::warn!(id = %container.id(), "restart failed: {e}");
                let _ = container.update_state(|s| s.status = Status::Exited);
            }
        });
    }

    /// After a daemon restart: reconnect to live shims, record exits that happened while
    /// the daemon was away, and start `always`/`unless-stopped` containers.
    pub async fn recover(self: &Arc<Self>) {
        for container in self.containers.all() {
            let state = container.state();
            let record = container.record();
            if state.is_running() {
                let client = ShimClient::new(self.run_dir(&record.id).join("shim.sock"));
                match client.call(Request::State).await {
                    Ok(Response::State { exited: false, .. }) => {
                        self.restore_networks(&container);
                        if state.status == Status::Restarting {
                            let _ = container.update_state(|s| s.status = Status::Running);
                        }
                        self.spawn_monitor(container.clone(), None);
                        continue;
                    }
                    Ok(_) => {
                        self.restore_networks(&container);
                        self.spawn_monitor(container.clone(), None);
                        continue;
                    }
                    Err(_) => {
                        let status = read_exit_file(&container.dir).unwrap_or(ExitStatus {
                            exit_code: 255,
                            finished_at: now(),
                            oom_killed: false,
                            error: Some("the container's shim is gone".into()),
                        });
                        self.handle_exit(container.clone(), status).await;
                        continue;
                    }
                }
            }
            let policy = record.host_config["RestartPolicy"]["Name"]
                .as_str()
                .unwrap_or("no")
                .to_string();
            if (policy == "always" || (policy == "unless-stopped" && !state.manually_stopped))
                && state.started_at != ZERO_TIME
            {
                if let Err(e) = self.start_container(&container).await {
                    tracing::warn!(id = %record.id, "restarting at daemon start: {e}");
                }
            }
        }
    }

    // ---------------------------------------------------------------- stop, kill

    pub async fn kill(&self, name: &str, signal: &str) -> Result<()> {
        let container = self.find(name)?;
        let signal = parse_signal(if signal.is_empty() { "KILL" } else { signal })?;
        let record = container.record();
        if !container.state().is_running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        if signal == libc::SIGKILL || signal == libc::SIGTERM || signal == libc::SIGINT {
            let _ = container.update_state(|s| s.manually_stopped = true);
        }
        let shim = self.shim_of(&container)?;
        shim.call(Request::Kill { signal, all: false }).await?;
        self.emit("kill", &record, &[("signal", signal.to_string())]);
        Ok(())
    }

    /// Sends the stop signal, waits `timeout` seconds, then kills. Returns false if the
    /// container was not running (Docker answers 304).
    pub async fn stop(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool> {
        let container = self.find(name)?;
        let record = container.record();
        let state = container.state();
        if state.status == Status::Restarting {
            let _ = container.update_state(|s| {
                s.status = Status::Exited;
                s.manually_stopped = true;
            });
            return Ok(true);
        }
        if !state.is_running() {
            return Ok(false);
        }
        let _ = container.update_state(|s| s.manually_stopped = true);
        let stop_signal = signal
            .map(str::to_string)
            .or_else(|| record.config["StopSignal"].as_str().map(str::to_string))
            .unwrap_or_else(|| "TERM".into());
        let signal = parse_signal(&stop_signal)?;
        let timeout = timeout
            .or_else(|| record.config["StopTimeout"].as_i64())
            .unwrap_or(10);
        let mut changes = self.subscribe(&record.id);
        let shim = self.shim_of(&container)?;
        if state.status == Status::Paused {
            let _ = shim.call(Request::Resume).await;
        }
        if shim
            .call(Request::Kill { signal, all: false })
            .await
            .is_ok()
        {
            self.emit("kill", &record, &[("signal", signal.to_string())]);
        }
        let exited = wait_exit(
            &container,
            &mut changes,
            Duration::from_secs(timeout.max(0) as u64),
        )
        .await;
        if !exited {
            let _ = shim
                .call(Request::Kill {
                    signal: libc::SIGKILL,
                    all: true,
                })
                .await;
            self.emit("kill", &record, &[("signal", libc::SIGKILL.to_string())]);
            wait_exit(&container, &mut changes, Duration::from_secs(30)).await;
        }
        self.emit("stop", &record, &[]);
        Ok(true)
    }

    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let container = self.find(name)?;
        self.stop(name, timeout, signal).await?;
        self.start_container(&container).await?;
        self.emit("restart", &container.record(), &[]);
        Ok(())
    }

    pub async fn pause(&self, name: &str, pause: bool) -> Result<()> {
        let container = self.find(name)?;
        let record = container.record();
        let state = container.state();
        if !state.is_running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        if pause && state.status == Status::Paused {
            return Err(Error::Conflict(format!(
                "Container {} is already paused",
                record.id
            )));
        }
        if !pause && state.status != Status::Paused {
            return Err(Error::Conflict(format!(
                "Container {} is not paused",
                record.id
            )));
        }
        let shim = self.shim_of(&container)?;
        shim.call(if pause {
            Request::Pause
        } else {
            Request::Resume
        })
        .await?;
        container.update_state(|s| {
            s.status = if pause {
                Status::Paused
            } else {
                Status::Running
            }
        })?;
        self.emit(if pause { "pause" } else { "unpause" }, &record, &[]);
        Ok(())
    }

    // ---------------------------------------------------------------- remove, rename, wait

    /// Containers that mount a volume.
    pub fn volume_users(&self, volume: &str) -> Vec<String> {
        self.containers
            .all()
            .iter()
            .map(|c| c.record())
            .filter(|r| {
                r.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == volume)
            })
            .map(|r| r.id)
            .collect()
    }

    /// Bytes in a container's writable layer; a stopped container's size is kept
    /// until it runs again.
    pub fn container_rw_size(&self, container: &Container) -> u64 {
        let state = container.state();
        let stamp =
            (!state.is_running()).then(|| format!("{}|{}", state.started_at, state.finished_at));
        self.sizes.size(
            &format!("c/{}", container.id()),
            stamp.as_deref(),
            &container.dir.join("upper"),
        )
    }

    /// Size and number of users of every volume, in one pass over the containers.
    /// A volume's size is kept while no container that mounts it runs again.
    pub fn volume_usage(&self) -> HashMap<String, VolumeUsage> {
        // Per volume: the users, and the stamp its kept size is valid under (none while
        // a user runs). A volume made again under the same name starts a new stamp.
        let mut users: HashMap<String, (usize, Option<String>)> = HashMap::new();
        for c in self.containers.all() {
            let record = c.record.read().unwrap_or_else(|p| p.into_inner());
            let volumes: Vec<&str> = record
                .mounts
                .iter()
                .filter(|m| m.kind == "volume")
                .map(|m| m.name.as_str())
                .collect();
            if volumes.is_empty() {
                continue;
            }
            let state = c.state.lock().unwrap_or_else(|p| p.into_inner());
            for name in volumes {
                let entry = users
                    .entry(name.to_string())
                    .or_insert_with(|| (0, Some(String::new())));
                entry.0 += 1;
                if state.is_running() {
                    entry.1 = None;
                } else if let Some(stamp) = &mut entry.1 {
                    stamp.push_str(&format!(
                        "{}|{}|{};",
                        record.id, state.started_at, state.finished_at
                    ));
                }
            }
        }
        let mut out = HashMap::new();
        for volume in self.volumes.list().unwrap_or_default() {
            let (refs, stamp) = users
                .remove(&volume.name)
                .unwrap_or_else(|| (0, Some(String::new())));
            let stamp = stamp.map(|s| format!("{};{s}", volume.created_at));
            let size = self.sizes.size(
                &format!("v/{}", volume.name),
                stamp.as_deref(),
                &self.volumes.data_path(&volume.name),
            );
            out.insert(volume.name, VolumeUsage { size, refs });
        }
        out
    }

    pub fn volumes(&self) -> &Arc<VolumeStore> {
        &self.volumes
    }

    /// `rm -v`: removes the container and its anonymous volumes (never named ones),
    /// before anyone waiting for the removal hears of it.
    pub async fn remove_with_volumes(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        self.remove_inner(name, force, volumes).await
    }

    pub async fn remove(&self, name: &str, force: bool) -> Result<()> {
        self.remove_inner(name, force, false).await
    }

    async fn remove_inner(&self, name: &str, force: bool, remove_volumes: bool) -> Result<()> {
        let container = self.find(name)?;
        let record = container.record();
        let id = record.id.clone();
        let state = container.state();
        if state.is_running() {
            if !force {
                let what = if state.status == Status::Paused {
                    "paused"
                } else {
                    "running"
                };
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                    record.name
                )));
            }
            let mut changes = self.subscribe(&id);
            let _ = container.update_state(|s| s.manually_stopped = true);
            if let Ok(shim) = self.shim_of(&container) {
                if state.status == Status::Paused {
                    let _ = shim.call(Request::Resume).await;
                }
                let _ = shim
                    .call(Request::Kill {
                        signal: libc::SIGKILL,
                        all: true,
                    })
                    .await;
                self.emit("kill", &record, &[("signal", libc::SIGKILL.to_string())]);
            }
            if !wait_exit(&container, &mut changes, Duration::from_secs(15)).await {
                return Err(Error::Internal(format!(
                    "container {id} did not exit after SIGKILL"
                )));
            }
        }
        // Not written through: the directory goes next, and a removal cut short by a
        // crash leaves the container as it was, to be removed again.
        let _ = container.update_state_lazily(|s| {
            s.status = Status::Removing;
            false
        });
        self.release_networks(&container).await;
        self.teardown(&id);
        rootfs::unmount_all_under(&container.dir);
        // Hide the directory first, so a crash mid-removal leaves no half-container.
        let doomed = self
            .config
            .data_root
            .join("containers")
            .join(format!(".tmp-rm-{id}"));
        std::fs::rename(&container.dir, &doomed)
            .map_err(|e| Error::io("removing the container", e))?;
        let _ = fsutil::remove_tree(&doomed);
        let _ = std::fs::remove_dir_all(self.run_dir(&id));
        let execs: Vec<Exec> = {
            let mut all = self.execs.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<String> = all
                .values()
                .filter(|e| e.container_id == id)
                .map(|e| e.id.clone())
                .collect();
            ids.iter().filter_map(|i| all.remove(i)).collect()
        };
        for exec in execs {
            let _ = std::fs::remove_dir_all(&exec.dir);
        }
        // Removed means removed: no cgroup or shim of it left either.
        self.shim_retired(&id).await;
        self.containers.remove(&id);
        if remove_volumes {
            for m in record
                .mounts
                .iter()
                .filter(|m| m.kind == "volume" && m.anonymous)
            {
                if self.volume_users(&m.name).is_empty() {
                    if let Err(e) = self.volumes.remove(&m.name) {
                        tracing::warn!(volume = %m.name, "removing anonymous volume: {e}");
                    }
                }
            }
        }
        self.emit("destroy", &record, &[]);
        self.notify(&id, Change::Removed);
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        Ok(())
    }

    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let container = self.find(name)?;
        let new_name = names::validate(new_name)?;
        let record = container.record();
        if record.name == new_name {
            return Err(Error::InvalidArgument(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        if let Some(existing) = self.containers.by_name(&new_name) {
            return Err(Error::Conflict(format!(
                "Conflict. The container name \"/{new_name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                existing.id()
            )));
        }
        let old = record.name.clone();
        let record = container.update_record(|r| r.name = new_name.clone())?;
        self.emit("rename", &record, &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// Docker's wait conditions: `not-running` (default), `next-exit`, `removed`.
    /// Returns the exit code. The subscription is taken before the check, so an exit
    /// between the two is not missed.
    pub async fn wait(&self, name: &str, condition: &str) -> Result<i32> {
        let container = self.find(name)?;
        let id = container.id();
        let mut changes = self.subscribe(&id);
        match condition {
            "" | "not-running" => {
                let state = container.state();
                if !state.is_running() {
                    return Ok(state.exit_code);
                }
                loop {
                    match changes.recv().await {
                        Ok(Change::Exited(code)) => {
                            if !container.state().is_running() {
                                return Ok(code);
                            }
                        }
                        Ok(Change::Removed) => return Ok(container.state().exit_code),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return Ok(container.state().exit_code),
                    }
                }
            }
            "next-exit" => loop {
                match changes.recv().await {
                    Ok(Change::Exited(code)) => return Ok(code),
                    Ok(Change::Removed) => return Ok(container.state().exit_code),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return Ok(container.state().exit_code),
                }
            },
            "removed" => {
                let mut code = container.state().exit_code;
                loop {
                    match changes.recv().await {
                        Ok(Change::Exited(c)) => code = c,
                        Ok(Change::Removed) => return Ok(code),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return Ok(code),
                    }
                }
            }
            other => Err(Error::InvalidArgument(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }

    // ---------------------------------------------------------------- update

    /// `docker update`: checks the new limits, writes them to the live cgroup when the
    /// container runs (all or nothing), then keeps them in its HostConfig.
    pub fn update(&self, name: &str, body: &Value) -> Result<Vec<String>> {
        let container = self.find(name)?;
        let record = container.record();
        let next = crate::update::merged_host_config(&record.host_config, body)
            .map_err(Error::InvalidArgument)?;
        crate::update::validate_change(&record.host_config, &next)
            .map_err(Error::InvalidArgument)?;
        validate_host_config(&mut next.clone())?;
        if container.state().is_running() {
            let dirs = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                crate::update::CgroupDirs::V2(self.cgroup_path("", &record.id))
            } else {
                crate::update::CgroupDirs::V1 {
                    mount: PathBuf::from("/sys/fs/cgroup"),
                    relative: Path::new("berth").join(&record.id),
                }
            };
            let current_memsw = std::fs::read_to_string(
                self.cgroup_path("memory", &record.id)
                    .join("memory.memsw.limit_in_bytes"),
            )
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok());
            let writes = crate::update::cgroup_writes(&dirs, body, &next, current_memsw);
            crate::update::apply(&writes).map_err(|e| {
                Error::InvalidArgument(format!("Cannot update container {}: {e}", record.id))
            })?;
        }
        container.update_record(|r| r.host_config = next)?;
        self.emit("update", &record, &[]);
        Ok(Vec::new())
    }

    // ---------------------------------------------------------------- health

    /// Runs the container's healthcheck on its timer for as long as this run lasts.
    fn spawn_health_monitor(self: &Arc<Self>, container: Arc<Container>) {
        let Some(config) = HealthConfig::from_config(&container.record().config["Healthcheck"])
        else {
            return;
        };
        let run = container.state().started_at;
        let runtime = self.clone();
        tokio::spawn(async move {
            let started = chrono::DateTime::parse_from_rfc3339(&run)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now());
            let in_start_period = || {
                Utc::now()
                    .signed_duration_since(started)
                    .to_std()
                    .unwrap_or_default()
                    < config.start_period
            };
            loop {
                let starting = container
                    .state()
                    .health
                    .is_none_or(|h| h.status == crate::health::HealthStatus::Starting);
                let wait = if starting && in_start_period() {
                    config.start_interval
                } else {
                    config.interval
                };
                tokio::time::sleep(wait).await;
                let current = |c: &Container| {
                    let s = c.state();
                    s.started_at == run && s.is_running()
                };
                if !current(&container) {
                    return;
                }
                if container.state().status == Status::Paused {
                    continue;
                }
                let counts_as_start = in_start_period();
                let result = runtime.probe(&container, &config).await;
                if !current(&container) {
                    return;
                }
                // Every probe updates the log in memory; the state file is written when
                // the verdict or the failing streak changes, so a steady healthy
                // container costs no disk write per probe.
                let mut changed = None;
                let _ = container.update_state_lazily(|s| {
                    let health = s.health.get_or_insert_with(Health::starting);
                    let streak = health.failing_streak;
                    changed = health.record(result, config.retries, counts_as_start);
                    changed.is_some() || health.failing_streak != streak
                });
                if let Some(status) = changed {
                    // Read now: a rename while the check runs shows in the event.
                    let record = container.record();
                    runtime.emit(&format!("health_status: {}", status.as_str()), &record, &[]);
                }
            }
        });
    }

    /// One probe, run by the container's own shim in the container's namespaces, as
    /// its user and with its capabilities; no new shim or runtime process per probe.
    /// A probe that cannot start or outlives its timeout counts as failed (-1). The
    /// exec events Docker sends for every probe are sent too.
    async fn probe(self: &Arc<Self>, container: &Container, config: &HealthConfig) -> ProbeResult {
        let start = now();
        let failed = |start: String, output: String| ProbeResult {
            start,
            end: now(),
            exit_code: -1,
            output,
        };
        let record = container.record();
        let args = config.probe.argv();
        let exec_id = fsutil::random_hex(32);
        let command = args.join(" ");
        self.emit(
            &format!("exec_create: {command}"),
            &record,
            &[("execID", exec_id.clone())],
        );
        let spec = match self.probe_spec(container, &record, args, config) {
            Ok(spec) => spec,
            Err(e) => return failed(start, e.to_string()),
        };
        self.emit(
            &format!("exec_start: {command}"),
            &record,
            &[("execID", exec_id.clone())],
        );
        let client = ShimClient::new(self.run_dir(&record.id).join("shim.sock"));
        // The shim kills the probe at its timeout; this only guards against a shim
        // that stopped answering.
        let answer = tokio::time::timeout(
            config.timeout + Duration::from_secs(5),
            client.call(Request::Probe(spec)),
        )
        .await;
        let result = match answer {
            Err(_) => failed(start, crate::health::timeout_message(config.timeout)),
            Ok(Err(e)) => failed(start, e.to_string()),
            Ok(Ok(Response::Probed(outcome))) => match (outcome.exit_code, outcome.timed_out) {
                (_, true) => failed(start, crate::health::timeout_message(config.timeout)),
                (Some(code), false) => ProbeResult {
                    start,
                    end: now(),
                    exit_code: code,
                    output: outcome.output,
                },
                (None, false) => failed(start, outcome.error.unwrap_or(outcome.output)),
            },
            Ok(Ok(other)) => failed(start, format!("unexpected answer from the shim: {other:?}")),
        };
        self.emit(
            "exec_die",
            &record,
            &[
                ("execID", exec_id),
                ("exitCode", result.exit_code.to_string()),
            ],
        );
        result
    }

    fn probe_spec(
        &self,
        container: &Container,
        record: &ContainerRecord,
        args: Vec<String>,
        config: &HealthConfig,
    ) -> Result<berth_shim_proto::ProbeSpec> {
        let user = user::resolve(&container.dir.join("merged"), record.config_str("User"))?;
        let capabilities = if record.host_bool("Privileged") {
            spec::host_capabilities()
        } else {
            spec::capabilities(&record.host_config)?
        };
        Ok(berth_shim_proto::ProbeSpec {
            args,
            env: container_env(record, &user),
            cwd: record.config_str("WorkingDir").to_string(),
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids.clone(),
            capabilities,
            no_new_privileges: spec::no_new_privileges(&record.host_config),
            timeout_ms: config.timeout.as_millis() as u64,
            output_limit: crate::health::OUTPUT_LIMIT,
        })
    }

    // ---------------------------------------------------------------- exec

    pub fn exec_create(&self, name: &str, config: Value) -> Result<String> {
        let container = self.find(name)?;
        let record = container.record();
        let state = container.state();
        if !state.is_running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        if state.status == Status::Paused {
            return Err(Error::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                record.id
            )));
        }
        if config["Cmd"].as_array().is_none_or(|c| c.is_empty()) {
            return Err(Error::InvalidArgument("No exec command specified".into()));
        }
        let id = fsutil::random_hex(32);
        let dir = self.config.exec_root.join("e").join(&id[..16]);
        self.execs.lock().unwrap_or_else(|p| p.into_inner()).insert(
            id.clone(),
            Exec {
                id: id.clone(),
                container_id: record.id.clone(),
                config: config.clone(),
                running: false,
                exit_code: None,
                pid: 0,
                dir,
            },
        );
        let command = str_list(&config["Cmd"]).join(" ");
        self.emit(
            &format!("exec_create: {command}"),
            &record,
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    pub fn exec_get(&self, id: &str) -> Result<Exec> {
        let mut execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        let exec = execs
            .get_mut(id)
            .ok_or_else(|| Error::ExecNotFound(id.to_string()))?;
        // The shim records the exit before it closes the output, so a client that saw
        // the stream end can read the code even if our monitor has not caught up.
        if exec.running && exec.exit_code.is_none() {
            if let Some(status) = read_exit_file(&exec.dir) {
                exec.exit_code = Some(status.exit_code);
                exec.running = false;
            }
        }
        Ok(exec.clone())
    }

    /// Starts an exec; a failure to start is also recorded as the exec's exit code
    /// (127 for a missing command, 126 otherwise), as Docker reports it.
    pub async fn exec_start(
        self: &Arc<Self>,
        exec_id: &str,
        attach: bool,
        tty_override: Option<bool>,
        console_size: Option<(u16, u16)>,
    ) -> Result<Option<tokio::io::BufReader<tokio::net::UnixStream>>> {
        let result = self
            .exec_start_inner(exec_id, attach, tty_override, console_size)
            .await;
        if let Err(e) = &result {
            let message = e.to_string();
            let code = if message.contains("executable file not found")
                || message.contains("no such file or directory")
            {
                127
            } else {
                126
            };
            if let Some(exec) = self
                .execs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(exec_id)
            {
                if !exec.running && exec.exit_code.is_none() {
                    exec.exit_code = Some(code);
                }
            }
        }
        result
    }

    async fn exec_start_inner(
        self: &Arc<Self>,
        exec_id: &str,
        attach: bool,
        tty_override: Option<bool>,
        console_size: Option<(u16, u16)>,
    ) -> Result<Option<tokio::io::BufReader<tokio::net::UnixStream>>> {
        let exec = self.exec_get(exec_id)?;
        if exec.running || exec.exit_code.is_some() {
            return Err(Error::Conflict(format!(
                "Error: Exec command {exec_id} has already run"
            )));
        }
        let container = self.find(&exec.container_id)?;
        let record = container.record();
        if !container.state().is_running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        let config = &exec.config;
        let tty = tty_override.unwrap_or(config["Tty"].as_bool().unwrap_or(false));
        let merged = container.dir.join("merged");
        let user_spec = config["User"]
            .as_str()
            .filter(|u| !u.is_empty())
            .unwrap_or(record.config_str("User"));
        let user = user::resolve(&merged, user_spec)?;
        let mut env = container_env(&record, &user);
        for e in str_list(&config["Env"]) {
            let key = e.split('=').next().unwrap_or("").to_string();
            env.retain(|x| x.split('=').next() != Some(key.as_str()));
            env.push(e);
        }
        let args = str_list(&config["Cmd"]);
        let cwd = config["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or(record.config_str("WorkingDir"))
            .to_string();
        let path_env = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(spec::DEFAULT_PATH)
            .to_string();
        if !may_come_from_a_mount(&record, &args[0], &path_env) {
            rootfs::check_executable(&merged, &args[0], &path_env, &cwd)?;
        }
        let mut process = spec::exec_process(
            &record,
            args,
            env,
            &cwd,
            &user,
            tty,
            config["Privileged"].as_bool().unwrap_or(false),
        )?;
        let bundle = self.run_dir(&record.id).join("bundle");
        // Under the container's filter, as Docker runs an exec'd process (--privileged
        // included, as runc does): the one compiled at the container's start.
        let program = bundle.join(SECCOMP_PROGRAM);
        let confinement = program
            .exists()
            .then(|| confine_to(&mut process["capabilities"], program));
        let _ = fsutil::remove_tree(&exec.dir);
        fsutil::ensure_dir(&exec.dir)?;
        let process_path = exec.dir.join("process.json");
        fsutil::write_json_unsynced(&process_path, &process)?;
        let shim_config = ShimConfig {
            id: record.id.clone(),
            bundle,
            state_root: self.config.exec_root.join("libcontainer"),
            socket: exec.dir.join("shim.sock"),
            exit_file: exec.dir.join("exit.json"),
            log: None,
            tty,
            open_stdin: config["AttachStdin"].as_bool().unwrap_or(false) && attach,
            stdin_once: true,
            runtime: runtime_binary(record.host_config["Runtime"].as_str().unwrap_or(""))?,
            exec_process: Some(process_path),
            console_size,
            confinement,
        };
        let config_path = exec.dir.join("shim.json");
        fsutil::write_json_unsynced(&config_path, &shim_config)?;
        match shim::spawn("exec", &config_path).await? {
            CreateReport::Created { .. } => {}
            CreateReport::Failed { message } => return Err(Error::Start(message)),
        }
        let client = ShimClient::new(&shim_config.socket);
        let stream = if attach {
            Some(
                client
                    .attach(
                        config["AttachStdin"].as_bool().unwrap_or(false),
                        config["AttachStdout"].as_bool().unwrap_or(true),
                        config["AttachStderr"].as_bool().unwrap_or(true),
                    )
                    .await?,
            )
        } else {
            None
        };
        client.call(Request::Start).await?;
        let pid = match client.call(Request::State).await {
            Ok(Response::State { pid, .. }) => pid,
            _ => 0,
        };
        if let Some(e) = self
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(exec_id)
        {
            e.running = true;
            e.pid = pid;
        }
        let command = str_list(&config["Cmd"]).join(" ");
        self.emit(
            &format!("exec_start: {command}"),
            &record,
            &[("execID", exec_id.to_string())],
        );
        let runtime = self.clone();
        let exec_id = exec_id.to_string();
        tokio::spawn(async move {
            let code = match client.wait().await {
                Ok(status) => status.exit_code,
                Err(_) => read_exit_file(
                    &shim_config
                        .exit_file
                        .parent()
                        .unwrap_or(Path::new("/"))
                        .to_path_buf(),
                )
                .map(|s| s.exit_code)
                .unwrap_or(255),
            };
            if let Some(e) = runtime
                .execs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&exec_id)
            {
                e.running = false;
                e.exit_code = Some(code);
            }
            runtime.emit(
                "exec_die",
                &record,
                &[("execID", exec_id.clone()), ("exitCode", code.to_string())],
            );
        });
        Ok(stream)
    }

    /// Resizes the terminal of an exec.
    pub async fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        let exec = self.exec_get(exec_id)?;
        if !exec.running {
            return Err(Error::Conflict(format!("Exec {exec_id} is not running")));
        }
        ShimClient::new(exec.dir.join("shim.sock"))
            .call(Request::Resize { rows, cols })
            .await?;
        Ok(())
    }

    /// Attaches to a running container's stdio.
    pub async fn attach_running(
        &self,
        container: &Container,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<tokio::io::BufReader<tokio::net::UnixStream>> {
        self.shim_of(container)?.attach(stdin, stdout, stderr).await
    }

    pub async fn resize(&self, name: &str, rows: u16, cols: u16) -> Result<()> {
        let container = self.find(name)?;
        self.shim_of(&container)?
            .call(Request::Resize { rows, cols })
            .await?;
        Ok(())
    }

    pub fn images(&self) -> &Arc<ImageStore> {
        &self.images
    }

    pub fn cgroup_path(&self, controller: &str, id: &str) -> PathBuf {
        if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            PathBuf::from(format!("/sys/fs/cgroup/berth/{id}"))
        } else {
            PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth/{id}"))
        }
    }
}

/// Where copy-up reads from. When only one layer has the directory and the container
/// has not touched it, that layer's own directory is the same content without the
/// overlay in the way, and reads at disk speed; otherwise the merged view.
fn copy_up_source(merged: &Path, upper: &Path, lowers: &[PathBuf], destination: &str) -> PathBuf {
    let rel = destination.trim_start_matches('/');
    let merged_path = merged.join(rel);
    if rel.is_empty() || upper.join(rel).symlink_metadata().is_ok() {
        return merged_path;
    }
    // Every ancestor must be a plain directory in that layer, or symlinks could point
    // the read elsewhere than the container would see.
    let holders: Vec<&PathBuf> = lowers
        .iter()
        .filter(|l| l.join(rel).symlink_metadata().is_ok())
        .collect();
    match holders.as_slice() {
        [only] => {
            let mut cursor = only.to_path_buf();
            for part in Path::new(rel).components() {
                cursor.push(part);
                match cursor.symlink_metadata() {
                    Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {}
                    _ => return merged_path,
                }
            }
            cursor
        }
        _ => merged_path,
    }
}

async fn wait_exit(
    container: &Container,
    changes: &mut broadcast::Receiver<Change>,
    timeout: Duration,
) -> bool {
    if !container.state().is_running() {
        return true;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, changes.recv()).await {
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Closed)) => {
                if !container.state().is_running() {
                    return true;
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Err(_) => return !container.state().is_running(),
        }
    }
}

fn read_exit_file(dir: &Path) -> Option<ExitStatus> {
    fsutil::read_json(&dir.join("exit.json")).ok().flatten()
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn console_size(v: &Value) -> Option<(u16, u16)> {
    let rows = v.get(0)?.as_u64()? as u16;
    let cols = v.get(1)?.as_u64()? as u16;
    (rows > 0 && cols > 0).then_some((rows, cols))
}

/// `10m`, `1g`, `512k`, `100` → bytes (binary units, as Docker's log options).
pub fn parse_size(input: &str) -> Option<u64> {
    let s = input.trim().to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some((n * mult) as u64)
}

/// The environment a container's processes get: the merged `Env`, with `PATH`,
/// `HOSTNAME`, `HOME` and (with a TTY) `TERM` filled in as Docker does.
fn container_env(record: &ContainerRecord, user: &user::ResolvedUser) -> Vec<String> {
    let mut env = str_list(&record.config["Env"]);
    let has = |env: &[String], key: &str| env.iter().any(|e| e.split('=').next() == Some(key));
    if !has(&env, "PATH") {
        env.insert(0, format!("PATH={}", spec::DEFAULT_PATH));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={}", record.config_str("Hostname")));
    }
    if record.tty() && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    if !has(&env, "HOME") {
        env.push(format!(
            "HOME={}",
            if user.home.is_empty() {
                "/"
            } else {
                &user.home
            }
        ));
    }
    env
}

/// Docker's merge of the image's defaults into a create request.
fn merge_image_config(config: &mut Value, image: &berth_store::ContainerConfig) {
    let entrypoint_given = config.get("Entrypoint").is_some_and(|e| !e.is_null());
    let entrypoint_empty = match config.get("Entrypoint") {
        Some(Value::Array(a)) => a.is_empty() || (a.len() == 1 && a[0] == ""),
        _ => true,
    };
    if entrypoint_empty {
        let cmd_empty = config
            .get("Cmd")
            .is_none_or(|c| c.as_array().is_none_or(|a| a.is_empty()));
        if cmd_empty {
            config["Cmd"] = json!(image.cmd);
        }
        if !entrypoint_given {
            config["Entrypoint"] = json!(image.entrypoint);
        } else {
            config["Entrypoint"] = Value::Null;
        }
    }
    let mut env: Vec<String> = str_list(&config["Env"]);
    for e in image.env.clone().unwrap_or_default() {
        let key = e.split('=').next().unwrap_or("").to_string();
        if !env
            .iter()
            .any(|x| x.split('=').next() == Some(key.as_str()))
        {
            env.insert(0, e);
        }
    }
    // Image entries first, in image order, then the user's.
    let image_keys: Vec<String> = image
        .env
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|e| e.split('=').next().unwrap_or("").to_string())
        .collect();
    env.sort_by_key(|e| {
        let key = e.split('=').next().unwrap_or("");
        image_keys
            .iter()
            .position(|k| k == key)
            .unwrap_or(usize::MAX)
    });
    config["Env"] = json!(env);
    if config["WorkingDir"].as_str().unwrap_or("").is_empty() {
        config["WorkingDir"] = json!(image.working_dir);
    }
    if config["User"].as_str().unwrap_or("").is_empty() {
        config["User"] = json!(image.user);
    }
    if config["StopSignal"].as_str().unwrap_or("").is_empty() {
        if let Some(s) = &image.stop_signal {
            config["StopSignal"] = json!(s);
        }
    }
    let mut labels = image.labels.clone().unwrap_or_default();
    if let Some(own) = config["Labels"].as_object() {
        for (k, v) in own {
            labels.insert(k.clone(), v.as_str().unwrap_or("").to_string());
        }
    }
    config["Labels"] = json!(labels);
    for key in ["ExposedPorts", "Volumes"] {
        let mut merged = match key {
            "ExposedPorts" => image.exposed_ports.clone().unwrap_or_default(),
            _ => image.volumes.clone().unwrap_or_default(),
        };
        if let Some(own) = config[key].as_object() {
            for (k, v) in own {
                merged.insert(k.clone(), v.clone());
            }
        }
        if !merged.is_empty() {
            config[key] = json!(merged);
        }
    }
    crate::health::merge_with_image(&mut config["Healthcheck"], image.healthcheck.as_ref());
}

/// The extra attributes json-file records on each line: the container labels and
/// environment variables that `--log-opt labels=…` and `env=…` name.
fn log_attributes(record: &ContainerRecord, options: &Value) -> BTreeMap<String, String> {
    let names = |key: &str| -> Vec<String> {
        options[key]
            .as_str()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut attrs = BTreeMap::new();
    let labels = record.labels();
    for name in names("labels") {
        if let Some(v) = labels.get(&name) {
            attrs.insert(name, v.clone());
        }
    }
    let env = str_list(&record.config["Env"]);
    for name in names("env") {
        if let Some(v) = env.iter().find_map(|e| e.strip_prefix(&format!("{name}="))) {
            attrs.insert(name, v.to_string());
        }
    }
    attrs
}

/// `Path` and `Args` from the merged config.
fn command_of(config: &Value) -> Result<(String, Vec<String>)> {
    let mut command = str_list(&config["Entrypoint"]);
    if command.len() == 1 && command[0].is_empty() {
        command.clear();
    }
    command.extend(str_list(&config["Cmd"]));
    if command.is_empty() {
        return Err(Error::InvalidArgument("No command specified".into()));
    }
    let path = command.remove(0);
    Ok((path, command))
}

/// The external OCI runtime a container asked for with `--runtime`. No name means the
/// built-in libcontainer runtime (reported as `runc`, Docker's default name); `runc`
/// itself uses the runc binary when one is installed.
pub fn runtime_binary(name: &str) -> Result<Option<PathBuf>> {
    if name.is_empty() {
        return Ok(None);
    }
    let found = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|c| c.is_file())
        })
        .unwrap_or(None)
        .or_else(|| {
            ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|c| c.is_file())
        });
    match found {
        Some(path) if !name.contains('/') => Ok(Some(path)),
        None if name == "runc" => Ok(None),
        _ => Err(Error::InvalidArgument(format!(
            "unknown or invalid runtime name: {name}"
        ))),
    }
}

/// Checks HostConfig values before anything is created, with Docker's messages.
fn validate_host_config(host: &mut Value) -> Result<()> {
    if host.is_null() {
        *host = json!({});
    }
    let memory = host["Memory"].as_i64().unwrap_or(0);
    if memory > 0 && memory < 6 * 1024 * 1024 {
        return Err(Error::InvalidArgument(
            "Minimum memory limit allowed is 6MB".into(),
        ));
    }
    let swap = host["MemorySwap"].as_i64().unwrap_or(0);
    if memory > 0 && swap > 0 && swap < memory {
        return Err(Error::InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        ));
    }
    if host["NanoCpus"].as_i64().unwrap_or(0) < 0 {
        return Err(Error::InvalidArgument(
            "Range of CPUs is from 0.01 to the number of CPUs".into(),
        ));
    }
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as i64;
    if host["NanoCpus"].as_i64().unwrap_or(0) > ncpu * 1_000_000_000 {
        return Err(Error::InvalidArgument(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if let Some(set) = host["CpusetCpus"].as_str().filter(|s| !s.is_empty()) {
        for part in set.split(',') {
            for n in part.split('-') {
                let cpu: i64 = n.parse().map_err(|_| {
                    Error::InvalidArgument(format!("Invalid value {set} for cpuset cpus"))
                })?;
                if cpu >= ncpu {
                    return Err(Error::InvalidArgument(format!(
                        "Requested CPUs are not available - requested {set}, available: 0-{}",
                        ncpu - 1
                    )));
                }
            }
        }
    }
    let policy = host["RestartPolicy"]["Name"].as_str().unwrap_or("");
    if !["", "no", "always", "unless-stopped", "on-failure"].contains(&policy) {
        return Err(Error::InvalidArgument(format!("invalid restart policy: unknown policy '{policy}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")));
    }
    if policy != "on-failure"
        && host["RestartPolicy"]["MaximumRetryCount"]
            .as_i64()
            .unwrap_or(0)
            != 0
    {
        return Err(Error::InvalidArgument(format!(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )));
    }
    if host["AutoRemove"].as_bool().unwrap_or(false) && !["", "no"].contains(&policy) {
        return Err(Error::InvalidArgument(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    for cap in str_list(&host["CapAdd"])
        .iter()
        .chain(str_list(&host["CapDrop"]).iter())
    {
        spec::normalize_capability(cap)?;
    }
    if let Some(t) = host["LogConfig"]["Type"].as_str() {
        if !["", "json-file", "none", "local"].contains(&t) {
            return Err(Error::InvalidArgument(format!(
                "logging driver {t:?} is not supported: use json-file or none"
            )));
        }
        let known = [
            "max-size",
            "max-file",
            "compress",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
            "tag",
        ];
        for key in host["LogConfig"]["Config"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if !known.contains(&key.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "unknown log opt '{key}' for json-file log driver"
                )));
            }
        }
        if let Some(size) = host["LogConfig"]["Config"]["max-size"].as_str() {
            if parse_size(size).is_none() {
                return Err(Error::InvalidArgument(format!("invalid max-size: {size}")));
            }
        }
    }
    runtime_binary(host["Runtime"].as_str().unwrap_or(""))?;
    let mode = host["NetworkMode"].as_str().unwrap_or("");
    if mode.is_empty() || mode == "default" {
        host["NetworkMode"] = json!("bridge");
    }
    Ok(())
}

/// Whether `command` is, or is looked up, under one of the container's mounts.
fn may_come_from_a_mount(record: &ContainerRecord, command: &str, path_env: &str) -> bool {
    let under = |p: &str| {
        record.mounts.iter().any(|m| {
            let d = m.destination.trim_end_matches('/');
            p == d || p.starts_with(&format!("{d}/"))
        })
    };
    if command.contains('/') {
        command.starts_with('/') && under(command)
    } else {
        path_env.split(':').any(under)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn image_defaults_merge_like_docker() {
        let image = berth_store::ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=image".into()]),
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into()]),
            working_dir: "/srv".into(),
            ..Default::default()
        };
        let mut config = json!({"Env": ["A=user", "B=1"], "Cmd": ["echo", "hi"]});
        merge_image_config(&mut config, &image);
        assert_eq!(config["Env"], json!(["PATH=/bin", "A=user", "B=1"]));
        assert_eq!(config["Entrypoint"], json!(["/init"]));
        assert_eq!(
            command_of(&config).unwrap(),
            (
                "/init".to_string(),
                vec!["echo".to_string(), "hi".to_string()]
            )
        );
        let mut config = json!({"Entrypoint": [""], "Cmd": ["ls"]});
        merge_image_config(&mut config, &image);
        assert_eq!(command_of(&config).unwrap().0, "ls");
        let mut config = json!({});
        merge_image_config(&mut config, &berth_store::ContainerConfig::default());
        assert!(command_of(&config).is_err());
    }

    #[test]
    fn host_config_checks() {
        assert!(validate_host_config(&mut json!({"Memory": 1024})).is_err());
        assert!(
            validate_host_config(&mut json!({"RestartPolicy": {"Name": "sometimes"}})).is_err()
        );
        assert!(validate_host_config(
            &mut json!({"AutoRemove": true, "RestartPolicy": {"Name": "always"}})
        )
        .is_err());
        assert!(validate_host_config(&mut json!({"CpusetCpus": "0-999"})).is_err());
        assert!(validate_host_config(&mut json!({"Memory": 64 << 20})).is_ok());
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("bogus"), None);
    }
}
