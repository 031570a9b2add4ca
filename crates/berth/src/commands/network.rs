//! `network` commands: create, ls, inspect, connect, disconnect, rm, prune, with
//! docker's flags, request bodies, output, error wording and exit statuses (its
//! cli/command/network).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::Result;
use chrono::DateTime;
use serde_json::{json, Map, Value};

use super::common::{
    fail, flag_error, natural_cmp, parse_filters, parse_labels, parse_opts, str_of,
    uses_label_method, FlagError, InspectFormat,
};
use crate::cli::{
    NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkInspectArgs,
    NetworkLsArgs, NetworkRmArgs,
};
use crate::client::{filter_args_json, path_segment, with_query, Client};
use crate::output::{print_rows, short_id};

/// docker's `defaultNetworkTableFormat`.
const LS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
/// docker's `DefaultQuietFormat`.
const LS_QUIET: &str = "{{.ID}}";

/// docker's header names for `network ls` fields (`IPv4` would otherwise become
/// `I PV4`).
const NETWORK_HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// What `network prune` asks before it goes on.

/// Why a command's flags make no request.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum ArgsError {
    /// A value pflag itself refuses while parsing (exit status 125).
    #[error("invalid argument \"{}\" for \"{}\" flag: {}", .0.value, .0.flag, .0.message)]
    Flag(FlagError),
    /// Addresses that parse but do not fit together (exit status 1).
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// A `--driver-opt` without `key=` (exit status 1).
    #[error("invalid key/value pair format in driver options")]
    DriverOpt,
}

impl From<FlagError> for ArgsError {
    fn from(e: FlagError) -> Self {
        ArgsError::Flag(e)
    }
}

/// Ends `berth <command>` for `error` with docker's wording and status.
fn args_error(command: &str, error: ArgsError) -> anyhow::Error {
    match error {
        ArgsError::Flag(flag) => flag_error(command, &flag),
        other => fail(1, other),
    }
}

// ---------------------------------------------------------------------------
// Addresses, as Go's net package reads and compares them.

/// `s` as Go's `net.ParseCIDR` reads it: an IPv4 or IPv6 address and a decimal
/// prefix length no longer than the address. The address is kept as written (the
/// host bits are not cleared).
fn parse_cidr(s: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = s.split_once('/')?;
    let ip: IpAddr = addr.parse().ok()?;
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u32 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

/// Go's view of a prefix: over an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) it is
/// an IPv4 prefix, shorter by the 96 bits of the mapping.
fn canonical_prefix((ip, bits): (IpAddr, u32)) -> (IpAddr, u32) {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), bits.saturating_sub(96)),
            None => (ip, bits),
        },
        IpAddr::V4(_) => (ip, bits),
    }
}

/// `ip` with all but its first `bits` bits cleared.
fn masked(ip: IpAddr, bits: u32) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - bits.min(32)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - bits.min(128)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// Go's `IPNet.Contains`: `ip` is of the prefix's family and shares its first bits.
fn prefix_contains(prefix: (IpAddr, u32), ip: IpAddr) -> bool {
    let (net, bits) = canonical_prefix(prefix);
    let ip = ip.to_canonical();
    net.is_ipv4() == ip.is_ipv4() && masked(net, bits) == masked(ip, bits)
}

/// One `--gateway`/`--link-local-ip` value as pflag's `ipSlice` reads it, written as
/// Go prints a `net.IP`.
fn parse_ip_slice_item(flag: &'static str, value: &str) -> Result<String, FlagError> {
    value
        .trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical().to_string())
        .map_err(|_| FlagError {
            flag,
            value: value.to_string(),
            message: format!("invalid string being converted to IP address: {value}"),
        })
}

/// One `--ip-range` value as pflag's `ipNetSlice` reads it, written as Go prints the
/// `net.IPNet` (the network address: `10.1.5.7/24` is `10.1.5.0/24`).
fn parse_ip_net_slice_item(flag: &'static str, value: &str) -> Result<String, FlagError> {
    let (ip, bits) = parse_cidr(value.trim())
        .map(canonical_prefix)
        .ok_or_else(|| FlagError {
            flag,
            value: value.to_string(),
            message: format!("invalid string being converted to CIDR: {value}"),
        })?;
    Ok(format!("{}/{bits}", masked(ip, bits)))
}

/// One `--ip`/`--ip6` value as pflag's `ip` flag reads it, written as Go prints it.
fn parse_ip_flag(flag: &'static str, value: &str) -> Result<String, FlagError> {
    value
        .trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical().to_string())
        .map_err(|_| FlagError {
            flag,
            value: value.to_string(),
            message: format!("failed to parse IP: {value:?}"),
        })
}

// ---------------------------------------------------------------------------
// network create: the IPAM configuration and the request body.

/// Why `--subnet`, `--ip-range`, `--gateway` and `--aux-address` do not fit together,
/// in the words of docker's `createIPAMConfig`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum IpamError {
    #[error("every ip-range or gateway must have a corresponding subnet")]
    Unpaired,
    #[error("multiple overlapping subnet configuration is not supported")]
    Overlap,
    #[error("invalid subnet: invalid CIDR address: {0}")]
    InvalidSubnet(String),
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    #[error(
        "cannot configure multiple ranges ({range}, {existing}) on the same subnet ({subnet})"
    )]
    MultipleRanges {
        range: String,
        existing: String,
        subnet: String,
    },
    #[error("no matching subnet for range {0}")]
    NoSubnetForRange(String),
    #[error(
        "cannot configure multiple gateways ({gateway}, {existing}) for the same subnet ({subnet})"
    )]
    MultipleGateways {
        gateway: String,
        existing: String,
        subnet: String,
    },
    #[error("no matching subnet for gateway {0}")]
    NoSubnetForGateway(String),
    #[error("no matching subnet for aux-address {0}")]
    NoSubnetForAux(String),
}

/// docker's `subnetMatches`: whether the address of `data` (an address, or the
/// address part of a CIDR) lies in `subnet`. An unparsable plain address matches
/// nothing, as Go's nil `net.IP` does.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, IpamError> {
    let prefix = parse_cidr(subnet).ok_or_else(|| IpamError::InvalidSubnet(subnet.into()))?;
    let ip = if data.contains('/') {
        parse_cidr(data)
            .ok_or_else(|| IpamError::InvalidCidr(data.into()))?
            .0
    } else {
        match data.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return Ok(false),
        }
    };
    Ok(prefix_contains(prefix, ip))
}

/// One entry of the request's `IPAM.Config`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct IpamConfig {
    subnet: String,
    ip_range: String,
    gateway: String,
    aux_addresses: Map<String, Value>,
}

impl IpamConfig {
    /// The entry as the API takes it: empty fields are left out (`omitempty`).
    fn to_json(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("Subnet".into(), json!(self.subnet));
        if !self.ip_range.is_empty() {
            entry.insert("IPRange".into(), json!(self.ip_range));
        }
        if !self.gateway.is_empty() {
            entry.insert("Gateway".into(), json!(self.gateway));
        }
        if !self.aux_addresses.is_empty() {
            entry.insert(
                "AuxiliaryAddresses".into(),
                Value::Object(self.aux_addresses.clone()),
            );
        }
        Value::Object(entry)
    }
}

/// docker's `createIPAMConfig`: one entry per `--subnet`, in the order given, each
/// with the `--ip-range`, `--gateway` and `--aux-address` values that fall inside
/// it. Every range and gateway needs a subnet of its own, and subnets may not
/// overlap. `aux` holds `name=address` pairs in the order given (the last one for a
/// name wins, as in docker's map).
fn ipam_configs(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &Map<String, Value>,
) -> Result<Vec<IpamConfig>, IpamError> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err(IpamError::Unpaired);
    }
    let mut configs: Vec<IpamConfig> = Vec::with_capacity(subnets.len());
    for subnet in subnets {
        for earlier in &configs {
            if subnet_matches(subnet, &earlier.subnet)? || subnet_matches(&earlier.subnet, subnet)?
            {
                return Err(IpamError::Overlap);
            }
        }
        configs.push(IpamConfig {
            subnet: subnet.clone(),
            ..IpamConfig::default()
        });
    }
    for range in ranges {
        let mut matched = false;
        for config in &mut configs {
            if !subnet_matches(&config.subnet, range)? {
                continue;
            }
            if !config.ip_range.is_empty() {
                return Err(IpamError::MultipleRanges {
                    range: range.clone(),
                    existing: config.ip_range.clone(),
                    subnet: config.subnet.clone(),
                });
            }
            config.ip_range = range.clone();
            matched = true;
        }
        if !matched {
            return Err(IpamError::NoSubnetForRange(range.clone()));
        }
    }
    for gateway in gateways {
        let mut matched = false;
        for config in &mut configs {
            if !subnet_matches(&config.subnet, gateway)? {
                continue;
            }
            if !config.gateway.is_empty() {
                return Err(IpamError::MultipleGateways {
                    gateway: gateway.clone(),
                    existing: config.gateway.clone(),
                    subnet: config.subnet.clone(),
                });
            }
            config.gateway = gateway.clone();
            matched = true;
        }
        if !matched {
            return Err(IpamError::NoSubnetForGateway(gateway.clone()));
        }
    }
    for (name, address) in aux {
        let address = str_of(address);
        let mut matched = false;
        for config in &mut configs {
            if subnet_matches(&config.subnet, address)? {
                config
                    .aux_addresses
                    .insert(name.clone(), Value::String(address.to_string()));
                matched = true;
            }
        }
        if !matched {
            return Err(IpamError::NoSubnetForAux(address.to_string()));
        }
    }
    Ok(configs)
}

/// The body of `POST /networks/create` for `args`, as docker's CLI sends it.
///
/// `EnableIPv4` is sent only when `--ipv4` is given, as docker does, so the daemon's
/// default applies; `EnableIPv6` is always sent (false unless `--ipv6`).
fn create_body(args: &NetworkCreateArgs) -> Result<Value, ArgsError> {
    let gateways = args
        .gateway
        .iter()
        .filter(|g| !g.is_empty())
        .map(|g| parse_ip_slice_item("--gateway", g))
        .collect::<Result<Vec<_>, _>>()?;
    let ranges = args
        .ip_range
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| parse_ip_net_slice_item("--ip-range", r))
        .collect::<Result<Vec<_>, _>>()?;
    let subnets: Vec<String> = args
        .subnet
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect();
    let labels = parse_labels(&args.label)?;
    let configs = ipam_configs(&subnets, &ranges, &gateways, &parse_opts(&args.aux_address))?;

    let mut body = Map::new();
    body.insert("Name".into(), json!(args.name));
    body.insert("Driver".into(), json!(args.driver));
    body.insert("Scope".into(), json!(args.scope.as_deref().unwrap_or("")));
    if let Some(ipv4) = args.ipv4 {
        body.insert("EnableIPv4".into(), json!(ipv4));
    }
    body.insert("EnableIPv6".into(), json!(args.ipv6.unwrap_or(false)));
    body.insert(
        "IPAM".into(),
        json!({
            "Driver": args.ipam_driver,
            "Config": configs.iter().map(IpamConfig::to_json).collect::<Vec<_>>(),
            "Options": parse_opts(&args.ipam_opt),
        }),
    );
    body.insert("Internal".into(), json!(args.internal));
    body.insert("Attachable".into(), json!(args.attachable));
    body.insert("Ingress".into(), json!(args.ingress));
    body.insert("ConfigOnly".into(), json!(args.config_only));
    body.insert(
        "ConfigFrom".into(),
        match args.config_from.as_deref().filter(|n| !n.is_empty()) {
            Some(network) => json!({ "Network": network }),
            None => Value::Null,
        },
    );
    body.insert("Options".into(), Value::Object(parse_opts(&args.opt)));
    body.insert("Labels".into(), Value::Object(labels));
    Ok(Value::Object(body))
}

pub async fn create(client: &Client, args: NetworkCreateArgs) -> Result<()> {
    let body = create_body(&args).map_err(|e| args_error("network create", e))?;
    let response = client.post_json("/networks/create", Some(&body)).await?;
    println!("{}", str_of(&response["Id"]));
    Ok(())
}

// ---------------------------------------------------------------------------
// network ls

/// Go's `time.Time.String()` for a time the daemon sent in RFC 3339, which docker's
/// `CreatedAt` prints: `2006-01-02 15:04:05.999999999 -0700 MST`, where a UTC time's
/// zone reads `UTC` and another offset is repeated. A missing or unreadable time is
/// Go's zero time.
fn go_time_string(raw: &str) -> String {
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => crate::output::go_time_string(t),
        Err(_) => "0001-01-01 00:00:00 +0000 UTC".into(),
    }
}

/// One `network ls` row: the fields docker's network context offers, keys in the
/// order Go's JSON encoder prints them. `label_objects` keeps `Labels` a map, for
/// formats that call `.Label "k"`.
fn network_row(network: &Value, trunc: bool, label_objects: bool) -> Map<String, Value> {
    let id = str_of(&network["Id"]);
    let label_map = network["Labels"].as_object().cloned().unwrap_or_default();
    let labels = if label_objects {
        Value::Object(label_map)
    } else {
        let mut pairs: Vec<String> = label_map
            .iter()
            .map(|(k, v)| format!("{k}={}", str_of(v)))
            .collect();
        pairs.sort();
        json!(pairs.join(","))
    };
    let flag = |key: &str| json!(network[key].as_bool().unwrap_or(false).to_string());
    let mut row = Map::new();
    row.insert(
        "CreatedAt".into(),
        json!(go_time_string(str_of(&network["Created"]))),
    );
    row.insert("Driver".into(), json!(str_of(&network["Driver"])));
    row.insert(
        "ID".into(),
        json!(if trunc { short_id(id) } else { id.to_string() }),
    );
    row.insert("IPv4".into(), flag("EnableIPv4"));
    row.insert("IPv6".into(), flag("EnableIPv6"));
    row.insert("Internal".into(), flag("Internal"));
    row.insert("Labels".into(), labels);
    row.insert("Name".into(), json!(str_of(&network["Name"])));
    row.insert("Scope".into(), json!(str_of(&network["Scope"])));
    row
}

/// The template `network ls` prints with: docker's `newFormat`.
fn ls_format(format: Option<&str>, quiet: bool) -> &str {
    match format.filter(|f| !f.is_empty()) {
        None | Some("table") if quiet => LS_QUIET,
        None | Some("table") => LS_TABLE,
        Some("raw") if quiet => "network_id: {{.ID}}",
        Some("raw") => {
            "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
        }
        Some(f) => f,
    }
}

pub async fn list(client: &Client, args: NetworkLsArgs) -> Result<()> {
    let filters =
        parse_filters(&args.filter, "-f, --filter").map_err(|e| flag_error("network ls", &e))?;
    let filters = filter_args_json(&filters).map_err(|e| fail(1, e))?;
    let response = client
        .get_json(&with_query("/networks", &[("filters", filters)]))
        .await?;
    let mut networks: Vec<&Value> = response.as_array().into_iter().flatten().collect();
    networks.sort_by(|a, b| natural_cmp(str_of(&a["Name"]), str_of(&b["Name"])));
    let format = ls_format(args.format.as_deref(), args.quiet);
    let label_objects = uses_label_method(format);
    let rows: Vec<Value> = networks
        .iter()
        .map(|n| Value::Object(network_row(n, !args.no_trunc, label_objects)))
        .collect();
    print_rows(Some(format), LS_TABLE, NETWORK_HEADERS, &rows)
}

// ---------------------------------------------------------------------------
// network inspect, connect, disconnect, rm, prune

pub async fn inspect(client: &Client, args: NetworkInspectArgs) -> Result<()> {
    // A bad template fails before any request.
    let format = InspectFormat::parse(args.format.as_deref())?;
    let verbose = if args.verbose { "true" } else { "" };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        let path = with_query(
            &format!("/networks/{}", path_segment(name)),
            &[("verbose", verbose.to_string())],
        );
        match client.get_json(&path).await {
            Ok(doc) => found.push(doc),
            Err(e) => errors.push(e.to_string()),
        }
    }
    format.finish(found, errors)
}

/// docker's `ValidateLink`: `name` or `name:alias`.
fn validate_link(value: &str) -> Result<(), FlagError> {
    let message = if value.is_empty() {
        "empty string specified for links".to_string()
    } else if value.splitn(3, ':').count() > 2 {
        format!("bad format for links: {value}")
    } else {
        return Ok(());
    };
    Err(FlagError {
        flag: "--link",
        value: value.to_string(),
        message,
    })
}

/// pflag's `int` flag: Go's `strconv.ParseInt`, reworded on failure.
fn parse_int_flag(flag: &'static str, value: &str) -> Result<i64, FlagError> {
    value.parse::<i64>().map_err(|_| {
        let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
        let reason = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        FlagError {
            flag,
            value: value.to_string(),
            message: format!("strconv.ParseInt: parsing {value:?}: {reason}"),
        }
    })
}

/// docker's `convertDriverOpt`: `key=value` pairs, both sides trimmed; a pair without
/// `=` or with an empty key is refused.
fn driver_opts(values: &[String]) -> Result<Map<String, Value>, ArgsError> {
    let mut map = Map::new();
    for value in values {
        let Some((key, val)) = value.split_once('=') else {
            return Err(ArgsError::DriverOpt);
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ArgsError::DriverOpt);
        }
        map.insert(key.to_string(), json!(val.trim()));
    }
    Ok(map)
}

/// The body of `POST /networks/{id}/connect` for `args`, as docker's CLI sends it:
/// the endpoint's addresses (only those given), links, aliases, driver options and
/// gateway priority.
fn connect_body(args: &NetworkConnectArgs) -> Result<Value, ArgsError> {
    let mut ipam = Map::new();
    if let Some(ip) = args.ip.as_deref().filter(|ip| !ip.is_empty()) {
        ipam.insert("IPv4Address".into(), json!(parse_ip_flag("--ip", ip)?));
    }
    if let Some(ip) = args.ip6.as_deref().filter(|ip| !ip.is_empty()) {
        ipam.insert("IPv6Address".into(), json!(parse_ip_flag("--ip6", ip)?));
    }
    let link_local = args
        .link_local_ip
        .iter()
        .filter(|ip| !ip.is_empty())
        .map(|ip| parse_ip_slice_item("--link-local-ip", ip))
        .collect::<Result<Vec<_>, _>>()?;
    if !link_local.is_empty() {
        ipam.insert("LinkLocalIPs".into(), json!(link_local));
    }
    for link in &args.link {
        validate_link(link)?;
    }
    let gw_priority = match args.gw_priority.as_deref() {
        Some(value) => parse_int_flag("--gw-priority", value)?,
        None => 0,
    };
    let aliases: Vec<&String> = args.alias.iter().filter(|a| !a.is_empty()).collect();
    Ok(json!({
        "Container": args.container,
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Links": args.link,
            "Aliases": aliases,
            "DriverOpts": driver_opts(&args.driver_opt)?,
            "GwPriority": gw_priority,
        },
    }))
}

pub async fn connect(client: &Client, args: NetworkConnectArgs) -> Result<()> {
    let body = connect_body(&args).map_err(|e| args_error("network connect", e))?;
    let path = format!("/networks/{}/connect", path_segment(&args.network));
    client.post_json(&path, Some(&body)).await?;
    Ok(())
}

pub async fn disconnect(client: &Client, args: NetworkDisconnectArgs) -> Result<()> {
    let body = json!({ "Container": args.container, "Force": args.force });
    let path = format!("/networks/{}/disconnect", path_segment(&args.network));
    client.post_json(&path, Some(&body)).await?;
    Ok(())
}

/// Removes each network in turn, printing its name, and reports each failure as it
/// comes; like docker, a failure ends the command with status 1 and a last
/// `exit status 1` line. With `--force`, a network that does not exist is no failure.
pub async fn remove(client: &Client, args: NetworkRmArgs) -> Result<()> {
    let mut failed = false;
    for name in &args.networks {
        match client
            .delete_json(&format!("/networks/{}", path_segment(name)))
            .await
        {
            Ok(_) => println!("{name}"),
            Err(e) if args.force && e.is_not_found() => {}
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(fail(1, "exit status 1"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command, NetworkCommand};

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn create_args(args: &[&str]) -> NetworkCreateArgs {
        let argv = ["berth", "network", "create"].iter().chain(args);
        match Cli::try_parse_from(argv).map(|cli| cli.command) {
            Ok(Some(Command::Network(NetworkCommand::Create(create)))) => create,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn connect_args(args: &[&str]) -> NetworkConnectArgs {
        let argv = ["berth", "network", "connect"].iter().chain(args);
        match Cli::try_parse_from(argv).map(|cli| cli.command) {
            Ok(Some(Command::Network(NetworkCommand::Connect(connect)))) => connect,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn cidrs_parse_like_go() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_cidr("10.1.2.3/16"), Some((v4("10.1.2.3"), 16)));
        assert_eq!(parse_cidr("fd00::1/64"), Some((v4("fd00::1"), 64)));
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert_eq!(parse_cidr("10.0.0.0/+8"), None);
        assert_eq!(parse_cidr("10.0.0.0"), None);
        assert_eq!(parse_cidr("10.0.0.0/"), None);
        assert_eq!(parse_cidr("010.0.0.0/8"), None);
        assert!(prefix_contains((v4("10.1.0.0"), 16), v4("10.1.255.254")));
        assert!(!prefix_contains((v4("10.1.0.0"), 16), v4("10.2.0.1")));
        assert!(!prefix_contains((v4("10.1.0.0"), 16), v4("fd00::1")));
        assert!(prefix_contains((v4("0.0.0.0"), 0), v4("8.8.8.8")));
        assert!(prefix_contains((v4("10.1.0.0"), 16), v4("::ffff:10.1.0.9")));
        assert!(prefix_contains(
            (v4("::ffff:10.0.0.0"), 104),
            v4("10.9.9.9")
        ));
        assert!(prefix_contains((v4("fd00:1::"), 32), v4("fd00:1:0:9::1")));
        assert!(!prefix_contains((v4("fd00:1::"), 32), v4("fd00:2::1")));
    }

    #[test]
    fn ipam_pairs_ranges_and_gateways_with_their_subnets() {
        let args = create_args(&[
            "--subnet",
            "10.1.0.0/16",
            "--subnet=fd00:1::/64",
            "--gateway",
            "fd00:1::1,10.1.5.254",
            "--ip-range",
            "10.1.5.7/24",
            "--aux-address",
            "router=10.1.0.5",
            "net1",
        ]);
        let body = create_body(&args).unwrap();
        assert_eq!(
            body["IPAM"],
            json!({
                "Driver": "default",
                "Config": [
                    {
                        "Subnet": "10.1.0.0/16",
                        "IPRange": "10.1.5.0/24",
                        "Gateway": "10.1.5.254",
                        "AuxiliaryAddresses": {"router": "10.1.0.5"},
                    },
                    {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"},
                ],
                "Options": {},
            })
        );
    }

    #[test]
    fn ipam_errors_like_docker() {
        let err = |args: &[&str]| {
            let mut all = args.to_vec();
            all.push("n");
            create_body(&create_args(&all)).unwrap_err()
        };
        // A gateway or range needs a subnet: docker refuses before any request.
        assert_eq!(err(&["--gateway", "10.0.0.1"]), IpamError::Unpaired.into());
        assert_eq!(
            err(&["--ip-range", "10.0.0.0/24"]),
            IpamError::Unpaired.into()
        );
        assert_eq!(
            IpamError::Unpaired.to_string(),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            err(&["--subnet", "10.0.0.0/16", "--gateway", "10.1.0.1"]),
            IpamError::NoSubnetForGateway("10.1.0.1".into()).into()
        );
        assert_eq!(
            err(&["--subnet", "10.0.0.0/8,10.1.0.0/16"]),
            IpamError::Overlap.into()
        );
        assert_eq!(
            err(&[
                "--subnet",
                "10.0.0.0/16,10.1.0.0/16",
                "--gateway",
                "10.0.0.1,10.0.0.2"
            ]),
            IpamError::MultipleGateways {
                gateway: "10.0.0.2".into(),
                existing: "10.0.0.1".into(),
                subnet: "10.0.0.0/16".into(),
            }
            .into()
        );
        assert_eq!(
            err(&[
                "--subnet",
                "10.0.0.0/16,10.1.0.0/16",
                "--ip-range",
                "10.0.1.0/24,10.0.2.0/24"
            ])
            .to_string(),
            "cannot configure multiple ranges (10.0.2.0/24, 10.0.1.0/24) on the same subnet (10.0.0.0/16)"
        );
        assert_eq!(
            err(&["--subnet", "10.0.0.0/16", "--ip-range", "10.9.0.0/24"]).to_string(),
            "no matching subnet for range 10.9.0.0/24"
        );
        assert_eq!(
            err(&["--subnet", "nope", "--gateway", "10.0.0.1"]).to_string(),
            "invalid subnet: invalid CIDR address: nope"
        );
        assert_eq!(
            err(&["--subnet", "10.0.0.0/16", "--aux-address", "x=10.2.0.1"]).to_string(),
            "no matching subnet for aux-address 10.2.0.1"
        );
        // Malformed addresses are refused as pflag refuses them (status 125).
        assert_eq!(
            err(&["--subnet", "10.0.0.0/16", "--gateway", "10.0.0.x"]),
            ArgsError::Flag(FlagError {
                flag: "--gateway",
                value: "10.0.0.x".into(),
                message: "invalid string being converted to IP address: 10.0.0.x".into(),
            })
        );
        assert_eq!(
            err(&["--ip-range", "10.0.0.0"]).to_string(),
            "invalid argument \"10.0.0.0\" for \"--ip-range\" flag: \
             invalid string being converted to CIDR: 10.0.0.0"
        );
        assert!(matches!(err(&["--label", "=x"]), ArgsError::Flag(_)));
    }

    #[test]
    fn create_body_like_docker() {
        let body = create_body(&create_args(&["plain"])).unwrap();
        assert_eq!(
            body,
            json!({
                "Name": "plain",
                "Driver": "bridge",
                "Scope": "",
                "EnableIPv6": false,
                "IPAM": {"Driver": "default", "Config": [], "Options": {}},
                "Internal": false,
                "Attachable": false,
                "Ingress": false,
                "ConfigOnly": false,
                "ConfigFrom": null,
                "Options": {},
                "Labels": {},
            })
        );
        let body = create_body(&create_args(&[
            "-d",
            "bridge",
            "--internal",
            "--attachable",
            "--ipv6",
            "--ipv4=false",
            "--label",
            "a=b",
            "--label",
            "c",
            "-o",
            "com.docker.network.bridge.name=br-x",
            "--ipam-opt",
            "k=v",
            "--subnet",
            "172.28.0.0/16",
            "--gateway",
            "172.28.5.254",
            "--config-from",
            "base",
            "x",
        ]))
        .unwrap();
        assert_eq!(body["EnableIPv4"], false);
        assert_eq!(body["EnableIPv6"], true);
        assert_eq!(body["Internal"], true);
        assert_eq!(body["Attachable"], true);
        assert_eq!(body["Labels"], json!({"a": "b", "c": ""}));
        assert_eq!(
            body["Options"],
            json!({"com.docker.network.bridge.name": "br-x"})
        );
        assert_eq!(
            body["IPAM"],
            json!({
                "Driver": "default",
                "Config": [{"Subnet": "172.28.0.0/16", "Gateway": "172.28.5.254"}],
                "Options": {"k": "v"},
            })
        );
        assert_eq!(body["ConfigFrom"], json!({"Network": "base"}));
    }

    #[test]
    fn connect_body_like_docker() {
        let body = connect_body(&connect_args(&["net1", "web"])).unwrap();
        assert_eq!(
            body,
            json!({
                "Container": "web",
                "EndpointConfig": {
                    "IPAMConfig": {},
                    "Links": [],
                    "Aliases": [],
                    "DriverOpts": {},
                    "GwPriority": 0,
                },
            })
        );
        let body = connect_body(&connect_args(&[
            "--alias",
            "db",
            "--alias",
            "mysql",
            "--ip",
            "172.20.128.2",
            "--ip6",
            "2001:DB8::33",
            "--link",
            "other:o",
            "--driver-opt",
            "com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.log_martians=1",
            "--gw-priority",
            "-3",
            "net1",
            "web",
        ]))
        .unwrap();
        assert_eq!(
            body["EndpointConfig"],
            json!({
                "IPAMConfig": {"IPv4Address": "172.20.128.2", "IPv6Address": "2001:db8::33"},
                "Links": ["other:o"],
                "Aliases": ["db", "mysql"],
                "DriverOpts": {
                    "com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.log_martians=1"
                },
                "GwPriority": -3,
            })
        );
        let err = |args: &[&str]| connect_body(&connect_args(args)).unwrap_err().to_string();
        assert_eq!(
            err(&["--ip", "1.2.3", "n", "c"]),
            "invalid argument \"1.2.3\" for \"--ip\" flag: failed to parse IP: \"1.2.3\""
        );
        assert_eq!(
            err(&["--driver-opt", "novalue", "n", "c"]),
            "invalid key/value pair format in driver options"
        );
        assert_eq!(
            err(&["--link", "a:b:c", "n", "c"]),
            "invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c"
        );
        assert_eq!(
            err(&["--gw-priority", "high", "n", "c"]),
            "invalid argument \"high\" for \"--gw-priority\" flag: \
             strconv.ParseInt: parsing \"high\": invalid syntax"
        );
    }

    #[test]
    fn rows_like_docker() {
        let network = json!({
            "Name": "web", "Id": "7fca4eb8c647aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff66667777",
            "Created": "2021-03-09T21:41:29.798999529Z", "Scope": "local", "Driver": "bridge",
            "EnableIPv4": true, "EnableIPv6": false, "Internal": true,
            "Labels": {"z": "1", "a": "2"},
        });
        let row = network_row(&network, true, false);
        assert_eq!(
            Value::Object(row).to_string(),
            r#"{"CreatedAt":"2021-03-09 21:41:29.798999529 +0000 UTC","Driver":"bridge","ID":"7fca4eb8c647","IPv4":"true","IPv6":"false","Internal":"true","Labels":"a=2,z=1","Name":"web","Scope":"local"}"#
        );
        let row = network_row(&network, false, true);
        assert_eq!(row["ID"].as_str().map(str::len), Some(64));
        assert_eq!(row["Labels"], json!({"z": "1", "a": "2"}));
        let row = network_row(&json!({"Name": "none", "Labels": null}), true, false);
        assert_eq!(row["Labels"], "");
        assert_eq!(row["IPv6"], "false");
        assert_eq!(row["CreatedAt"], "0001-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn times_print_like_go() {
        assert_eq!(
            go_time_string("2016-10-19T04:33:30.360899459Z"),
            "2016-10-19 04:33:30.360899459 +0000 UTC"
        );
        assert_eq!(
            go_time_string("2016-10-19T04:33:30.5Z"),
            "2016-10-19 04:33:30.5 +0000 UTC"
        );
        assert_eq!(
            go_time_string("2016-10-19T04:33:30+02:00"),
            "2016-10-19 04:33:30 +0200 +0200"
        );
        assert_eq!(go_time_string(""), "0001-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn ls_formats_like_docker() {
        assert_eq!(ls_format(None, false), LS_TABLE);
        assert_eq!(ls_format(Some(""), true), LS_QUIET);
        assert_eq!(ls_format(Some("table"), true), LS_QUIET);
        assert_eq!(ls_format(Some("raw"), true), "network_id: {{.ID}}");
        assert_eq!(ls_format(Some("{{.Name}}"), true), "{{.Name}}");
        assert_eq!(ls_format(Some("json"), false), "json");
        let mut names = strings(&["net10", "bridge", "net2", "host", "none"]);
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["bridge", "host", "net2", "net10", "none"]);
    }
}
