//! `/volumes/...`: the local volume driver through the API.

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_volume::Volume;
use serde_json::{json, Value};

use super::body::{json_body, string_map};
use super::error::{ApiError, ApiResult};
use super::filters::Filters;
use super::params::Params;
use super::AppState;

fn volume_json(daemon: &AppState, v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": daemon.runtime.volumes().data_path(&v.name),
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    })
}

pub async fn list(State(daemon): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(
        params.get("filters"),
        &["dangling", "name", "label", "driver"],
    )?;
    let volumes = daemon.runtime.volumes().list()?;
    let out: Vec<Value> = volumes
        .iter()
        .filter(|v| {
            filters.any_or_absent("dangling", |d| {
                let dangling = daemon.runtime.volume_users(&v.name).is_empty();
                (d == "true" || d == "1") == dangling
            }) && filters.any_or_absent("name", |n| v.name.contains(n))
                && filters.any_or_absent("driver", |d| v.driver == d)
                && filters.labels_match("label", &v.labels)
        })
        .map(|v| volume_json(&daemon, v))
        .collect();
    Ok(Json(json!({"Volumes": out, "Warnings": null})))
}

pub async fn create(State(daemon): State<AppState>, request: Request) -> ApiResult<Response> {
    let body = json_body(request, 1024 * 1024).await?;
    let map = |key: &str| string_map(&body[key]);
    // `volume create` without a name makes a named volume with a generated name; only
    // volumes made for a container are anonymous (what prune removes by default).
    let name = match body["Name"].as_str().filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => berth_store::fsutil::random_hex(32),
    };
    let (volume, created) = daemon.runtime.volumes().create(
        Some(&name),
        body["Driver"].as_str().unwrap_or("local"),
        map("Labels"),
        map("DriverOpts"),
    )?;
    if created {
        let mut attributes = BTreeMap::new();
        attributes.insert("driver".to_string(), volume.driver.clone());
        daemon.events.publish(crate::events::Event::new(
            "volume",
            "create",
            &volume.name,
            attributes,
        ));
    }
    Ok((StatusCode::CREATED, Json(volume_json(&daemon, &volume))).into_response())
}

pub async fn inspect(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let volume = daemon.runtime.volumes().get(&name)?;
    Ok(Json(volume_json(&daemon, &volume)))
}

pub async fn remove(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<StatusCode> {
    let volumes = daemon.runtime.volumes();
    volumes.get(&name)?;
    let _no_creates = daemon.runtime.exclude_creation().await;
    let users = daemon.runtime.volume_users(&name);
    if !users.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("remove {name}: volume is in use - [{}]", users.join(", ")),
        ));
    }
    let _ = params.flag("force");
    volumes.remove(&name)?;
    daemon.events.publish(crate::events::Event::new(
        "volume",
        "destroy",
        &name,
        BTreeMap::new(),
    ));
    Ok(StatusCode::NO_CONTENT)
}

pub async fn prune(State(daemon): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(params.get("filters"), &["all", "label", "label!"])?;
    let all = filters.get("all").iter().any(|a| a == "true" || a == "1");
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    let volumes = daemon.runtime.volumes();
    let _no_creates = daemon.runtime.exclude_creation().await;
    for v in volumes.list()? {
        if (!all && !v.anonymous)
            || !daemon.runtime.volume_users(&v.name).is_empty()
            || !filters.labels_match("label", &v.labels)
            || filters
                .get("label!")
                .iter()
                .any(|l| Filters::single_label_match(l, &v.labels))
        {
            continue;
        }
        let size = volumes.size(&v.name);
        if volumes.remove(&v.name).is_ok() {
            reclaimed += size;
            daemon.events.publish(crate::events::Event::new(
                "volume",
                "destroy",
                &v.name,
                BTreeMap::new(),
            ));
            deleted.push(v.name);
        }
    }
    Ok(Json(json!({
        "VolumesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
        "SpaceReclaimed": reclaimed,
    })))
}
