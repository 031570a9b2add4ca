//! What every handler shares: the stores, the event hub and the configuration.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::Context;
use berth_runtime::{Runtime, RuntimeConfig};
use berth_store::ImageStore;

use crate::config::{DaemonConfig, Reloadable};
use crate::events::EventHub;

/// The daemon's handles. It holds no logic of its own: that lives in the crates.
pub struct Daemon {
    /// The configuration at start; [`Daemon::settings`] has the reloadable part now.
    pub config: DaemonConfig,
    settings: RwLock<Reloadable>,
    pub images: Arc<ImageStore>,
    pub runtime: Arc<Runtime>,
    pub builder: Arc<berth_build::builder::Builder>,
    pub events: Arc<EventHub>,
    /// Stable identity of this engine, kept in the data root.
    pub engine_id: String,
    pub started: SystemTime,
}

impl Daemon {
    /// Opens the stores under the data root. Runs on a blocking thread.
    pub fn open(config: DaemonConfig) -> anyhow::Result<Self> {
        let images = ImageStore::open(&config.data_root).with_context(|| {
            format!("opening the image store in {}", config.data_root.display())
        })?;
        let engine_id = engine_id(&config.data_root)?;
        let images = Arc::new(images);
        let events = Arc::new(
            EventHub::open(&config.data_root.join("events")).context("opening the event log")?,
        );
        let sink = {
            let events = events.clone();
            Arc::new(move |e: berth_runtime::RuntimeEvent| {
                events.publish(crate::events::Event::new(
                    e.kind,
                    &e.action,
                    &e.id,
                    e.attributes,
                ));
            })
        };
        let volumes = Arc::new(
            berth_volume::VolumeStore::open(&config.data_root)
                .context("opening the volume store")?,
        );
        let networks = berth_net::Networks::open(network_config(&config)?)
            .context("opening the network store")?;
        let runtime = Runtime::open(
            RuntimeConfig {
                data_root: config.data_root.clone(),
                exec_root: config.exec_root.clone(),
            },
            images.clone(),
            volumes,
            networks,
            sink,
        )
        .context("loading containers")?;
        let runtime = Arc::new(runtime);
        let builder = Arc::new(berth_build::builder::Builder::new(
            runtime.clone(),
            &config.data_root,
        ));
        Ok(Daemon {
            settings: RwLock::new(config.reloadable()),
            config,
            images,
            builder,
            runtime,
            events,
            engine_id,
            started: SystemTime::now(),
        })
    }
}

impl Daemon {
    /// The reloadable settings as they are now.
    pub fn settings(&self) -> Reloadable {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// SIGHUP: reads the configuration again and applies its reloadable keys. A file
    /// that does not parse or validate is logged and changes nothing.
    pub fn reload(&self) {
        let next = match self.config.reread() {
            Ok(next) => next,
            Err(e) => {
                tracing::error!("configuration not reloaded, the running one is kept: {e:#}");
                return;
            }
        };
        crate::logging::set_level(&next.log_level);
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = next.clone();
        tracing::info!("configuration reloaded");
        let list = |v: &[String]| format!("[{}]", v.join(" "));
        let attributes: BTreeMap<String, String> = [
            ("debug", next.debug.to_string()),
            ("log-level", next.log_level.clone()),
            ("labels", list(&next.labels)),
            ("registry-mirrors", list(&next.registry_mirrors)),
            ("insecure-registries", list(&next.insecure_registries)),
            ("live-restore", "true".to_string()),
            ("name", crate::sysinfo::hostname()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        self.events.publish(crate::events::Event::new(
            "daemon",
            "reload",
            &self.engine_id,
            attributes,
        ));
    }
}

fn network_config(config: &DaemonConfig) -> anyhow::Result<berth_net::NetConfig> {
    let default_subnet = match &config.bip {
        Some(bip) => Some(
            bip.parse::<berth_net::ipam::Subnet>()
                .with_context(|| format!("invalid bip {bip:?}"))?,
        ),
        None => None,
    };
    let pools = if config.default_address_pools.is_empty() {
        berth_net::ipam::default_pools()
    } else {
        config
            .default_address_pools
            .iter()
            .map(|p| {
                Ok(berth_net::ipam::Pool {
                    base: p.base.parse().with_context(|| {
                        format!("invalid default-address-pools base {:?}", p.base)
                    })?,
                    size: p.size,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    Ok(berth_net::NetConfig {
        data_root: config.data_root.clone(),
        default_bridge: config.bridge.clone(),
        default_subnet,
        pools,
        iptables: config.iptables,
    })
}

fn engine_id(data_root: &Path) -> anyhow::Result<String> {
    let path = data_root.join("engine-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if !id.is_empty() {
            return Ok(id);
        }
    }
    let raw = berth_store::fsutil::random_hex(16);
    let id = format!(
        "{}-{}-{}-{}-{}",
        &raw[0..8],
        &raw[8..12],
        &raw[12..16],
        &raw[16..20],
        &raw[20..32]
    );
    berth_store::fsutil::write_atomic(&path, id.as_bytes())?;
    Ok(id)
}
