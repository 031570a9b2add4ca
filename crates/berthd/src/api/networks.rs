//! `/networks/...`: berth-net through the API, in Docker's shapes.

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_net::{CreateRequest, Network};
use serde_json::{json, Map, Value};

use super::body::{json_body, string_map};
use super::error::{ApiError, ApiResult};
use super::filters::{parse_until, Filters};
use super::params::Params;
use super::AppState;

/// Docker's network object; `Containers` only for inspect.
fn network_json(daemon: &AppState, n: &Network, with_containers: bool) -> Value {
    let config: Vec<Value> = match (n.subnet, n.gateway) {
        (Some(subnet), Some(gateway)) => {
            let mut c = json!({"Subnet": subnet.to_string(), "Gateway": gateway.to_string()});
            if let Some(range) = n.ip_range {
                c["IPRange"] = json!(range.to_string());
            }
            vec![c]
        }
        _ => Vec::new(),
    };
    let mut containers = Map::new();
    if with_containers {
        for (member, endpoint) in daemon.runtime.networks().members(&n.id) {
            containers.insert(
                member.id.clone(),
                json!({
                    "Name": member.name,
                    "EndpointID": endpoint.endpoint_id,
                    "MacAddress": endpoint.mac,
                    "IPv4Address": format!("{}/{}", endpoint.ip, endpoint.prefix),
                    "IPv6Address": "",
                }),
            );
        }
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

/// Docker's network events: name and driver, and the container for (dis)connects.
fn network_event(daemon: &AppState, action: &str, network: &Network, container: Option<String>) {
    let mut attributes = BTreeMap::from([
        ("name".to_string(), network.name.clone()),
        ("type".to_string(), network.driver.clone()),
    ]);
    if let Some(id) = container {
        attributes.insert("container".to_string(), id);
    }
    daemon.events.publish(crate::events::Event::new(
        "network",
        action,
        &network.id,
        attributes,
    ));
}

fn in_use(daemon: &AppState, n: &Network) -> bool {
    !daemon.runtime.networks().members(&n.id).is_empty()
}

pub async fn list(State(daemon): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(
        params.get("filters"),
        &["dangling", "driver", "id", "label", "name", "scope", "type"],
    )?;
    let mut networks = daemon.runtime.networks().list();
    networks.sort_by(|a, b| a.name.cmp(&b.name));
    let out: Vec<Value> = networks
        .iter()
        .filter(|n| {
            filters.any_or_absent("name", |v| n.name.contains(v))
                && filters.any_or_absent("id", |v| n.id.starts_with(v))
                && filters.any_or_absent("driver", |v| n.driver == v)
                && filters.any_or_absent("scope", |v| v == "local")
                && filters.any_or_absent("type", |v| match v {
                    "builtin" => n.is_predefined(),
                    "custom" => !n.is_predefined(),
                    _ => false,
                })
                && filters.any_or_absent("dangling", |v| {
                    let dangling = !n.is_predefined() && !in_use(&daemon, n);
                    (v == "true" || v == "1") == dangling
                })
                && filters.labels_match("label", &n.labels)
        })
        .map(|n| network_json(&daemon, n, false))
        .collect();
    Ok(Json(Value::Array(out)))
}

pub async fn inspect(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let network = daemon.runtime.networks().get(&name)?;
    Ok(Json(network_json(&daemon, &network, true)))
}

pub async fn create(State(daemon): State<AppState>, request: Request) -> ApiResult<Response> {
    let body = json_body(request, 1024 * 1024).await?;
    let name = body["Name"].as_str().unwrap_or("").to_string();
    if body["EnableIPv6"].as_bool().unwrap_or(false) {
        return Err(ApiError::bad_request(
            "IPv6 networks are not supported by berth yet".to_string(),
        ));
    }
    let ipam_configs = body["IPAM"]["Config"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if ipam_configs.len() > 1 {
        return Err(ApiError::bad_request(
            "berth networks take one IPv4 subnet".to_string(),
        ));
    }
    let ipam = ipam_configs.first().cloned().unwrap_or(json!({}));
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    if ipam["Subnet"].as_str().unwrap_or("").is_empty()
        && (text(&ipam["Gateway"]).is_some() || text(&ipam["IPRange"]).is_some())
    {
        return Err(ApiError::bad_request(
            "every ip-range or gateway must have a corresponding subnet".to_string(),
        ));
    }
    let request = CreateRequest {
        name,
        driver: body["Driver"].as_str().unwrap_or("bridge").to_string(),
        internal: body["Internal"].as_bool().unwrap_or(false),
        attachable: body["Attachable"].as_bool().unwrap_or(false),
        labels: string_map(&body["Labels"]),
        options: string_map(&body["Options"]),
        subnet: text(&ipam["Subnet"]),
        gateway: text(&ipam["Gateway"]),
        ip_range: text(&ipam["IPRange"]),
    };
    let network = daemon.runtime.networks().create(request).await?;
    network_event(&daemon, "create", &network, None);
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": network.id, "Warning": ""})),
    )
        .into_response())
}

pub async fn remove(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let network = {
        let _no_creates = daemon.runtime.exclude_creation().await;
        daemon.runtime.networks().remove(&name).await?
    };
    network_event(&daemon, "destroy", &network, None);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn connect(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> ApiResult<StatusCode> {
    let body = json_body(request, 1024 * 1024).await?;
    let container = body["Container"].as_str().unwrap_or("");
    if container.is_empty() {
        return Err(ApiError::bad_request("Container is required".to_string()));
    }
    let network = daemon.runtime.networks().get(&name)?;
    daemon
        .runtime
        .connect(container, &network.id, &body["EndpointConfig"])
        .await?;
    let id = daemon.runtime.find(container)?.id();
    network_event(&daemon, "connect", &network, Some(id));
    Ok(StatusCode::OK)
}

pub async fn disconnect(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> ApiResult<StatusCode> {
    let body = json_body(request, 1024 * 1024).await?;
    let container = body["Container"].as_str().unwrap_or("");
    if container.is_empty() {
        return Err(ApiError::bad_request("Container is required".to_string()));
    }
    let network = daemon.runtime.networks().get(&name)?;
    daemon.runtime.disconnect(container, &network.id).await?;
    let id = daemon
        .runtime
        .find(container)
        .map(|c| c.id())
        .unwrap_or_default();
    network_event(&daemon, "disconnect", &network, Some(id));
    Ok(StatusCode::OK)
}

pub async fn prune(State(daemon): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(params.get("filters"), &["until", "label", "label!"])?;
    let until = match filters.get("until").first() {
        Some(raw) => Some(parse_until(raw)?),
        None => None,
    };
    let _no_creates = daemon.runtime.exclude_creation().await;
    let removed = daemon
        .runtime
        .networks()
        .prune(|n| {
            let created = chrono::DateTime::parse_from_rfc3339(&n.created)
                .map(|t| t.timestamp())
                .unwrap_or(0);
            let too_new = until.is_some_and(|u| created >= u);
            let labels_ok = filters.labels_match("label", &n.labels)
                && !filters
                    .get("label!")
                    .iter()
                    .any(|l| Filters::single_label_match(l, &n.labels));
            too_new || !labels_ok
        })
        .await;
    Ok(Json(json!({"NetworksDeleted": removed})))
}
