//! A container's mounts: `-v`/`Binds`, `--mount`/`Mounts`, and the image's VOLUMEs,
//! parsed and checked as Docker does before anything is created, then resolved to
//! volumes (created on first use) and host paths.

use std::collections::BTreeMap;
use std::path::Path;

use berth_volume::VolumeStore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// One mount of a container, as recorded and as `inspect` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// The volume's name (volumes only).
    #[serde(default)]
    pub name: String,
    /// Host path: the bind source, or the volume's data directory.
    #[serde(default)]
    pub source: String,
    pub destination: String,
    #[serde(default)]
    pub read_only: bool,
    /// Copy the image's content into an empty volume (off with `nocopy`).
    #[serde(default)]
    pub copy: bool,
    #[serde(default)]
    pub propagation: String,
    /// The mode string as given (`ro`, `z`, …), for inspect.
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub tmpfs_options: Vec<String>,
    /// The volume was made for this container alone (removed by `rm -v`).
    #[serde(default)]
    pub anonymous: bool,
}

impl MountPoint {
    /// The entry of `Mounts` in container inspect.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": !self.read_only,
            "Propagation": if self.kind == "bind" { self.propagation.as_str() } else { "" },
        });
        if self.kind == "volume" {
            v["Name"] = json!(self.name);
            v["Driver"] = json!("local");
        }
        v
    }
}

fn invalid_spec(spec: &str, why: &str) -> Error {
    if why.is_empty() {
        Error::InvalidArgument(format!("invalid volume specification: '{spec}'"))
    } else {
        Error::InvalidArgument(format!("invalid volume specification: '{spec}': {why}"))
    }
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Parses one `-v` string: `/ctr`, `name:/ctr[:opts]`, `/host:/ctr[:opts]`.
fn parse_bind(spec: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, opts) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => return Err(invalid_spec(spec, "")),
    };
    if destination.is_empty() {
        return Err(invalid_spec(spec, ""));
    }
    let kind = if source.starts_with('/') {
        "bind"
    } else {
        "volume"
    };
    if !destination.starts_with('/') {
        return Err(invalid_spec(
            spec,
            &format!("invalid mount config for type \"{kind}\": invalid mount path: '{destination}' mount path must be absolute"),
        ));
    }
    let mut mount = MountPoint {
        kind: kind.into(),
        name: if kind == "volume" {
            source.to_string()
        } else {
            String::new()
        },
        source: if kind == "bind" {
            source.to_string()
        } else {
            String::new()
        },
        destination: destination.to_string(),
        read_only: false,
        copy: true,
        propagation: if kind == "bind" {
            "rprivate".into()
        } else {
            String::new()
        },
        mode: opts.to_string(),
        tmpfs_options: Vec::new(),
        anonymous: source.is_empty(),
    };
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => mount.read_only = true,
            "rw" => mount.read_only = false,
            "z" | "Z" => {}
            "nocopy" => mount.copy = false,
            p if PROPAGATIONS.contains(&p) && kind == "bind" => mount.propagation = p.to_string(),
            _ => return Err(invalid_spec(spec, &format!("invalid mode: {opt}"))),
        }
    }
    if kind == "volume" && !source.is_empty() && !berth_volume::valid_name(source) {
        return Err(Error::InvalidArgument(
            berth_volume::Error::InvalidName(source.to_string()).to_string(),
        ));
    }
    Ok(mount)
}

/// Parses one `--mount` object (`HostConfig.Mounts`).
fn parse_mount(m: &Value) -> Result<MountPoint> {
    let kind = m["Type"].as_str().unwrap_or("volume").to_string();
    let source = m["Source"].as_str().unwrap_or("").to_string();
    let target = m["Target"].as_str().unwrap_or("").to_string();
    if target.is_empty() || !target.starts_with('/') {
        return Err(Error::InvalidArgument(format!(
            "invalid mount config for type \"{kind}\": invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    let read_only = m["ReadOnly"].as_bool().unwrap_or(false);
    let mut mount = MountPoint {
        kind: kind.clone(),
        name: String::new(),
        source: String::new(),
        destination: target,
        read_only,
        copy: true,
        propagation: String::new(),
        mode: String::new(),
        tmpfs_options: Vec::new(),
        anonymous: false,
    };
    match kind.as_str() {
        "bind" => {
            if source.is_empty() {
                return Err(Error::InvalidArgument(
                    "invalid mount config for type \"bind\": field Source must not be empty".into(),
                ));
            }
            if !Path::new(&source).exists() {
                return Err(Error::InvalidArgument(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {source}"
                )));
            }
            mount.source = source;
            mount.propagation = m["BindOptions"]["Propagation"]
                .as_str()
                .filter(|p| !p.is_empty())
                .unwrap_or("rprivate")
                .to_string();
        }
        "volume" => {
            if !source.is_empty() && !berth_volume::valid_name(&source) {
                return Err(Error::InvalidArgument(
                    berth_volume::Error::InvalidName(source).to_string(),
                ));
            }
            mount.anonymous = source.is_empty();
            mount.name = source;
            mount.copy = !m["VolumeOptions"]["NoCopy"].as_bool().unwrap_or(false);
            mount.mode = "z".into();
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(Error::InvalidArgument(
                    "invalid mount config for type \"tmpfs\": field Source must not be specified"
                        .into(),
                ));
            }
            if let Some(size) = m["TmpfsOptions"]["SizeBytes"].as_i64().filter(|s| *s > 0) {
                mount.tmpfs_options.push(format!("size={size}"));
            }
            if let Some(mode) = m["TmpfsOptions"]["Mode"].as_u64().filter(|m| *m > 0) {
                mount.tmpfs_options.push(format!("mode={mode:o}"));
            }
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "invalid mount config: mount type unknown: \"{other}\""
            )));
        }
    }
    Ok(mount)
}

/// Every mount a create asks for, checked, without creating anything.
pub fn plan(host: &Value, config_volumes: &Value) -> Result<Vec<MountPoint>> {
    let mut mounts: Vec<MountPoint> = Vec::new();
    let push = |m: MountPoint, mounts: &mut Vec<MountPoint>| -> Result<()> {
        if mounts
            .iter()
            .any(|x| x.destination.trim_end_matches('/') == m.destination.trim_end_matches('/'))
        {
            return Err(Error::InvalidArgument(format!(
                "Duplicate mount point: {}",
                m.destination
            )));
        }
        mounts.push(m);
        Ok(())
    };
    for spec in host["Binds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        push(parse_bind(spec)?, &mut mounts)?;
    }
    for m in host["Mounts"].as_array().into_iter().flatten() {
        push(parse_mount(m)?, &mut mounts)?;
    }
    // The image's and the create's `Volumes`: anonymous volumes where nothing else is.
    if let Some(volumes) = config_volumes.as_object() {
        for dest in volumes.keys() {
            if mounts
                .iter()
                .any(|m| m.destination.trim_end_matches('/') == dest.trim_end_matches('/'))
            {
                continue;
            }
            if !dest.starts_with('/') {
                return Err(Error::InvalidArgument(format!(
                    "invalid mount path: '{dest}' mount path must be absolute"
                )));
            }
            mounts.push(MountPoint {
                kind: "volume".into(),
                name: String::new(),
                source: String::new(),
                destination: dest.clone(),
                read_only: false,
                copy: true,
                propagation: String::new(),
                mode: String::new(),
                tmpfs_options: Vec::new(),
                anonymous: true,
            });
        }
    }
    Ok(mounts)
}

/// Creates the volumes a plan needs and fills in host paths. Returns the names of
/// volumes made here, so a failed create can take them back.
pub fn realize(mounts: &mut [MountPoint], volumes: &VolumeStore) -> Result<Vec<String>> {
    let mut created = Vec::new();
    for m in mounts.iter_mut() {
        if m.kind != "volume" {
            continue;
        }
        let name = (!m.name.is_empty()).then_some(m.name.as_str());
        let (volume, made) = volumes
            .create(name, "local", BTreeMap::new(), BTreeMap::new())
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        if made {
            created.push(volume.name.clone());
        }
        m.anonymous = volume.anonymous;
        m.name = volume.name.clone();
        m.source = volumes.data_path(&volume.name).display().to_string();
    }
    Ok(created)
}

/// The OCI mount for one of ours.
pub fn to_spec(m: &MountPoint) -> Value {
    if m.kind == "tmpfs" {
        let mut options = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ];
        options.extend(m.tmpfs_options.iter().cloned());
        if m.read_only {
            options.push("ro".into());
        }
        return json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": options});
    }
    let mut options = vec!["rbind".to_string()];
    options.push(if m.propagation.is_empty() {
        "rprivate".to_string()
    } else {
        m.propagation.clone()
    });
    if m.read_only {
        options.push("ro".into());
    }
    json!({"destination": m.destination, "type": "bind", "source": m.source, "options": options})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms() {
        let m = parse_bind("/host:/ctr:ro").unwrap();
        assert_eq!((m.kind.as_str(), m.read_only), ("bind", true));
        let m = parse_bind("data:/d").unwrap();
        assert_eq!(
            (m.kind.as_str(), m.name.as_str(), m.anonymous),
            ("volume", "data", false)
        );
        assert!(parse_bind("/ctr").unwrap().anonymous);
        let e = parse_bind("a:b:c:d").unwrap_err().to_string();
        assert_eq!(e, "invalid volume specification: 'a:b:c:d'");
        assert!(parse_bind("data:relative")
            .unwrap_err()
            .to_string()
            .contains("must be absolute"));
        assert!(parse_bind("bad name!:/x").is_err());
        assert!(parse_bind("/a:/b:bogus").is_err());
    }

    #[test]
    fn plans_and_duplicates() {
        let host =
            json!({"Binds": ["/tmp:/data"], "Mounts": [{"Type": "tmpfs", "Target": "/scratch"}]});
        let plan = plan(&host, &json!({"/data": {}, "/cache": {}})).unwrap();
        assert_eq!(plan.len(), 3);
        assert!(plan
            .iter()
            .any(|m| m.destination == "/cache" && m.anonymous));
        let dup = json!({"Binds": ["/tmp:/x", "vol:/x"]});
        assert!(super::plan(&dup, &Value::Null)
            .unwrap_err()
            .to_string()
            .contains("Duplicate mount point"));
        let missing =
            json!({"Mounts": [{"Type": "bind", "Source": "/nonexistent-berth", "Target": "/x"}]});
        assert!(super::plan(&missing, &Value::Null)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
    }
}
