//! The image configuration (Docker's and OCI's `application/vnd.oci.image.config.v1+json`)
//! and the container defaults it carries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;

/// The image config blob. Its sha256 is the image id. Unknown fields are kept so that a
/// config we did not write round-trips byte-for-byte in meaning.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The container defaults an image carries (`Config` in inspect).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `rootfs`: the uncompressed layer digests, bottom first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One `history` entry; `empty_layer` marks steps that changed only metadata.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// The canonical bytes of this config; their digest is the image id.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an image config always serializes")
    }

    /// Labels on the image (`Config.Labels`).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config.labels.clone().unwrap_or_default()
    }
}

/// A Dockerfile-style change applied at import or commit (`--change`).
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigChange {
    Env(Vec<(String, String)>),
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    WorkingDir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Label(Vec<(String, String)>),
    StopSignal(String),
    OnBuild(String),
}

impl ContainerConfig {
    /// Applies one change the way the builder's instruction would.
    pub fn apply(&mut self, change: &ConfigChange) {
        match change {
            ConfigChange::Env(pairs) => {
                let env = self.env.get_or_insert_with(Vec::new);
                for (key, value) in pairs {
                    let entry = format!("{key}={value}");
                    match env.iter_mut().find(|e| {
                        e.split_once('=').map(|(k, _)| k) == Some(key.as_str()) || *e == key
                    }) {
                        Some(existing) => *existing = entry,
                        None => env.push(entry),
                    }
                }
            }
            ConfigChange::Cmd(cmd) => self.cmd = Some(cmd.clone()),
            ConfigChange::Entrypoint(ep) => self.entrypoint = Some(ep.clone()),
            ConfigChange::WorkingDir(dir) => self.working_dir = dir.clone(),
            ConfigChange::User(user) => self.user = user.clone(),
            ConfigChange::Expose(ports) => {
                let map = self.exposed_ports.get_or_insert_with(BTreeMap::new);
                for port in ports {
                    let key = if port.contains('/') {
                        port.clone()
                    } else {
                        format!("{port}/tcp")
                    };
                    map.insert(key, Value::Object(Map::new()));
                }
            }
            ConfigChange::Volume(paths) => {
                let map = self.volumes.get_or_insert_with(BTreeMap::new);
                for path in paths {
                    map.insert(path.clone(), Value::Object(Map::new()));
                }
            }
            ConfigChange::Label(pairs) => {
                let map = self.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in pairs {
                    map.insert(k.clone(), v.clone());
                }
            }
            ConfigChange::StopSignal(sig) => self.stop_signal = Some(sig.clone()),
            ConfigChange::OnBuild(trigger) => self
                .on_build
                .get_or_insert_with(Vec::new)
                .push(trigger.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_round_trip() {
        let raw = r#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Foo":1},"rootfs":{"type":"layers","diff_ids":[]},"docker_version":"20.10"}"#;
        let cfg: ImageConfig = serde_json::from_str(raw).unwrap();
        let back: Value = serde_json::from_slice(&cfg.to_bytes()).unwrap();
        assert_eq!(back["docker_version"], "20.10");
        assert_eq!(back["config"]["Foo"], 1);
    }

    #[test]
    fn env_change_replaces_existing_key() {
        let mut c = ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            ..Default::default()
        };
        c.apply(&ConfigChange::Env(vec![
            ("A".into(), "2".into()),
            ("B".into(), "3".into()),
        ]));
        assert_eq!(c.env.unwrap(), vec!["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn expose_defaults_to_tcp() {
        let mut c = ContainerConfig::default();
        c.apply(&ConfigChange::Expose(vec!["80".into(), "53/udp".into()]));
        let ports = c.exposed_ports.unwrap();
        assert!(ports.contains_key("80/tcp") && ports.contains_key("53/udp"));
    }
}
