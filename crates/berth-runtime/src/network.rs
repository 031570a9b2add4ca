//! What a container's network settings mean for berth-net: which networks it joins
//! (from `NetworkMode` and `NetworkingConfig`), which ports it publishes, and the
//! `NetworkSettings` that inspect shows.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_net::{Endpoint, EndpointRequest, Networks, PortRequest, PublishedPort};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::record::{ContainerRecord, ContainerState, NetworkAttachment};

/// The modes that give a container no endpoints of its own.
pub fn is_special_mode(mode: &str) -> bool {
    matches!(mode, "host" | "none") || mode.starts_with("container:")
}

fn net_error(e: berth_net::Error) -> Error {
    Error::Network(e)
}

pub(crate) fn from_net(e: berth_net::Error) -> Error {
    net_error(e)
}

pub fn attachment(
    networks: &Networks,
    name: &str,
    endpoint_config: &Value,
) -> Result<NetworkAttachment> {
    // Not a 404: the docker CLI takes any 404 from create for a missing image and
    // would try to pull it.
    let network = networks.get(name).map_err(|e| match e {
        berth_net::Error::NotFound(_) => Error::InvalidArgument(e.to_string()),
        e => net_error(e),
    })?;
    let ipv4 = endpoint_config["IPAMConfig"]["IPv4Address"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if !ipv4.is_empty() {
        let ip: Ipv4Addr = ipv4
            .parse()
            .map_err(|_| Error::InvalidArgument(format!("invalid IPv4 address: {ipv4}")))?;
        if network.name == "bridge" {
            return Err(Error::InvalidArgument(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        let in_range = network
            .ip_range
            .or(network.subnet)
            .is_some_and(|r| r.contains(ip));
        if !in_range {
            return Err(Error::InvalidArgument(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
    }
    let aliases: Vec<String> = endpoint_config["Aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    if !aliases.is_empty() && network.name == "bridge" {
        return Err(Error::InvalidArgument(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    Ok(NetworkAttachment {
        network_id: network.id,
        network_name: network.name,
        aliases,
        ipv4_address: ipv4,
        mac_address: endpoint_config["MacAddress"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    })
}

/// The networks a new container joins: its `NetworkMode` network first, then any
/// other `EndpointsConfig` entries. Unknown networks are refused here, at create.
pub fn plan(
    networks: &Networks,
    host_config: &Value,
    networking_config: &Value,
    config: &Value,
) -> Result<Vec<NetworkAttachment>> {
    let mode = host_config["NetworkMode"].as_str().unwrap_or("bridge");
    // The CLI names the default network `default` in both places.
    let endpoints: Map<String, Value> = networking_config["EndpointsConfig"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            if k == "default" {
                ("bridge".to_string(), v)
            } else {
                (k, v)
            }
        })
        .collect();
    if let Some(other) = mode.strip_prefix("container:") {
        if other.is_empty() {
            return Err(Error::InvalidArgument(
                "invalid network mode: container: needs a container".into(),
            ));
        }
        return Ok(Vec::new());
    }
    if matches!(mode, "host" | "none") {
        if endpoints.keys().any(|k| k != mode) {
            return Err(Error::InvalidArgument(format!(
                "container cannot be connected to multiple networks with one of the networks in private ({mode}) mode"
            )));
        }
        return Ok(Vec::new());
    }
    let primary = if mode == "default" { "bridge" } else { mode };
    let mut first_config = endpoints.get(primary).cloned().unwrap_or(json!({}));
    // `--mac-address` arrives in Config on older API versions.
    if first_config["MacAddress"].as_str().unwrap_or("").is_empty() {
        if let Some(mac) = config["MacAddress"].as_str().filter(|m| !m.is_empty()) {
            first_config["MacAddress"] = json!(mac);
        }
    }
    let mut planned = vec![attachment(networks, primary, &first_config)?];
    for (name, endpoint_config) in &endpoints {
        if name == primary {
            continue;
        }
        let a = attachment(networks, name, endpoint_config)?;
        if planned.iter().any(|p| p.network_id == a.network_id) {
            continue;
        }
        planned.push(a);
    }
    Ok(planned)
}

pub fn endpoint_request(a: &NetworkAttachment) -> Result<EndpointRequest> {
    Ok(EndpointRequest {
        aliases: a.aliases.clone(),
        ipv4: if a.ipv4_address.is_empty() {
            None
        } else {
            Some(a.ipv4_address.parse().map_err(|_| {
                Error::InvalidArgument(format!("invalid IPv4 address: {}", a.ipv4_address))
            })?)
        },
        mac: Some(a.mac_address.clone()).filter(|m| !m.is_empty()),
    })
}

fn split_port(key: &str) -> Option<(u16, String)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let port: u16 = port.parse().ok()?;
    Some((port, proto.to_ascii_lowercase()))
}

/// `PortBindings`, plus every `ExposedPorts` entry when `PublishAllPorts` (`-P`).
pub fn port_requests(record: &ContainerRecord) -> Result<Vec<PortRequest>> {
    let mut requests = Vec::new();
    let bindings = record.host_config["PortBindings"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (key, list) in &bindings {
        let (container_port, proto) = split_port(key).ok_or_else(|| {
            Error::InvalidArgument(format!("invalid port specification: \"{key}\""))
        })?;
        let entries: Vec<&Value> = list
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        if entries.is_empty() {
            requests.push(PortRequest {
                container_port,
                proto: proto.clone(),
                host_ip: String::new(),
                host_port: String::new(),
            });
        }
        for entry in entries {
            requests.push(PortRequest {
                container_port,
                proto: proto.clone(),
                host_ip: entry["HostIp"].as_str().unwrap_or("").to_string(),
                host_port: entry["HostPort"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    if record.host_bool("PublishAllPorts") {
        if let Some(exposed) = record.config["ExposedPorts"].as_object() {
            for key in exposed.keys() {
                if bindings.contains_key(key) {
                    continue;
                }
                if let Some((container_port, proto)) = split_port(key) {
                    requests.push(PortRequest {
                        container_port,
                        proto,
                        host_ip: String::new(),
                        host_port: String::new(),
                    });
                }
            }
        }
    }
    Ok(requests)
}

/// `NetworkSettings.Ports`: every exposed or published port; published ones with
/// their host bindings, others `null`.
pub fn ports_json(record: &ContainerRecord, state: &ContainerState) -> Value {
    let mut ports: BTreeMap<String, Value> = BTreeMap::new();
    if !state.is_running() {
        return json!({});
    }
    if let Some(exposed) = record.config["ExposedPorts"].as_object() {
        for key in exposed.keys() {
            let key = if key.contains('/') {
                key.clone()
            } else {
                format!("{key}/tcp")
            };
            ports.insert(key, Value::Null);
        }
    }
    for p in &state.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let entry = ports.entry(key).or_insert(Value::Null);
        if entry.is_null() {
            *entry = json!([]);
        }
        if let Some(list) = entry.as_array_mut() {
            list.push(
                json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}),
            );
        }
    }
    Value::Object(ports.into_iter().collect::<Map<String, Value>>())
}

/// The `Ports` list of `GET /containers/json`.
pub fn ports_summary(record: &ContainerRecord, state: &ContainerState) -> Value {
    let mut out = Vec::new();
    let published: Vec<&PublishedPort> = if state.is_running() {
        state.ports.iter().collect()
    } else {
        Vec::new()
    };
    for p in &published {
        out.push(json!({"IP": p.host_ip.to_string(), "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto}));
    }
    if let Some(exposed) = record.config["ExposedPorts"].as_object() {
        for key in exposed.keys() {
            if let Some((port, proto)) = split_port(key) {
                if !published
                    .iter()
                    .any(|p| p.container_port == port && p.proto == proto)
                {
                    out.push(json!({"PrivatePort": port, "Type": proto}));
                }
            }
        }
    }
    Value::Array(out)
}

/// One entry of `NetworkSettings.Networks`.
pub fn endpoint_json(
    record: &ContainerRecord,
    attachment: &NetworkAttachment,
    endpoint: Option<&Endpoint>,
) -> Value {
    let ipam = if attachment.ipv4_address.is_empty() {
        Value::Null
    } else {
        json!({"IPv4Address": attachment.ipv4_address})
    };
    let mut dns_names = vec![record.name.clone(), record.id[..12].to_string()];
    dns_names.extend(attachment.aliases.iter().cloned());
    let user_defined = attachment.network_name != "bridge";
    json!({
        "IPAMConfig": ipam,
        "Links": null,
        "Aliases": if attachment.aliases.is_empty() { Value::Null } else { json!(attachment.aliases) },
        "MacAddress": endpoint.map(|e| e.mac.clone()).unwrap_or_default(),
        "DriverOpts": null,
        "NetworkID": attachment.network_id,
        "EndpointID": endpoint.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        "Gateway": endpoint.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "IPAddress": endpoint.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": endpoint.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": if user_defined { json!(dns_names) } else { Value::Null },
    })
}

/// `/etc/hosts` lines for the container's own addresses: its hostname, name and
/// aliases on each network.
pub fn hosts_lines(record: &ContainerRecord, endpoints: &[Endpoint]) -> Vec<String> {
    let hostname = record.config_str("Hostname");
    endpoints
        .iter()
        .map(|e| {
            let mut names = vec![hostname.to_string()];
            if e.network_name != "bridge" {
                if record.name != hostname {
                    names.push(record.name.clone());
                }
                for a in &e.aliases {
                    if !names.contains(a) {
                        names.push(a.clone());
                    }
                }
            }
            format!("{}\t{}", e.ip, names.join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(host: Value, config: Value) -> ContainerRecord {
        ContainerRecord {
            id: "0123456789abcdef0123456789abcdef".into(),
            name: "web".into(),
            created: String::new(),
            path: "sh".into(),
            args: vec![],
            config,
            host_config: host,
            image: String::new(),
            image_name: String::new(),
            restart_count: 0,
            mounts: vec![],
            networks: vec![],
        }
    }

    #[test]
    fn port_bindings_and_publish_all() {
        let r = record(
            json!({"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": [{"HostIp": "", "HostPort": ""}]}, "PublishAllPorts": true}),
            json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "443/tcp": {}}}),
        );
        let reqs = port_requests(&r).unwrap();
        assert_eq!(reqs.len(), 3);
        assert!(reqs
            .iter()
            .any(|p| p.container_port == 80 && p.host_port == "8080" && p.host_ip == "127.0.0.1"));
        assert!(reqs
            .iter()
            .any(|p| p.container_port == 53 && p.proto == "udp" && p.host_port.is_empty()));
        assert!(reqs
            .iter()
            .any(|p| p.container_port == 443 && p.host_port.is_empty()));
    }

    #[test]
    fn ports_of_a_running_container() {
        let r = record(
            json!({}),
            json!({"ExposedPorts": {"80/tcp": {}, "81/tcp": {}}}),
        );
        let state = ContainerState {
            status: crate::record::Status::Running,
            ports: vec![PublishedPort {
                container_port: 80,
                proto: "tcp".into(),
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 8080,
            }],
            ..Default::default()
        };
        assert_eq!(
            ports_json(&r, &state),
            json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "81/tcp": null})
        );
        let summary = ports_summary(&r, &state);
        assert_eq!(summary.as_array().unwrap().len(), 2);
    }
}
