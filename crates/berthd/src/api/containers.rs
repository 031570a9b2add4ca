//! `/containers/...` and `/exec/...`: the container lifecycle through the API.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_runtime::health::HealthStatus;
use berth_runtime::record::ZERO_TIME;
use berth_runtime::{logs, network};
use berth_runtime::{Container, ContainerRecord, ContainerState, Status};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::body::json_body;
use super::error::{ApiError, ApiResult};
use super::filters::{parse_until, Filters};
use super::hijack::{output_body, splice, take_upgrade, upgraded_response};
use super::params::Params;
use super::AppState;

pub async fn create(
    State(daemon): State<AppState>,
    params: Params,
    request: Request,
) -> ApiResult<Response> {
    let mut body = json_body(request, 16 * 1024 * 1024).await?;
    let host_config = body
        .as_object_mut()
        .and_then(|o| o.remove("HostConfig"))
        .unwrap_or(json!({}));
    let networking_config = body
        .as_object_mut()
        .and_then(|o| o.remove("NetworkingConfig"))
        .unwrap_or(json!({}));
    let (id, warnings) = daemon
        .runtime
        .create(params.get("name"), body, host_config, networking_config)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": id, "Warnings": warnings})),
    )
        .into_response())
}

pub async fn start(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if daemon.runtime.start(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Ok(StatusCode::NOT_MODIFIED)
    }
}

fn timeout_param(params: &Params) -> ApiResult<Option<i64>> {
    params
        .non_empty("t")
        .or(params.non_empty("timeout"))
        .map(|t| {
            t.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeout {t:?}")))
        })
        .transpose()
}

pub async fn stop(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<StatusCode> {
    let timeout = timeout_param(&params)?;
    if daemon
        .runtime
        .stop(&name, timeout, params.non_empty("signal"))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Ok(StatusCode::NOT_MODIFIED)
    }
}

pub async fn restart(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<StatusCode> {
    let timeout = timeout_param(&params)?;
    daemon
        .runtime
        .restart(&name, timeout, params.non_empty("signal"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kill(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<StatusCode> {
    daemon
        .runtime
        .kill(&name, params.get("signal").unwrap_or(""))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    daemon.runtime.pause(&name, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unpause(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    daemon.runtime.pause(&name, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rename(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<StatusCode> {
    let new_name = params
        .non_empty("name")
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    daemon.runtime.rename(&name, new_name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/update`: new resource limits or restart policy.
pub async fn update(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> ApiResult<Json<Value>> {
    let body = json_body(request, 1024 * 1024).await?;
    let warnings = daemon.runtime.update(&name, &body)?;
    Ok(Json(json!({ "Warnings": warnings })))
}

pub async fn remove(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<StatusCode> {
    daemon
        .runtime
        .remove_with_volumes(&name, params.flag("force"), params.flag("v"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The 200 and its headers go out at once; the body only when the condition is met.
/// The docker CLI sends this before `start` and blocks until the headers arrive.
pub async fn wait(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let condition = params.get("condition").unwrap_or("").to_string();
    if !["", "not-running", "next-exit", "removed"].contains(&condition.as_str()) {
        return Err(ApiError::bad_request(format!(
            "invalid condition: \"{condition}\""
        )));
    }
    let container = daemon.runtime.find(&name)?;
    let id = container.id();
    let runtime = daemon.runtime.clone();
    let stream = futures_util::stream::once(async move {
        let body = match runtime.wait(&id, &condition).await {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        Ok::<_, std::io::Error>(bytes::Bytes::from(format!("{body}\n")))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn resize(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<StatusCode> {
    let (rows, cols) = size_params(&params)?;
    daemon.runtime.resize(&name, rows, cols).await?;
    Ok(StatusCode::OK)
}

fn size_params(params: &Params) -> ApiResult<(u16, u16)> {
    let get = |k: &str| -> ApiResult<u16> {
        params
            .get(k)
            .unwrap_or("0")
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid {k}")))
    };
    Ok((get("h")?, get("w")?))
}

pub async fn attach(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
    mut request: Request,
) -> ApiResult<Response> {
    let container = daemon.runtime.find(&name)?;
    let record = container.record();
    let tty = record.tty();
    let (stdin, stdout, stderr) = (
        params.flag("stdin"),
        params.flag("stdout"),
        params.flag("stderr"),
    );
    let upgrade = take_upgrade(&mut request);
    if container.state().status == Status::Running || container.state().status == Status::Paused {
        let stream = daemon
            .runtime
            .attach_running(&container, stdin, stdout, stderr)
            .await?;
        return Ok(match upgrade {
            Some(upgrade) => {
                tokio::spawn(splice(upgrade, stream));
                upgraded_response(tty)
            }
            None => output_body(stream, tty),
        });
    }
    // Not running yet: the attach waits for the start, which waits for the attach.
    let (shim_rx, ready) = daemon.runtime.attach_before_start(&record.id);
    let (stream_tx, stream_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok(shim) = shim_rx.await else { return };
        if let Ok(stream) = shim.attach(stdin, stdout, stderr).await {
            let _ = stream_tx.send(stream);
        }
        let _ = ready.send(());
    });
    match upgrade {
        Some(upgrade) => {
            tokio::spawn(async move {
                if let Ok(stream) = stream_rx.await {
                    splice(upgrade, stream).await;
                }
            });
            Ok(upgraded_response(tty))
        }
        None => {
            let stream = futures_util::stream::once(async move { stream_rx.await.ok() });
            let body = futures_util::StreamExt::flat_map(stream, |s| match s {
                Some(s) => futures_util::future::Either::Left(tokio_util::io::ReaderStream::new(s)),
                None => futures_util::future::Either::Right(futures_util::stream::empty()),
            });
            Ok((
                [(
                    header::CONTENT_TYPE,
                    "application/vnd.docker.multiplexed-stream",
                )],
                Body::from_stream(body),
            )
                .into_response())
        }
    }
}

// ------------------------------------------------------------------ inspect and list

fn human_duration(seconds: i64) -> String {
    let hours = (seconds as f64 / 3600.0 + 0.5) as i64;
    if seconds < 1 {
        "Less than a second".into()
    } else if seconds == 1 {
        "1 second".into()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if seconds / 60 == 1 {
        "About a minute".into()
    } else if seconds / 60 < 60 {
        format!("{} minutes", seconds / 60)
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", seconds / 3600 / 24 / 365)
    }
}

fn since(time: &str) -> i64 {
    DateTime::parse_from_rfc3339(time)
        .map(|t| Utc::now().signed_duration_since(t).num_seconds())
        .unwrap_or(0)
}

/// `SizeRw` and `SizeRootFs` as Docker reports them: the container's writable layer,
/// and that with its image. The layer's size is the runtime's, remembered while the
/// container is stopped.
pub(super) fn sizes(
    runtime: &berth_runtime::Runtime,
    images: &berth_store::ImageStore,
    container: &Container,
    record: &ContainerRecord,
) -> (u64, u64) {
    let rw = runtime.container_rw_size(container);
    let image_size = berth_store::Digest::parse(&record.image)
        .ok()
        .and_then(|d| images.get(&d))
        .map(|i| i.record.size)
        .unwrap_or(0);
    (rw, rw + image_size)
}

/// The STATUS column: "Up 5 seconds", "Exited (0) 2 minutes ago", …
pub(super) fn status_text(state: &ContainerState) -> String {
    match state.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let health = match state.health.as_ref().map(|h| h.status) {
                Some(HealthStatus::Starting) => " (health: starting)",
                Some(HealthStatus::Healthy) => " (healthy)",
                Some(HealthStatus::Unhealthy) => " (unhealthy)",
                None => "",
            };
            format!("Up {}{health}", human_duration(since(&state.started_at)))
        }
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&state.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            state.exit_code,
            human_duration(since(&state.finished_at))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            state.exit_code,
            human_duration(since(&state.finished_at))
        ),
        Status::Dead => "Dead".into(),
    }
}

fn state_json(state: &ContainerState) -> Value {
    let mut out = json!({
        "Status": state.status.as_str(),
        "Running": matches!(state.status, Status::Running | Status::Paused),
        "Paused": state.status == Status::Paused,
        "Restarting": state.status == Status::Restarting,
        "OOMKilled": state.oom_killed,
        "Dead": state.status == Status::Dead,
        "Pid": state.pid,
        "ExitCode": state.exit_code,
        "Error": state.error,
        "StartedAt": state.started_at,
        "FinishedAt": state.finished_at,
    });
    if let Some(health) = &state.health {
        out["Health"] = json!(health);
    }
    out
}

/// HostConfig with Docker's defaults under what the user set.
fn host_config_json(record: &ContainerRecord) -> Value {
    let mut out = json!({
        "Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "bridge", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null, "ConsoleSize": [0, 0],
        "CapAdd": null, "CapDrop": null, "CgroupnsMode": "private", "Dns": [], "DnsOptions": [],
        "DnsSearch": [], "ExtraHosts": null, "GroupAdd": null, "IpcMode": "private", "Cgroup": "",
        "Links": null, "OomScoreAdj": 0, "PidMode": "", "Privileged": false, "PublishAllPorts": false,
        "ReadonlyRootfs": false, "SecurityOpt": null, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864,
        "Runtime": "runc", "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
        "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
        "DeviceCgroupRules": null, "DeviceRequests": null, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": null, "OomKillDisable": null, "PidsLimit": null, "Ulimits": [],
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "MaskedPaths": ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"],
        "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    });
    if let (Some(target), Some(given)) = (out.as_object_mut(), record.host_config.as_object()) {
        for (k, v) in given {
            if !v.is_null() {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    if out["LogConfig"]["Type"].as_str().unwrap_or("").is_empty() {
        out["LogConfig"]["Type"] = json!("json-file");
    }
    if out["LogConfig"]["Config"].is_null() {
        out["LogConfig"]["Config"] = json!({});
    }
    if record.host_bool("Privileged") {
        out["MaskedPaths"] = Value::Null;
        out["ReadonlyPaths"] = Value::Null;
    }
    out
}

/// Config with every key Docker shows.
fn config_json(record: &ContainerRecord) -> Value {
    let mut out = json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": null,
        "Cmd": null, "Image": record.image_name, "Volumes": null, "WorkingDir": "", "Entrypoint": null,
        "OnBuild": null, "Labels": {},
    });
    if let (Some(target), Some(given)) = (out.as_object_mut(), record.config.as_object()) {
        for (k, v) in given {
            target.insert(k.clone(), v.clone());
        }
    }
    out
}

/// `NetworkSettings.Networks`: each configured network, with its endpoint while the
/// container runs; the mode's own entry for `host`, `none` and the like.
fn networks_json(daemon: &AppState, record: &ContainerRecord, state: &ContainerState) -> Value {
    let mode = record.host_config["NetworkMode"]
        .as_str()
        .unwrap_or("bridge");
    let mut networks = Map::new();
    for attachment in &record.networks {
        let endpoint = state
            .endpoints
            .iter()
            .find(|e| e.network_id == attachment.network_id);
        networks.insert(
            attachment.network_name.clone(),
            network::endpoint_json(record, attachment, endpoint),
        );
    }
    if record.networks.is_empty() && !mode.starts_with("container:") {
        let id = daemon
            .runtime
            .networks()
            .get(mode)
            .map(|n| n.id)
            .unwrap_or_default();
        let attachment = berth_runtime::NetworkAttachment {
            network_id: id,
            network_name: mode.to_string(),
            ..Default::default()
        };
        networks.insert(
            mode.to_string(),
            network::endpoint_json(record, &attachment, None),
        );
    }
    Value::Object(networks)
}

fn network_settings(daemon: &AppState, record: &ContainerRecord, state: &ContainerState) -> Value {
    let mode = record.host_config["NetworkMode"]
        .as_str()
        .unwrap_or("bridge");
    let sandbox = if state.is_running() && mode != "host" {
        daemon.runtime.netns_path(&record.id).display().to_string()
    } else {
        String::new()
    };
    let networks = networks_json(daemon, record, state);
    // The top-level fields describe the default bridge's endpoint, as in Docker.
    let bridge = state.endpoints.iter().find(|e| e.network_name == "bridge");
    let text = |f: &dyn Fn(&berth_net::Endpoint) -> String| bridge.map(f).unwrap_or_default();
    json!({
        "Bridge": "", "SandboxID": if sandbox.is_empty() { String::new() } else { record.id.clone() },
        "SandboxKey": sandbox, "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": network::ports_json(record, state),
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": text(&|e| e.endpoint_id.clone()),
        "Gateway": text(&|e| e.gateway.to_string()),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": text(&|e| e.ip.to_string()),
        "IPPrefixLen": bridge.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": "",
        "MacAddress": text(&|e| e.mac.clone()),
        "Networks": networks,
    })
}

fn inspect_document(daemon: &AppState, container: &Container) -> ApiResult<Value> {
    let record = container.record();
    let state = container.state();
    let dir = &container.dir;
    let lowers = berth_store::Digest::parse(&record.image)
        .ok()
        .and_then(|d| daemon.images.layer_paths(&d).ok())
        .unwrap_or_default();
    let lower: Vec<String> = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let log_path = if record.host_config["LogConfig"]["Type"].as_str() == Some("none") {
        String::new()
    } else {
        dir.join(format!("{}-json.log", record.id))
            .display()
            .to_string()
    };
    Ok(json!({
        "Id": record.id,
        "Created": record.created,
        "Path": record.path,
        "Args": record.args,
        "State": state_json(&state),
        "Image": record.image,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": log_path,
        "Name": format!("/{}", record.name),
        "RestartCount": record.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config_json(&record),
        "GraphDriver": {
            "Data": {
                "LowerDir": lower.join(":"),
                "MergedDir": dir.join("merged"),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
            },
            "Name": "overlay2",
        },
        "Mounts": record.mounts.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
        "Config": config_json(&record),
        "NetworkSettings": network_settings(daemon, &record, &state),
    }))
}

pub async fn inspect(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let container = daemon.runtime.find(&name)?;
    Ok(Json(inspect_document(&daemon, &container)?))
}

const LIST_FILTERS: &[&str] = &[
    "id", "name", "label", "status", "ancestor", "exited", "before", "since", "network", "volume",
    "health", "is-task", "publish", "expose",
];

pub async fn list(State(daemon): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(params.get("filters"), LIST_FILTERS)?;
    for s in filters.get("status") {
        if ![
            "created",
            "restarting",
            "running",
            "removing",
            "paused",
            "exited",
            "dead",
        ]
        .contains(&s.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'status={s}'"
            )));
        }
    }
    for h in filters.get("health") {
        if !["starting", "healthy", "unhealthy", "none"].contains(&h.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unrecognised filter value for health: {h}"
            )));
        }
    }
    let all = params.flag("all") || filters.contains("status") || filters.contains("exited");
    let limit: Option<usize> = params
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let mut containers: Vec<(ContainerRecord, ContainerState, Arc<Container>)> = daemon
        .runtime
        .containers
        .all()
        .into_iter()
        .map(|c| (c.record(), c.state(), c))
        .collect();
    containers.sort_by(|a, b| b.0.created.cmp(&a.0.created));
    let created_of =
        |name: &str| -> ApiResult<String> { Ok(daemon.runtime.find(name)?.record().created) };
    let before = filters
        .get("before")
        .first()
        .map(|n| created_of(n))
        .transpose()?;
    let since_f = filters
        .get("since")
        .first()
        .map(|n| created_of(n))
        .transpose()?;
    let ancestors: Vec<String> = filters
        .get("ancestor")
        .iter()
        .filter_map(|a| {
            daemon
                .images
                .resolve(a)
                .ok()
                .map(|v| v.image.id.to_string())
        })
        .collect();
    let mut out = Vec::new();
    for (record, state, container) in containers {
        let labels = record.labels();
        let keep = (all || state.is_running() || limit.is_some())
            && filters.any_or_absent("id", |v| record.id.starts_with(v))
            && filters.any_or_absent("name", |v| record.name.contains(v.trim_start_matches('/')))
            && filters.labels_match("label", &labels)
            && filters.any_or_absent("status", |v| v == state.status.as_str())
            && filters.any_or_absent("health", |v| {
                v == state.health.as_ref().map_or("none", |h| h.status.as_str())
            })
            && filters.any_or_absent("exited", |v| {
                state.status == Status::Exited && v.parse::<i32>().ok() == Some(state.exit_code)
            })
            && (!filters.contains("ancestor")
                || ancestors.contains(&record.image)
                || filters.get("ancestor").contains(&record.image_name))
            && before.as_ref().is_none_or(|b| record.created < *b)
            && since_f.as_ref().is_none_or(|s| record.created > *s);
        if !keep {
            continue;
        }
        let created = DateTime::parse_from_rfc3339(&record.created)
            .map(|t| t.timestamp())
            .unwrap_or(0);
        let mut item = json!({
            "Id": record.id,
            "Names": [format!("/{}", record.name)],
            "Image": record.image_name,
            "ImageID": record.image,
            "Command": record.command_line(),
            "Created": created,
            "Ports": network::ports_summary(&record, &state),
            "Labels": labels,
            "State": state.status.as_str(),
            "Status": status_text(&state),
            "HostConfig": {"NetworkMode": record.host_config["NetworkMode"].as_str().unwrap_or("bridge")},
            "NetworkSettings": {"Networks": networks_json(&daemon, &record, &state)},
            "Mounts": record.mounts.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
        });
        if params.flag("size") {
            let (rw, root_fs) = sizes(&daemon.runtime, &daemon.images, &container, &record);
            item["SizeRw"] = json!(rw);
            item["SizeRootFs"] = json!(root_fs);
        }
        out.push(item);
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    Ok(Json(Value::Array(out)))
}

pub async fn prune(State(daemon): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(params.get("filters"), &["until", "label", "label!"])?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0;
    for container in daemon.runtime.containers.all() {
        let record = container.record();
        let state = container.state();
        if state.is_running()
            || state.status == Status::Removing
            || daemon.runtime.is_being_run(&record.id)
        {
            continue;
        }
        let labels = record.labels();
        if !filters.labels_match("label", &labels)
            || filters
                .get("label!")
                .iter()
                .any(|l| Filters::single_label_match(l, &labels))
        {
            continue;
        }
        if let Some(until) = filters.get("until").first() {
            let created = DateTime::parse_from_rfc3339(&record.created)
                .map(|t| t.timestamp())
                .unwrap_or(0);
            let cutoff = parse_until(until)?;
            if created >= cutoff {
                continue;
            }
        }
        let size = daemon.runtime.container_rw_size(&container);
        if daemon.runtime.remove(&record.id, false).await.is_ok() {
            deleted.push(record.id);
            reclaimed += size;
        }
    }
    Ok(Json(json!({
        "ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
        "SpaceReclaimed": reclaimed,
    })))
}

// ------------------------------------------------------------------ logs, top, stats

fn parse_time_param(raw: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(raw) = raw.filter(|r| !r.is_empty() && *r != "0") else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp_nanos_opt());
    }
    let (secs, frac) = raw.split_once('.').unwrap_or((raw, "0"));
    let frac = format!("{frac:0<9}");
    match (secs.parse::<i64>(), frac[..9].parse::<i64>()) {
        (Ok(s), Ok(n)) => Ok(Some(s * 1_000_000_000 + n)),
        _ => Err(ApiError::bad_request(format!("invalid time value {raw:?}"))),
    }
}

pub async fn logs(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let container = daemon.runtime.find(&name)?;
    let record = container.record();
    let filter = logs::Filter {
        stdout: params.flag("stdout"),
        stderr: params.flag("stderr"),
        since: parse_time_param(params.get("since"))?,
        until: parse_time_param(params.get("until"))?,
        tail: params
            .get("tail")
            .filter(|t| *t != "all" && !t.is_empty())
            .map(|t| {
                t.parse::<usize>()
                    .map_err(|_| ApiError::bad_request(format!("invalid tail {t:?}")))
            })
            .transpose()?,
    };
    if !filter.stdout && !filter.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    if record.host_config["LogConfig"]["Type"].as_str() == Some("none") {
        return Err(ApiError::bad_request(
            "configured logging driver does not support reading",
        ));
    }
    let tty = record.tty();
    let timestamps = params.flag("timestamps");
    let details = params.flag("details");
    let follow = params.flag("follow");
    let path = container.dir.join(format!("{}-json.log", record.id));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    let until = filter.until;
    let mut changes = daemon.runtime.subscribe(&record.id);
    tokio::spawn(async move {
        let mut follower = logs::Follower::open(&path);
        let (entries, offset) = {
            let path = path.clone();
            let filter = filter.clone();
            match tokio::task::spawn_blocking(move || logs::read_all(&path, &filter)).await {
                Ok(r) => r,
                Err(_) => return,
            }
        };
        follower.seek(offset);
        for e in &entries {
            if tx
                .send(Ok(logs::encode(e, tty, timestamps, details).into()))
                .await
                .is_err()
            {
                return;
            }
        }
        if !follow {
            return;
        }
        let mut live_filter = filter.clone();
        live_filter.tail = None;
        loop {
            let running = container.state().is_running();
            let new = follower.read_new(&live_filter);
            for e in &new {
                if tx
                    .send(Ok(logs::encode(e, tty, timestamps, details).into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if !running || until.is_some_and(|u| Utc::now().timestamp_nanos_opt().unwrap_or(0) > u)
            {
                return;
            }
            // New lines are polled for; an exit wakes us at once.
            tokio::select! {
                _ = tx.closed() => return,
                _ = changes.recv() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) });
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn top(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let container = daemon.runtime.find(&name)?;
    let record = container.record();
    if !container.state().is_running() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", record.id),
        ));
    }
    let pids = berth_runtime::stats::pids(&record.id);
    let args: Vec<String> = params
        .get("ps_args")
        .unwrap_or("-ef")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let output = tokio::process::Command::new("ps")
        .args(&args)
        .output()
        .await
        .map_err(|e| ApiError::internal(format!("running ps: {e}")))?;
    if !output.status.success() {
        return Err(ApiError::internal(format!(
            "ps: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header_line = lines.next().unwrap_or("");
    let titles: Vec<String> = header_line.split_whitespace().map(str::to_string).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ApiError::internal("couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        processes.push(row);
    }
    Ok(Json(json!({"Titles": titles, "Processes": processes})))
}

pub async fn stats(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let container = daemon.runtime.find(&name)?;
    let stream = params
        .get("stream")
        .is_none_or(|s| s == "1" || s == "true" || s == "True");
    let one_shot = params.flag("one-shot");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let sample = |c: &Arc<Container>| {
            let r = c.record();
            let s = c.state();
            if s.is_running() {
                berth_runtime::stats::sample(&r.id, &r.name, s.pid)
            } else {
                json!({"read": ZERO_TIME, "name": format!("/{}", r.name), "id": r.id, "pids_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0}, "memory_stats": {}, "blkio_stats": {}, "networks": {}})
            }
        };
        let mut previous = if one_shot {
            None
        } else {
            Some(sample(&container))
        };
        if !stream && !one_shot {
            // Two samples, so that the client can compute a CPU percentage.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        loop {
            let mut current = sample(&container);
            match &previous {
                Some(p) => {
                    current["preread"] = p["read"].clone();
                    current["precpu_stats"] = p["cpu_stats"].clone();
                }
                None => {
                    current["preread"] = json!(ZERO_TIME);
                    current["precpu_stats"] =
                        json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}});
                }
            }
            let line = format!("{current}\n");
            if tx.send(Ok(line.into())).await.is_err() || !stream || !container.state().is_running()
            {
                return;
            }
            previous = Some(current);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let body =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

// ------------------------------------------------------------------ exec

pub async fn exec_create(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let body = json_body(request, 16 * 1024 * 1024).await?;
    let id = daemon.runtime.exec_create(&name, body)?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

pub async fn exec_start(
    State(daemon): State<AppState>,
    Path(id): Path<String>,
    mut request: Request,
) -> ApiResult<Response> {
    let upgrade = take_upgrade(&mut request);
    let body = json_body(request, 16 * 1024 * 1024).await?;
    let detach = body["Detach"].as_bool().unwrap_or(false);
    let tty = body["Tty"].as_bool();
    let console = body["ConsoleSize"]
        .as_array()
        .and_then(|a| Some((a.first()?.as_u64()? as u16, a.get(1)?.as_u64()? as u16)))
        .filter(|(r, c)| *r > 0 && *c > 0);
    let exec = daemon.runtime.exec_get(&id)?;
    let tty = tty.unwrap_or(exec.config["Tty"].as_bool().unwrap_or(false));
    if exec.running || exec.exit_code.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Error: Exec command {id} has already run"),
        ));
    }
    let container = daemon.runtime.find(&exec.container_id)?;
    if !container.state().is_running() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", exec.container_id),
        ));
    }
    match upgrade {
        // The 101 goes out before the process starts, so its first output never shares
        // a packet with our headers (docker-py reads the raw socket after them).
        Some(upgrade) if !detach => {
            let runtime = daemon.runtime.clone();
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let mut client = hyper_util::rt::TokioIo::new(upgraded);
                match runtime.exec_start(&id, true, Some(tty), console).await {
                    Ok(Some(mut stream)) => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut stream).await;
                    }
                    Ok(None) => {}
                    // Docker writes the failure into the stream; the client then reads
                    // the exit code from the exec.
                    Err(e) => {
                        use tokio::io::AsyncWriteExt;
                        let text = format!("OCI runtime exec failed: {e}\r\n");
                        let mut message = Vec::new();
                        if !tty {
                            message.extend_from_slice(&berth_shim_proto::frame_header(
                                berth_shim_proto::STDOUT,
                                text.len(),
                            ));
                        }
                        message.extend_from_slice(text.as_bytes());
                        let _ = client.write_all(&message).await;
                        let _ = client.shutdown().await;
                    }
                }
            });
            Ok(upgraded_response(tty))
        }
        _ => match daemon
            .runtime
            .exec_start(&id, !detach, Some(tty), console)
            .await?
        {
            None => Ok(StatusCode::OK.into_response()),
            Some(stream) => Ok(output_body(stream, tty)),
        },
    }
}

pub async fn exec_resize(
    State(daemon): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<StatusCode> {
    let (rows, cols) = size_params(&params)?;
    daemon.runtime.exec_resize(&id, rows, cols).await?;
    Ok(StatusCode::OK)
}

pub async fn exec_inspect(
    State(daemon): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let exec = daemon.runtime.exec_get(&id)?;
    let cmd: Vec<String> = exec.config["Cmd"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    Ok(Json(json!({
        "ID": exec.id,
        "Running": exec.running,
        "ExitCode": exec.exit_code,
        "ProcessConfig": {
            "tty": exec.config["Tty"].as_bool().unwrap_or(false),
            "entrypoint": cmd.first().cloned().unwrap_or_default(),
            "arguments": cmd.iter().skip(1).cloned().collect::<Vec<_>>(),
            "privileged": exec.config["Privileged"].as_bool().unwrap_or(false),
            "user": exec.config["User"].as_str().unwrap_or(""),
        },
        "OpenStdin": exec.config["AttachStdin"].as_bool().unwrap_or(false),
        "OpenStderr": exec.config["AttachStderr"].as_bool().unwrap_or(false),
        "OpenStdout": exec.config["AttachStdout"].as_bool().unwrap_or(false),
        "CanRemove": false,
        "ContainerID": exec.container_id,
        "DetachKeys": "",
        "Pid": exec.pid,
    })))
}

// ------------------------------------------------------------------ files

pub async fn changes(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let runtime = daemon.runtime.clone();
    let changes = tokio::task::spawn_blocking(move || runtime.changes(&name)).await??;
    Ok(Json(Value::Array(
        changes
            .into_iter()
            .map(|c| json!({"Path": c.path, "Kind": c.kind}))
            .collect(),
    )))
}

pub async fn export(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    daemon.runtime.find(&name)?;
    let (mut writer, body) = super::stream::body_channel();
    let runtime = daemon.runtime.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = runtime.export(&name, &mut writer) {
            writer.fail(e);
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

fn path_stat_header(stat: &berth_runtime::files::PathStat) -> String {
    let doc = json!({
        "name": stat.name, "size": stat.size, "mode": stat.mode,
        "mtime": stat.mtime, "linkTarget": stat.link_target,
    });
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(doc.to_string().as_bytes())
}

async fn stat_for(
    daemon: &AppState,
    name: &str,
    params: &Params,
) -> ApiResult<(String, berth_runtime::files::PathStat)> {
    let path = params
        .non_empty("path")
        .ok_or_else(|| ApiError::bad_request("path is required"))?
        .to_string();
    let runtime = daemon.runtime.clone();
    let name = name.to_string();
    let p = path.clone();
    let stat = tokio::task::spawn_blocking(move || runtime.stat_path(&name, &p)).await??;
    Ok((path, stat))
}

pub async fn archive_head(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let (_, stat) = stat_for(&daemon, &name, &params).await?;
    Ok((
        [("X-Docker-Container-Path-Stat", path_stat_header(&stat))],
        StatusCode::OK,
    )
        .into_response())
}

pub async fn archive_get(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let (path, stat) = stat_for(&daemon, &name, &params).await?;
    let (mut writer, body) = super::stream::body_channel();
    let runtime = daemon.runtime.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = runtime.archive_get(&name, &path, &mut writer) {
            writer.fail(e);
        }
    });
    Ok((
        [
            ("X-Docker-Container-Path-Stat", path_stat_header(&stat)),
            (
                header::CONTENT_TYPE.as_str(),
                "application/x-tar".to_string(),
            ),
        ],
        body,
    )
        .into_response())
}

pub async fn archive_put(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
    body: Body,
) -> ApiResult<StatusCode> {
    let path = params
        .non_empty("path")
        .ok_or_else(|| ApiError::bad_request("path is required"))?
        .to_string();
    daemon.runtime.find(&name)?;
    let mut reader = super::stream::body_reader(body);
    let runtime = daemon.runtime.clone();
    tokio::task::spawn_blocking(move || {
        let result = runtime.archive_put(&name, &path, &mut reader);
        if result.is_err() {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        }
        result
    })
    .await??;
    Ok(StatusCode::OK)
}

pub async fn commit(
    State(daemon): State<AppState>,
    params: Params,
    request: Request,
) -> ApiResult<Response> {
    let container = params
        .non_empty("container")
        .ok_or_else(|| ApiError::bad_request("container is required"))?
        .to_string();
    let body = json_body(request, 16 * 1024 * 1024).await?;
    let reference = match params.non_empty("repo") {
        Some(repo) => {
            let parsed = berth_store::Reference::parse_normalized(repo)?;
            let tag = params
                .non_empty("tag")
                .or(parsed.tag())
                .unwrap_or("latest")
                .to_string();
            Some(parsed.with_tag(&tag)?)
        }
        None => None,
    };
    let changes = params
        .all("changes")
        .iter()
        .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|c| !c.trim().is_empty())
        .map(|c| berth_store::change::parse_change(&c))
        .collect::<Result<Vec<_>, _>>()?;
    let options = berth_runtime::files::CommitOptions {
        author: params.get("author").unwrap_or("").to_string(),
        comment: params.get("comment").unwrap_or("").to_string(),
        changes,
        config: (!body.as_object().is_none_or(|o| o.is_empty())).then_some(body),
        image_config: None,
        created_by: None,
    };
    let pause = params.get("pause").is_none_or(|p| p != "0" && p != "false")
        && daemon.runtime.find(&container)?.state().status == Status::Running;
    if pause {
        let _ = daemon.runtime.pause(&container, true).await;
    }
    let runtime = daemon.runtime.clone();
    let name = container.clone();
    let result = tokio::task::spawn_blocking(move || runtime.commit(&name, options)).await?;
    if pause {
        let _ = daemon.runtime.pause(&container, false).await;
    }
    let id = result?;
    if let Some(r) = &reference {
        daemon.images.tag(&id, r)?;
        daemon.events.image("tag", id.as_str(), &r.familiar());
    }
    let record = daemon.runtime.find(&container)?.record();
    let mut attributes = record.labels();
    attributes.insert("name".into(), record.name.clone());
    attributes.insert("imageID".into(), id.to_string());
    attributes.insert(
        "imageRef".into(),
        reference.map(|r| r.familiar()).unwrap_or_default(),
    );
    daemon.events.publish(crate::events::Event::new(
        "container",
        "commit",
        &record.id,
        attributes,
    ));
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}
