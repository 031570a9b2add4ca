//! `/_ping`, `/version`, `/info` and `/events`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::error::{ApiError, ApiResult};
use super::filters::Filters;
use super::params::Params;
use super::{AppState, API_VERSION_STR, MIN_API_VERSION};
use crate::events::Event;
use crate::sysinfo;

const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn ping() -> Response {
    (
        [
            ("Builder-Version", "1"),
            (
                header::CACHE_CONTROL.as_str(),
                "no-cache, no-store, must-revalidate",
            ),
            (header::PRAGMA.as_str(), "no-cache"),
            (header::CONTENT_TYPE.as_str(), "text/plain; charset=utf-8"),
        ],
        "OK",
    )
        .into_response()
}

pub async fn version() -> Json<Value> {
    let kernel = sysinfo::kernel_version();
    let arch = berth_store::store::host_architecture();
    let details = json!({
        "ApiVersion": API_VERSION_STR,
        "MinAPIVersion": MIN_API_VERSION.to_string(),
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
        "GoVersion": "n/a (Rust)",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "Experimental": "false",
        "BuildTime": "",
    });
    Json(json!({
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": details}],
        "Version": ENGINE_VERSION,
        "ApiVersion": API_VERSION_STR,
        "MinAPIVersion": MIN_API_VERSION.to_string(),
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
        "GoVersion": "n/a (Rust)",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    }))
}

pub async fn info(State(daemon): State<AppState>) -> Json<Value> {
    let mut counts = (0usize, 0usize, 0usize);
    for c in daemon.runtime.containers.all() {
        match c.state().status {
            berth_runtime::Status::Running | berth_runtime::Status::Restarting => counts.0 += 1,
            berth_runtime::Status::Paused => counts.1 += 1,
            _ => counts.2 += 1,
        }
    }
    let (os, os_version) = sysinfo::operating_system();
    let config = &daemon.config;
    let settings = daemon.settings();
    // Shown as dockerd shows them: normalised with a trailing slash.
    let mirrors: Vec<String> = settings
        .registry_mirrors
        .iter()
        .map(|m| format!("{}/", m.trim_end_matches('/')))
        .collect();
    let mut insecure_cidrs = vec!["127.0.0.0/8".to_string(), "::1/128".to_string()];
    let mut index_configs = serde_json::Map::new();
    index_configs.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": mirrors, "Secure": true, "Official": true}),
    );
    for registry in &settings.insecure_registries {
        if registry.contains('/') {
            insecure_cidrs.push(registry.clone());
        } else {
            index_configs.insert(
                registry.clone(),
                json!({"Name": registry, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
    }
    let cgroup_version = sysinfo::cgroup_version();
    let mut warnings = Vec::new();
    if cgroup_version == "1"
        && !std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
    {
        warnings.push("WARNING: No swap limit support".to_string());
    }
    Json(json!({
        "ID": daemon.engine_id,
        "Containers": counts.0 + counts.1 + counts.2,
        "ContainersRunning": counts.0,
        "ContainersPaused": counts.1,
        "ContainersStopped": counts.2,
        "Images": daemon.images.count(),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": null,
            "Log": ["json-file", "none"],
        },
        "MemoryLimit": true,
        "SwapLimit": warnings.is_empty(),
        "KernelMemoryTCP": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map(|s| s.trim() == "1").unwrap_or(false),
        "Debug": settings.debug,
        "NFd": sysinfo::open_fds(),
        "OomKillDisable": cgroup_version == "1",
        "NGoroutines": 0,
        "SystemTime": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "NEventsListener": daemon.events.listeners(),
        "KernelVersion": sysinfo::kernel_version(),
        "OperatingSystem": os,
        "OSVersion": os_version,
        "OSType": "linux",
        "Architecture": sysinfo::architecture(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "InsecureRegistryCIDRs": insecure_cidrs,
            "IndexConfigs": index_configs,
            "Mirrors": mirrors,
        },
        "NCPU": sysinfo::cpus(),
        "MemTotal": sysinfo::total_memory(),
        "GenericResources": null,
        "DockerRootDir": config.data_root,
        "HttpProxy": std::env::var("HTTP_PROXY").unwrap_or_default(),
        "HttpsProxy": std::env::var("HTTPS_PROXY").unwrap_or_default(),
        "NoProxy": std::env::var("NO_PROXY").unwrap_or_default(),
        "Name": sysinfo::hostname(),
        "Labels": settings.labels,
        "ExperimentalBuild": false,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": runtimes(),
        "DefaultRuntime": "runc",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": false,
            "Error": "",
            "RemoteManagers": null,
        },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "CDISpecDirs": [],
        "Warnings": warnings,
    }))
}

/// The built-in runtime under Docker's default name, and external ones that are installed.
fn runtimes() -> Value {
    let mut out = serde_json::Map::new();
    out.insert("runc".into(), json!({"path": "berth-shim (libcontainer)"}));
    for name in ["crun", "youki", "runc"] {
        if let Ok(Some(path)) = berth_runtime::manager::runtime_binary(name) {
            out.insert(name.into(), json!({"path": path}));
        }
    }
    Value::Object(out)
}

const EVENT_FILTERS: &[&str] = &[
    "type",
    "event",
    "container",
    "image",
    "label",
    "network",
    "volume",
    "daemon",
    "scope",
];

/// `since`/`until` as Docker accepts them: unix seconds (with optional fraction) or RFC 3339.
fn parse_time(raw: &str, name: &str) -> ApiResult<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp_nanos_opt().unwrap_or(0));
    }
    let (secs, frac) = raw.split_once('.').unwrap_or((raw, "0"));
    match (
        secs.parse::<i64>(),
        format!("{frac:0<9}")[..9].parse::<i64>(),
    ) {
        (Ok(s), Ok(n)) => Ok(s * 1_000_000_000 + n),
        _ => Err(ApiError::bad_request(format!(
            "failed to parse value {raw} as a time for {name}"
        ))),
    }
}

fn event_matches(filters: &Filters, event: &Event) -> bool {
    let attr = |k: &str| {
        event
            .actor
            .attributes
            .get(k)
            .map(String::as_str)
            .unwrap_or("")
    };
    let id_or_name = |kind: &str, key: &str| {
        !filters.contains(key)
            || (event.kind == kind
                && filters.any_or_absent(key, |v| {
                    v == event.actor.id || v == attr("name") || event.actor.id.starts_with(v)
                }))
    };
    filters.any_or_absent("type", |v| v == event.kind)
        && filters.any_or_absent("event", |v| {
            v == event.action || event.action.starts_with(&format!("{v}:"))
        })
        && id_or_name("container", "container")
        && id_or_name("network", "network")
        && id_or_name("volume", "volume")
        && (!filters.contains("image")
            || filters.any_or_absent("image", |v| {
                v == event.actor.id || v == attr("image") || v == attr("name")
            }))
        && filters.labels_match("label", &event.actor.attributes)
        && filters.any_or_absent("scope", |v| v == event.scope)
}

pub async fn events(State(daemon): State<AppState>, params: Params) -> ApiResult<Response> {
    let filters = Filters::parse(params.get("filters"), EVENT_FILTERS)?;
    let now = Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let since = params
        .non_empty("since")
        .map(|s| parse_time(s, "since"))
        .transpose()?;
    let until = params
        .non_empty("until")
        .map(|s| parse_time(s, "until"))
        .transpose()?;
    let (past, mut live) = daemon
        .events
        .subscribe(since.unwrap_or(i64::MAX), until.unwrap_or(i64::MAX));
    let until = until.unwrap_or(i64::MAX);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    let filters = Arc::new(filters);
    tokio::spawn(async move {
        let send = |event: &Event| {
            let mut line = serde_json::to_vec(event).unwrap_or_default();
            line.push(b'\n');
            bytes::Bytes::from(line)
        };
        for event in past.iter().filter(|e| event_matches(&filters, e)) {
            if tx.send(Ok(send(event))).await.is_err() {
                return;
            }
        }
        if until <= now {
            return;
        }
        let deadline = (until != i64::MAX).then(|| {
            tokio::time::Instant::now() + std::time::Duration::from_nanos((until - now) as u64)
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, live.recv()).await.ok(),
                    None => Some(live.recv().await),
                }
            };
            tokio::select! {
                _ = tx.closed() => return,
                received = next => match received {
                    None => return, // until reached
                    Some(Ok(event)) => {
                        if event.time_nano > until {
                            return;
                        }
                        if event_matches(&filters, &event) && tx.send(Ok(send(&event))).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(RecvError::Lagged(_))) => continue,
                    Some(Err(RecvError::Closed)) => return,
                },
            }
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("10", "since").unwrap(), 10_000_000_000);
        assert_eq!(parse_time("10.5", "since").unwrap(), 10_500_000_000);
        assert!(parse_time("2024-01-01T00:00:00Z", "since").is_ok());
        assert!(parse_time("yesterday", "since").is_err());
    }
}

/// `GET /system/df`: what images, containers, volumes and the build cache take on
/// disk, as Docker computes it. Layer sizes are recorded when layers are made, and the
/// sizes of stopped containers and idle volumes are remembered, so this walks only
/// what may be changing.
pub async fn disk_usage(State(daemon): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let kinds: Vec<String> = params.all("type");
    for k in &kinds {
        if !["container", "image", "volume", "build-cache"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!("unknown object type: {k}")));
        }
    }
    let wants = move |k: &str| kinds.is_empty() || kinds.iter().any(|x| x == k);
    let runtime = daemon.runtime.clone();
    let images = daemon.images.clone();
    let builder = daemon.builder.clone();
    let result = tokio::task::spawn_blocking(move || {
        let containers = runtime.containers.all();
        let mut out = serde_json::Map::new();
        if wants("image") {
            // Intermediate images (untagged parents of others) are not listed, as in
            // `docker images`; their layers count with the images built on them.
            let views: Vec<_> = images
                .list()
                .into_iter()
                .filter(|v| !(v.tags.is_empty() && v.children > 0))
                .collect();
            // How many images hold each layer: a layer in more than one is shared.
            let mut holders: std::collections::HashMap<String, (u64, usize)> = Default::default();
            let mut layers_of = Vec::new();
            for view in &views {
                let layers = images.image_layers(&view.image).unwrap_or_default();
                let mut seen = std::collections::HashSet::new();
                for l in &layers {
                    if seen.insert(l.chain_id.to_string()) {
                        let e = holders.entry(l.chain_id.to_string()).or_insert((l.size, 0));
                        e.1 += 1;
                    }
                }
                layers_of.push(seen);
            }
            let layers_size: u64 = holders.values().map(|(size, _)| size).sum();
            let mut users_of_image: std::collections::HashMap<String, usize> = Default::default();
            for c in &containers {
                *users_of_image.entry(c.record().image).or_default() += 1;
            }
            let mut image_docs = Vec::new();
            for (view, layers) in views.iter().zip(&layers_of) {
                let image = &view.image;
                let shared: u64 = layers
                    .iter()
                    .filter_map(|c| holders.get(c))
                    .filter(|(_, n)| *n > 1)
                    .map(|(size, _)| size)
                    .sum();
                let users = users_of_image.get(image.id.as_str()).copied().unwrap_or(0);
                image_docs.push(json!({
                    "Id": image.id,
                    "ParentId": image.record.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                    "RepoTags": view.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
                    "RepoDigests": image.record.repo_digests,
                    "Created": image.created().map(|t| t.timestamp()).unwrap_or(0),
                    "Size": image.record.size,
                    "SharedSize": shared,
                    "VirtualSize": image.record.size,
                    "Labels": image.config.config.labels.clone().unwrap_or_default(),
                    "Containers": users,
                }));
            }
            out.insert("LayersSize".into(), json!(layers_size));
            out.insert("Images".into(), json!(image_docs));
        }
        if wants("container") {
            let mut docs = Vec::new();
            for c in &containers {
                let record = c.record();
                let state = c.state();
                let (rw, root_fs) = super::containers::sizes(&runtime, &images, c, &record);
                docs.push(json!({
                    "Id": record.id,
                    "Names": [format!("/{}", record.name)],
                    "Image": record.image_name,
                    "ImageID": record.image,
                    "Command": record.command_line(),
                    "Created": chrono::DateTime::parse_from_rfc3339(&record.created).map(|t| t.timestamp()).unwrap_or(0),
                    "State": state.status.as_str(),
                    "Status": super::containers::status_text(&state),
                    "SizeRw": rw,
                    "SizeRootFs": root_fs,
                    "Labels": record.labels(),
                    "Mounts": record.mounts.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
                }));
            }
            out.insert("Containers".into(), json!(docs));
        }
        if wants("volume") {
            let volumes = runtime.volumes();
            let usage = runtime.volume_usage();
            let docs: Vec<Value> = volumes
                .list()
                .unwrap_or_default()
                .iter()
                .map(|v| {
                    json!({
                        "Name": v.name,
                        "Driver": v.driver,
                        "Mountpoint": volumes.data_path(&v.name),
                        "CreatedAt": v.created_at,
                        "Labels": v.labels,
                        "Scope": "local",
                        "Options": null,
                        "UsageData": {
                            "Size": usage.get(&v.name).map_or(0, |u| u.size),
                            "RefCount": usage.get(&v.name).map_or(0, |u| u.refs),
                        },
                    })
                })
                .collect();
            out.insert("Volumes".into(), json!(docs));
        }
        if wants("build-cache") {
            let usage = |id: &berth_store::Digest| runtime.image_usage(id.as_str());
            let docs: Vec<Value> = builder
                .cache()
                .records(&images, &usage)
                .into_iter()
                .map(|r| {
                    json!({
                        "ID": r.id,
                        "Parents": null,
                        "Type": "regular",
                        "Description": r.description,
                        "InUse": r.in_use,
                        "Shared": r.shared,
                        "Size": r.size,
                        "CreatedAt": r.created_at,
                        "LastUsedAt": r.last_used_at,
                        "UsageCount": r.usage_count,
                    })
                })
                .collect();
            out.insert("BuildCache".into(), json!(docs));
        }
        Value::Object(out)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(result))
}
