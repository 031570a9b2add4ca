//! The daemon's configuration: command-line flags merged with daemon.json, using
//! dockerd's key names and its refusal of unknown keys.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use serde::Deserialize;
use serde_json::Value;

pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";

/// `berthd` command-line flags.
#[derive(Debug, Clone, Parser, Default)]
#[command(
    name = "berthd",
    version,
    about = "berth daemon: a Docker-compatible container engine"
)]
pub struct Flags {
    /// Root directory of persistent state
    #[arg(long = "data-root")]
    pub data_root: Option<PathBuf>,
    /// Root directory for execution state (sockets)
    #[arg(long = "exec-root")]
    pub exec_root: Option<PathBuf>,
    /// Daemon socket(s) to listen on (unix:///path, or tcp://addr:port with --allow-insecure-tcp)
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Daemon configuration file
    #[arg(long = "config-file")]
    pub config_file: Option<PathBuf>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Logging level (debug, info, warn, error, fatal)
    #[arg(short = 'l', long = "log-level")]
    pub log_level: Option<String>,
    /// Log format (text or json)
    #[arg(long = "log-format")]
    pub log_format: Option<String>,
    /// Path to use for the daemon PID file
    #[arg(short = 'p', long = "pidfile")]
    pub pidfile: Option<PathBuf>,
    /// Listen on plain TCP without TLS. Anyone who reaches the port owns the machine.
    #[arg(long = "allow-insecure-tcp")]
    pub allow_insecure_tcp: bool,
    /// Use TLS and verify the remote
    #[arg(long)]
    pub tlsverify: bool,
    /// Check the configuration file and exit
    #[arg(long)]
    pub validate: bool,
    /// The default bridge network's Linux bridge
    #[arg(short = 'b', long = "bridge")]
    pub bridge: Option<String>,
    /// The default bridge's address and prefix (e.g. 172.17.0.1/16)
    #[arg(long = "bip")]
    pub bip: Option<String>,
    /// Registry CAs, as <dir>/<host[:port]>/*.crt (Docker's /etc/docker/certs.d)
    #[arg(long = "certs-dir", default_value = "/etc/berth/certs.d")]
    pub certs_dir: PathBuf,
}

/// daemon.json, with the keys berth implements. Unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub hosts: Option<Vec<String>>,
    pub debug: Option<bool>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub registry_mirrors: Option<Vec<String>>,
    pub insecure_registries: Option<Vec<String>>,
    pub default_address_pools: Option<Vec<AddressPool>>,
    pub live_restore: Option<bool>,
    pub labels: Option<Vec<String>>,
    pub log_driver: Option<String>,
    pub log_opts: Option<std::collections::BTreeMap<String, String>>,
    pub storage_driver: Option<String>,
    pub pidfile: Option<PathBuf>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub iptables: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub hosts: Vec<String>,
    pub debug: bool,
    pub log_level: String,
    pub log_format: String,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub default_address_pools: Vec<AddressPool>,
    pub labels: Vec<String>,
    pub allow_insecure_tcp: bool,
    pub config_file: Option<PathBuf>,
    pub validate_only: bool,
    pub pidfile: Option<PathBuf>,
    /// The default bridge's device name.
    pub bridge: String,
    pub bip: Option<String>,
    pub iptables: bool,
    pub certs_dir: PathBuf,
    /// The flags the daemon started with: a reload merges them with the file again.
    pub flags: Flags,
}

/// The daemon.json keys that SIGHUP reloads without a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Reloadable {
    pub debug: bool,
    pub log_level: String,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub labels: Vec<String>,
}

impl DaemonConfig {
    pub fn reloadable(&self) -> Reloadable {
        Reloadable {
            debug: self.debug,
            log_level: self.log_level.clone(),
            registry_mirrors: self.registry_mirrors.clone(),
            insecure_registries: self.insecure_registries.clone(),
            labels: self.labels.clone(),
        }
    }

    /// Reads the configuration again, as SIGHUP asks; an error leaves everything as is.
    pub fn reread(&self) -> anyhow::Result<Reloadable> {
        Ok(DaemonConfig::resolve(self.flags.clone())?.reloadable())
    }
}

const KNOWN_KEYS: &[&str] = &[
    "data-root",
    "exec-root",
    "hosts",
    "debug",
    "log-level",
    "log-format",
    "registry-mirrors",
    "insecure-registries",
    "default-address-pools",
    "live-restore",
    "labels",
    "log-driver",
    "log-opts",
    "storage-driver",
    "pidfile",
    "bridge",
    "bip",
    "iptables",
];

impl DaemonConfig {
    /// Merges flags and the config file. As dockerd, a key set both ways is an error.
    pub fn resolve(flags: Flags) -> anyhow::Result<Self> {
        let original_flags = flags.clone();
        let explicit_file = flags.config_file.is_some();
        let path = flags
            .config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/berth/daemon.json"));
        let file = match std::fs::read(&path) {
            Ok(data) => parse_file(&data).with_context(|| {
                format!(
                    "unable to configure the daemon with file {}",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit_file => {
                FileConfig::default()
            }
            Err(e) => bail!("unable to read configuration file {}: {e}", path.display()),
        };
        if !flags.hosts.is_empty() && file.hosts.is_some() {
            bail!(
                "the following directives are specified both as a flag and in the configuration file: hosts: (from flag: {:?}, from file: {:?})",
                flags.hosts,
                file.hosts.unwrap_or_default()
            );
        }
        for (name, flag, in_file) in [
            ("bridge", flags.bridge.is_some(), file.bridge.is_some()),
            ("bip", flags.bip.is_some(), file.bip.is_some()),
        ] {
            if flag && in_file {
                bail!("the following directives are specified both as a flag and in the configuration file: {name}");
            }
        }
        let bridge = flags
            .bridge
            .clone()
            .or(file.bridge.clone())
            .unwrap_or_else(|| "berth0".into());
        if bridge.is_empty() || bridge.len() > 15 {
            bail!("invalid bridge name {bridge:?}: 1 to 15 characters");
        }
        let bip = flags.bip.clone().or(file.bip.clone());
        if flags.data_root.is_some() && file.data_root.is_some() {
            bail!("the following directives are specified both as a flag and in the configuration file: data-root");
        }
        if let Some(driver) = &file.storage_driver {
            if driver != "overlay2" && driver != "overlay" {
                bail!("storage-driver {driver:?} is not supported: berth uses overlay2");
            }
        }
        let exec_root = flags
            .exec_root
            .or(file.exec_root)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_EXEC_ROOT));
        let mut hosts = if !flags.hosts.is_empty() {
            flags.hosts
        } else {
            file.hosts.unwrap_or_default()
        };
        if hosts.is_empty() {
            hosts.push(format!("unix://{}", exec_root.join("berth.sock").display()));
        }
        for host in &hosts {
            if host.starts_with("tcp://") && !flags.allow_insecure_tcp {
                if flags.tlsverify {
                    bail!("listening on {host} with TLS is not supported yet; use a unix socket");
                }
                bail!(
                    "refusing to listen on {host} without TLS: anyone who can reach it gets root on this machine. Pass --allow-insecure-tcp to do it anyway"
                );
            } else if !host.starts_with("tcp://")
                && !host.starts_with("unix://")
                && !host.starts_with("fd://")
            {
                bail!("invalid host {host:?}: expected unix:///path or tcp://host:port");
            }
        }
        let debug = flags.debug || file.debug.unwrap_or(false);
        let log_level = flags.log_level.or(file.log_level).unwrap_or_else(|| {
            if debug {
                "debug".into()
            } else {
                "info".into()
            }
        });
        if !["debug", "info", "warn", "error", "fatal", "trace"].contains(&log_level.as_str()) {
            bail!("unable to parse logging level: {log_level}");
        }
        if flags.log_format.is_some() && file.log_format.is_some() {
            bail!("the following directives are specified both as a flag and in the configuration file: log-format");
        }
        if flags.pidfile.is_some() && file.pidfile.is_some() {
            bail!("the following directives are specified both as a flag and in the configuration file: pidfile");
        }
        let log_format = flags
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        if !["text", "json"].contains(&log_format.as_str()) {
            bail!("unsupported log format {log_format:?}: use text or json");
        }
        Ok(DaemonConfig {
            data_root: flags
                .data_root
                .or(file.data_root)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT)),
            exec_root,
            hosts,
            debug,
            log_level,
            log_format,
            registry_mirrors: file.registry_mirrors.unwrap_or_default(),
            insecure_registries: file.insecure_registries.unwrap_or_default(),
            default_address_pools: file.default_address_pools.unwrap_or_default(),
            labels: file.labels.unwrap_or_default(),
            allow_insecure_tcp: flags.allow_insecure_tcp,
            config_file: explicit_file.then_some(path),
            validate_only: flags.validate,
            pidfile: flags.pidfile.or(file.pidfile),
            bridge,
            bip,
            iptables: file.iptables.unwrap_or(true),
            certs_dir: flags.certs_dir,
            flags: original_flags,
        })
    }
}

/// Parses daemon.json, naming every unknown key at once as dockerd does.
pub fn parse_file(data: &[u8]) -> anyhow::Result<FileConfig> {
    let value: Value = serde_json::from_slice(data).context("invalid JSON")?;
    let object = value
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("the configuration must be a JSON object"))?;
    let unknown: Vec<&str> = object
        .keys()
        .map(String::as_str)
        .filter(|k| !KNOWN_KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the following directives don't match any configuration option: {}",
            unknown.join(", ")
        );
    }
    Ok(serde_json::from_value(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = parse_file(br#"{"debug": true, "bogus": 1, "other": 2}"#).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("bogus, other"), "{msg}");
    }

    #[test]
    fn docker_keys_parse() {
        let cfg = parse_file(
            br#"{"data-root":"/x","registry-mirrors":["http://m"],"insecure-registries":["r:5000"],
                "default-address-pools":[{"base":"10.10.0.0/16","size":24}],"log-level":"warn"}"#,
        )
        .unwrap();
        assert_eq!(cfg.data_root.unwrap(), PathBuf::from("/x"));
        assert_eq!(cfg.default_address_pools.unwrap()[0].size, 24);
    }

    #[test]
    fn tcp_needs_opt_in() {
        let flags = Flags {
            hosts: vec!["tcp://127.0.0.1:2375".into()],
            ..Default::default()
        };
        assert!(DaemonConfig::resolve(flags).is_err());
    }
}
