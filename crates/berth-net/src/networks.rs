//! The set of networks: records under `<data root>/networks/<id>.json`, the addresses
//! and endpoints of running containers (in memory: rebuilt from the containers at
//! start), the bridges, the NAT rules and the resolvers of user-defined networks.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_store::fsutil;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::dns::{self, Answer, Resolver};
use crate::error::{Error, Result};
use crate::firewall;
use crate::ipam::{self, Allocator, Pool, Subnet};
use crate::link::{self, Netlink};
use crate::ports::{self, PortRequest, PublishedPort, Reservation};

pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

/// A network as berth keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub created: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub ip_range: Option<Subnet>,
    /// The Linux bridge of a bridge network.
    #[serde(default)]
    pub bridge: String,
}

impl Network {
    /// `bridge`, `host` and `none`: made by the daemon, never removed.
    pub fn is_predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    /// User-defined bridge networks have name resolution; the default bridge has not.
    pub fn has_dns(&self) -> bool {
        self.driver == "bridge" && self.name != "bridge"
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
}

/// How a container wants to be attached (`--ip`, `--network-alias`, `--mac-address`).
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    pub aliases: Vec<String>,
    pub ipv4: Option<Ipv4Addr>,
    pub mac: Option<String>,
}

/// A container's attachment to a network while it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    pub network_id: String,
    pub network_name: String,
    pub endpoint_id: String,
    /// `eth0`, `eth1`, … inside the container.
    pub ifname: String,
    /// The veth end on the host, in the network's bridge.
    pub host_veth: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// The container a request is about.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub name: String,
}

/// Daemon settings for networking (from daemon.json).
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub data_root: PathBuf,
    /// The default bridge's device (`bridge` in daemon.json).
    pub default_bridge: String,
    /// The default bridge's address (`bip`), else picked from the pools.
    pub default_subnet: Option<Subnet>,
    pub pools: Vec<Pool>,
    /// Manage iptables rules (`iptables` in daemon.json).
    pub iptables: bool,
}

struct Attached {
    member: Member,
    endpoint: Endpoint,
}

#[derive(Default)]
struct State {
    networks: BTreeMap<String, Network>,
    allocators: HashMap<String, Allocator>,
    /// network id → container id → attachment.
    endpoints: HashMap<String, BTreeMap<String, Attached>>,
    bridges: HashMap<String, u32>,
    resolvers: HashMap<String, tokio::task::JoinHandle<()>>,
    /// container id → held host ports.
    reservations: HashMap<String, Vec<Reservation>>,
}

pub struct Networks {
    dir: PathBuf,
    config: NetConfig,
    state: Arc<Mutex<State>>,
    netlink: std::sync::OnceLock<Netlink>,
    ready: OnceCell<std::result::Result<(), String>>,
    /// Serialises create and remove, which span awaits.
    changes: tokio::sync::Mutex<()>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn allocator_for(network: &Network) -> Option<Allocator> {
    let subnet = network.subnet?;
    Some(Allocator {
        subnet,
        range: network.ip_range.unwrap_or(subnet),
        gateway: network.gateway?,
        used: Default::default(),
    })
}

impl Networks {
    /// Loads the networks and makes the predefined ones on first use. Bridges, rules
    /// and resolvers are set up by [`Networks::ready`], which the daemon starts in the
    /// background and every attach waits for.
    pub fn open(config: NetConfig) -> Result<Arc<Self>> {
        let dir = config.data_root.join("networks");
        fsutil::ensure_dir(&dir)?;
        let _ = fsutil::sweep_temps(&dir);
        let mut state = State::default();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io("reading networks", e))? {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match fsutil::read_json::<Network>(&path) {
                Ok(Some(network)) => {
                    if let Some(alloc) = allocator_for(&network) {
                        state.allocators.insert(network.id.clone(), alloc);
                    }
                    state.networks.insert(network.id.clone(), network);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
            }
        }
        let networks = Arc::new(Networks {
            dir,
            config,
            state: Arc::new(Mutex::new(state)),
            netlink: std::sync::OnceLock::new(),
            ready: OnceCell::new(),
            changes: tokio::sync::Mutex::new(()),
        });
        networks.ensure_predefined()?;
        Ok(networks)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, network: &Network) -> Result<()> {
        fsutil::write_json_atomic(&self.dir.join(format!("{}.json", network.id)), network)?;
        Ok(())
    }

    fn taken_subnets(&self, state: &State) -> Vec<Subnet> {
        let mut taken: Vec<Subnet> = state.networks.values().filter_map(|n| n.subnet).collect();
        taken.extend(ipam::host_routes());
        taken
    }

    fn ensure_predefined(&self) -> Result<()> {
        let mut state = self.lock();
        let have = |state: &State, name: &str| state.networks.values().any(|n| n.name == name);
        let mut made = Vec::new();
        if !have(&state, "bridge") {
            let subnet = match self.config.default_subnet {
                Some(s) => s.network(),
                None => {
                    let taken = self.taken_subnets(&state);
                    ipam::pick_subnet(&self.config.pools, &taken).ok_or_else(|| {
                        Error::InvalidArgument(
                            "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
                        )
                    })?
                }
            };
            let gateway = match self.config.default_subnet {
                Some(s) if s.addr != s.network().addr => s.addr,
                _ => subnet.nth(1).unwrap_or(subnet.addr),
            };
            let mut options = BTreeMap::new();
            for (k, v) in [
                ("com.docker.network.bridge.default_bridge", "true"),
                ("com.docker.network.bridge.enable_icc", "true"),
                ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                (BRIDGE_NAME_OPTION, self.config.default_bridge.as_str()),
                ("com.docker.network.driver.mtu", "1500"),
            ] {
                options.insert(k.to_string(), v.to_string());
            }
            made.push(Network {
                id: fsutil::random_hex(32),
                name: "bridge".into(),
                created: now(),
                driver: "bridge".into(),
                internal: false,
                attachable: false,
                labels: BTreeMap::new(),
                options,
                subnet: Some(subnet),
                gateway: Some(gateway),
                ip_range: None,
                bridge: self.config.default_bridge.clone(),
            });
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !have(&state, name) {
                made.push(Network {
                    id: fsutil::random_hex(32),
                    name: name.into(),
                    created: now(),
                    driver: driver.into(),
                    internal: false,
                    attachable: false,
                    labels: BTreeMap::new(),
                    options: BTreeMap::new(),
                    subnet: None,
                    gateway: None,
                    ip_range: None,
                    bridge: String::new(),
                });
            }
        }
        // Written by `ready`, off the start-up path: each record costs an fsync.
        for network in made {
            if let Some(alloc) = allocator_for(&network) {
                state.allocators.insert(network.id.clone(), alloc);
            }
            state.networks.insert(network.id.clone(), network);
        }
        Ok(())
    }

    /// Writes the records [`open`](Self::open) made in memory only.
    pub fn persist_unsaved(&self) -> Result<()> {
        let networks: Vec<Network> = self.lock().networks.values().cloned().collect();
        for network in networks {
            if !self.dir.join(format!("{}.json", network.id)).exists() {
                self.save(&network)?;
            }
        }
        Ok(())
    }

    fn netlink(&self) -> Result<&Netlink> {
        if let Some(n) = self.netlink.get() {
            return Ok(n);
        }
        let made = Netlink::new()?;
        Ok(self.netlink.get_or_init(|| made))
    }

    /// Sets up every bridge network's bridge, rules and resolver, once. Safe to call
    /// from many tasks: they all wait for the one set-up.
    pub async fn ready(&self) -> Result<()> {
        let outcome = self
            .ready
            .get_or_init(|| async {
                let result: Result<()> = async {
                    self.persist_unsaved()?;
                    if self.config.iptables {
                        tokio::task::block_in_place(firewall::ensure_base)?;
                    }
                    let bridges: Vec<Network> = self
                        .lock()
                        .networks
                        .values()
                        .filter(|n| n.driver == "bridge")
                        .cloned()
                        .collect();
                    for network in bridges {
                        self.bring_up(&network, true).await?;
                    }
                    Ok(())
                }
                .await;
                result.map_err(|e| e.to_string())
            })
            .await;
        outcome
            .clone()
            .map_err(|e| Error::Firewall(format!("setting up networking: {e}")))
    }

    /// The bridge, its rules and its resolver.
    async fn bring_up(&self, network: &Network, existing_rules: bool) -> Result<()> {
        let (Some(subnet), Some(gateway)) = (network.subnet, network.gateway) else {
            return Ok(());
        };
        let index = self
            .netlink()?
            .ensure_bridge(&network.bridge, gateway, subnet.prefix)
            .await?;
        self.lock().bridges.insert(network.id.clone(), index);
        if self.config.iptables {
            let rules = firewall::network_rules(&network.bridge, subnet, network.internal);
            tokio::task::block_in_place(|| {
                if existing_rules {
                    firewall::ensure(&rules)
                } else {
                    firewall::add(&rules)
                }
            })?;
        }
        if network.has_dns() {
            self.start_resolver(network, gateway).await;
        }
        Ok(())
    }

    async fn start_resolver(&self, network: &Network, gateway: Ipv4Addr) {
        let address = SocketAddr::from((gateway, 53));
        let socket = match tokio::net::UdpSocket::bind(address).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(network = %network.name, "no name resolution: binding {address}: {e}");
                return;
            }
        };
        let resolver: Arc<dyn Resolver> = Arc::new(Names {
            state: Arc::downgrade(&self.state),
        });
        let task = tokio::spawn(dns::serve(
            socket,
            resolver,
            Arc::new(dns::host_upstreams()),
        ));
        if let Some(old) = self.lock().resolvers.insert(network.id.clone(), task) {
            old.abort();
        }
    }

    // ------------------------------------------------------------ lookups

    pub fn list(&self) -> Vec<Network> {
        self.lock().networks.values().cloned().collect()
    }

    /// Docker's lookup order: full id, exact name, then a unique id prefix.
    pub fn get(&self, name_or_id: &str) -> Result<Network> {
        let state = self.lock();
        find(&state, name_or_id).cloned()
    }

    /// Running containers on a network: container id → (name, endpoint).
    pub fn members(&self, network_id: &str) -> Vec<(Member, Endpoint)> {
        self.lock()
            .endpoints
            .get(network_id)
            .map(|m| {
                m.values()
                    .map(|a| (a.member.clone(), a.endpoint.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    // ------------------------------------------------------------ create / remove

    pub async fn create(&self, req: CreateRequest) -> Result<Network> {
        let _serial = self.changes.lock().await;
        let driver = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        if driver != "bridge" {
            return Err(Error::InvalidArgument(format!(
                "plugin \"{driver}\" not found"
            )));
        }
        if req.name.is_empty() {
            return Err(Error::InvalidArgument(
                "network name must not be empty".into(),
            ));
        }
        if !valid_name(&req.name) {
            return Err(Error::InvalidArgument(format!(
                "invalid network name \"{}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        self.ready().await?;
        let network = {
            let mut state = self.lock();
            if state.networks.values().any(|n| n.name == req.name) {
                return Err(Error::Conflict(format!(
                    "network with name {} already exists",
                    req.name
                )));
            }
            let taken = self.taken_subnets(&state);
            let subnet = match &req.subnet {
                Some(text) => {
                    let subnet: Subnet = text.parse()?;
                    if taken.iter().any(|t| t.overlaps(&subnet.network())) {
                        return Err(Error::Conflict(
                            "invalid pool request: Pool overlaps with other one on this address space".into(),
                        ));
                    }
                    subnet.network()
                }
                None => ipam::pick_subnet(&self.config.pools, &taken).ok_or_else(|| {
                    Error::InvalidArgument(
                        "all predefined address pools have been fully subnetted".into(),
                    )
                })?,
            };
            let gateway = match &req.gateway {
                Some(text) => {
                    let ip: Ipv4Addr = text.parse().map_err(|_| {
                        Error::InvalidArgument(format!("invalid gateway address: {text}"))
                    })?;
                    if !subnet.contains(ip) {
                        return Err(Error::InvalidArgument(format!(
                            "no matching subnet for gateway {ip}"
                        )));
                    }
                    ip
                }
                None => subnet.nth(1).ok_or_else(|| {
                    Error::InvalidArgument(format!("subnet {subnet} is too small"))
                })?,
            };
            let ip_range = match &req.ip_range {
                Some(text) => {
                    let range: Subnet = text.parse()?;
                    if !subnet.contains(range.addr) || range.prefix < subnet.prefix {
                        return Err(Error::InvalidArgument(format!(
                            "no matching subnet for range {text}"
                        )));
                    }
                    Some(range.network())
                }
                None => None,
            };
            let id = fsutil::random_hex(32);
            let bridge = req
                .options
                .get(BRIDGE_NAME_OPTION)
                .cloned()
                .unwrap_or_else(|| format!("br-{}", &id[..12]));
            if bridge.is_empty() || bridge.len() > 15 {
                return Err(Error::InvalidArgument(format!(
                    "invalid bridge name {bridge:?}: at most 15 characters"
                )));
            }
            if state.networks.values().any(|n| n.bridge == bridge) {
                return Err(Error::Conflict(format!(
                    "bridge name {bridge} is already used by another network"
                )));
            }
            let network = Network {
                id,
                name: req.name.clone(),
                created: now(),
                driver,
                internal: req.internal,
                attachable: req.attachable,
                labels: req.labels.clone(),
                options: req.options.clone(),
                subnet: Some(subnet),
                gateway: Some(gateway),
                ip_range,
                bridge,
            };
            self.save(&network)?;
            if let Some(alloc) = allocator_for(&network) {
                state.allocators.insert(network.id.clone(), alloc);
            }
            state.networks.insert(network.id.clone(), network.clone());
            network
        };
        if let Err(e) = self.bring_up(&network, false).await {
            let _ = self.tear_down(&network).await;
            self.forget(&network);
            return Err(e);
        }
        Ok(network)
    }

    fn forget(&self, network: &Network) {
        let mut state = self.lock();
        state.networks.remove(&network.id);
        state.allocators.remove(&network.id);
        state.bridges.remove(&network.id);
        if let Some(task) = state.resolvers.remove(&network.id) {
            task.abort();
        }
        let _ = std::fs::remove_file(self.dir.join(format!("{}.json", network.id)));
    }

    async fn tear_down(&self, network: &Network) -> Result<()> {
        if let Some(task) = self.lock().resolvers.remove(&network.id) {
            task.abort();
        }
        if let (true, Some(subnet)) = (self.config.iptables, network.subnet) {
            let rules = firewall::network_rules(&network.bridge, subnet, network.internal);
            tokio::task::block_in_place(|| firewall::remove(&rules));
        }
        self.netlink()?.delete(&network.bridge).await
    }

    pub async fn remove(&self, name_or_id: &str) -> Result<Network> {
        let _serial = self.changes.lock().await;
        let network = {
            let state = self.lock();
            let network = find(&state, name_or_id)?.clone();
            if network.is_predefined() {
                return Err(Error::Conflict(format!(
                    "{} is a pre-defined network and cannot be removed",
                    network.name
                )));
            }
            if state
                .endpoints
                .get(&network.id)
                .is_some_and(|m| !m.is_empty())
            {
                return Err(Error::Conflict(format!(
                    "error while removing network: network {} id {} has active endpoints",
                    network.name, network.id
                )));
            }
            network
        };
        self.tear_down(&network).await?;
        self.forget(&network);
        Ok(network)
    }

    /// Removes the user-defined networks no running container uses and `keep` spares.
    pub async fn prune(&self, keep: impl Fn(&Network) -> bool) -> Vec<String> {
        let unused: Vec<Network> = {
            let state = self.lock();
            state
                .networks
                .values()
                .filter(|n| !n.is_predefined())
                .filter(|n| state.endpoints.get(&n.id).is_none_or(|m| m.is_empty()))
                .filter(|n| !keep(n))
                .cloned()
                .collect()
        };
        let mut removed = Vec::new();
        for network in unused {
            if self.remove(&network.id).await.is_ok() {
                removed.push(network.name);
            }
        }
        removed
    }

    // ------------------------------------------------------------ endpoints

    /// Attaches the container whose namespace is pinned at `netns` to `network`, as
    /// interface `ifname`; `default_route` makes its gateway the container's.
    pub async fn attach(
        &self,
        member: &Member,
        netns: &Path,
        network: &str,
        request: &EndpointRequest,
        ifname: &str,
        default_route: bool,
    ) -> Result<Endpoint> {
        self.ready().await?;
        let (network, ip, bridge) = {
            let mut state = self.lock();
            let network = find(&state, network)?.clone();
            if network.driver != "bridge" {
                return Err(Error::InvalidArgument(format!(
                    "container cannot be connected to network {} ({} driver) this way",
                    network.name, network.driver
                )));
            }
            if state
                .endpoints
                .get(&network.id)
                .is_some_and(|m| m.contains_key(&member.id))
            {
                return Err(Error::Conflict(format!(
                    "endpoint with name {} already exists in network {}",
                    member.name, network.name
                )));
            }
            if request.ipv4.is_some() && network.name == "bridge" {
                return Err(Error::InvalidArgument(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            let alloc = state.allocators.get_mut(&network.id).ok_or_else(|| {
                Error::InvalidArgument(format!("network {} has no address pool", network.name))
            })?;
            let ip = alloc.allocate(request.ipv4)?;
            let bridge = state.bridges.get(&network.id).copied();
            (network, ip, bridge)
        };
        let release = |this: &Self| {
            if let Some(a) = this.lock().allocators.get_mut(&network.id) {
                a.release(ip);
            }
        };
        let (Some(subnet), Some(gateway)) = (network.subnet, network.gateway) else {
            release(self);
            return Err(Error::InvalidArgument(format!(
                "network {} has no subnet",
                network.name
            )));
        };
        let mac = match &request.mac {
            Some(text) if !text.is_empty() => match ipam::parse_mac(text) {
                Ok(m) => m,
                Err(e) => {
                    release(self);
                    return Err(e);
                }
            },
            _ => ipam::mac_for(ip),
        };
        let host_veth = format!("veth{}", &fsutil::random_hex(4)[..7]);
        let made: Result<()> = async {
            let bridge = match bridge {
                Some(b) => b,
                None => {
                    self.netlink()?
                        .ensure_bridge(&network.bridge, gateway, subnet.prefix)
                        .await?
                }
            };
            self.netlink()?
                .add_veth(&host_veth, bridge, netns, ifname, mac)
                .await?;
            link::configure_in_netns(
                netns,
                ifname,
                ip,
                subnet.prefix,
                default_route.then_some(gateway),
            )
            .await
        }
        .await;
        if let Err(e) = made {
            if let Ok(n) = self.netlink() {
                let _ = n.delete(&host_veth).await;
            }
            release(self);
            return Err(e);
        }
        let endpoint = Endpoint {
            network_id: network.id.clone(),
            network_name: network.name.clone(),
            endpoint_id: fsutil::random_hex(32),
            ifname: ifname.to_string(),
            host_veth,
            ip,
            prefix: subnet.prefix,
            gateway,
            mac: ipam::format_mac(&mac),
            aliases: request.aliases.clone(),
        };
        self.lock()
            .endpoints
            .entry(network.id.clone())
            .or_default()
            .insert(
                member.id.clone(),
                Attached {
                    member: member.clone(),
                    endpoint: endpoint.clone(),
                },
            );
        Ok(endpoint)
    }

    /// Detaches an endpoint: its veth pair goes, its address is free again.
    pub async fn detach(&self, container_id: &str, endpoint: &Endpoint) {
        if let Ok(n) = self.netlink() {
            if let Err(e) = n.delete(&endpoint.host_veth).await {
                tracing::warn!("{e}");
            }
        }
        self.forget_endpoint(container_id, endpoint);
    }

    /// Releases the endpoint of a container that has exited: its address and names go
    /// now; its veth pair is deleted in the background, because unregistering a
    /// network device waits out RCU grace periods (10–15 ms here) that no caller
    /// should wait for.
    pub fn release(&self, container_id: &str, endpoint: &Endpoint) {
        self.forget_endpoint(container_id, endpoint);
        if let Ok(netlink) = self.netlink() {
            let netlink = netlink.clone();
            let veth = endpoint.host_veth.clone();
            tokio::spawn(async move {
                if let Err(e) = netlink.delete(&veth).await {
                    tracing::debug!("{e}");
                }
            });
        }
    }

    fn forget_endpoint(&self, container_id: &str, endpoint: &Endpoint) {
        let mut state = self.lock();
        if let Some(m) = state.endpoints.get_mut(&endpoint.network_id) {
            m.remove(container_id);
        }
        if let Some(a) = state.allocators.get_mut(&endpoint.network_id) {
            a.release(endpoint.ip);
        }
    }

    /// After a daemon restart: a running container's endpoint is known again, its
    /// address taken and its names resolvable.
    pub fn restore(&self, member: &Member, endpoint: &Endpoint) {
        let mut state = self.lock();
        if !state.networks.contains_key(&endpoint.network_id) {
            return;
        }
        if let Some(a) = state.allocators.get_mut(&endpoint.network_id) {
            a.used.insert(endpoint.ip);
        }
        state
            .endpoints
            .entry(endpoint.network_id.clone())
            .or_default()
            .insert(
                member.id.clone(),
                Attached {
                    member: member.clone(),
                    endpoint: endpoint.clone(),
                },
            );
    }

    /// The nameserver a container on `network` should use, if it has one of ours.
    pub fn resolver_for(&self, network_id: &str) -> Option<Ipv4Addr> {
        let state = self.lock();
        let network = state.networks.get(network_id)?;
        (network.has_dns() && state.resolvers.contains_key(network_id))
            .then_some(network.gateway)
            .flatten()
    }

    // ------------------------------------------------------------ ports

    /// Publishes `requests` to the container at `endpoint`: host ports reserved, then
    /// the DNAT rules added; on any failure nothing is left behind.
    pub async fn publish(
        &self,
        member: &Member,
        endpoint: &Endpoint,
        requests: &[PortRequest],
    ) -> Result<Vec<PublishedPort>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        // Docker publishes nothing from an internal network: it has no way out.
        if self
            .get(&endpoint.network_id)
            .map(|n| n.internal)
            .unwrap_or(false)
        {
            return Ok(Vec::new());
        }
        let mut held = Vec::new();
        let mut published = Vec::new();
        for request in requests {
            let host_ip = request.host_address()?;
            let candidates = request.candidate_ports()?;
            let mut last_error = None;
            let mut got = None;
            for port in &candidates {
                match ports::reserve(host_ip, *port, &request.proto) {
                    Ok(ok) => {
                        got = Some(ok);
                        break;
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            let Some((reservation, host_port)) = got else {
                let shown = if candidates == [0] {
                    "0".to_string()
                } else {
                    request.host_port.clone()
                };
                let reason = match last_error {
                    Some(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                        "port is already allocated".to_string()
                    }
                    Some(e) => e.to_string(),
                    None => "no port".to_string(),
                };
                return Err(Error::Conflict(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): Bind for {host_ip}:{shown} failed: {reason}",
                    member.name, endpoint.endpoint_id
                )));
            };
            held.push(reservation);
            published.push(PublishedPort {
                container_port: request.container_port,
                proto: request.proto.clone(),
                host_ip,
                host_port,
            });
        }
        if self.config.iptables {
            let rules = port_rules(endpoint, &published);
            tokio::task::block_in_place(|| firewall::add(&rules))?;
        }
        self.lock()
            .reservations
            .entry(member.id.clone())
            .or_default()
            .extend(held);
        Ok(published)
    }

    pub fn unpublish(&self, container_id: &str, endpoint: &Endpoint, published: &[PublishedPort]) {
        if self.config.iptables && !published.is_empty() {
            let rules = port_rules(endpoint, published);
            tokio::task::block_in_place(|| firewall::remove(&rules));
        }
        self.lock().reservations.remove(container_id);
    }

    /// After a daemon restart: hold the ports again and make sure the rules are there.
    pub fn restore_ports(
        &self,
        container_id: &str,
        endpoint: &Endpoint,
        published: &[PublishedPort],
    ) {
        let mut held = Vec::new();
        for p in published {
            match ports::reserve(p.host_ip, p.host_port, &p.proto) {
                Ok((r, _)) => held.push(r),
                Err(e) => tracing::warn!("holding {}:{}: {e}", p.host_ip, p.host_port),
            }
        }
        self.lock()
            .reservations
            .insert(container_id.to_string(), held);
        if self.config.iptables {
            let rules = port_rules(endpoint, published);
            if let Err(e) = tokio::task::block_in_place(|| firewall::ensure(&rules)) {
                tracing::warn!("restoring published ports: {e}");
            }
        }
    }
}

fn port_rules(endpoint: &Endpoint, published: &[PublishedPort]) -> Vec<firewall::Rule> {
    published
        .iter()
        .map(|p| {
            firewall::port_rule(
                p.host_ip,
                p.host_port,
                &p.proto,
                endpoint.ip,
                p.container_port,
            )
        })
        .collect()
}

fn find<'a>(state: &'a State, name_or_id: &str) -> Result<&'a Network> {
    if name_or_id.is_empty() {
        return Err(Error::NotFound(String::new()));
    }
    if let Some(n) = state.networks.get(name_or_id) {
        return Ok(n);
    }
    if let Some(n) = state.networks.values().find(|n| n.name == name_or_id) {
        return Ok(n);
    }
    let mut matches = state
        .networks
        .values()
        .filter(|n| n.id.starts_with(name_or_id));
    match (matches.next(), matches.next()) {
        (Some(n), None) => Ok(n),
        (Some(_), Some(_)) => Err(Error::InvalidArgument(format!(
            "network {name_or_id} is ambiguous"
        ))),
        _ => Err(Error::NotFound(name_or_id.to_string())),
    }
}

/// Docker's rule for network names.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The resolver's view of the endpoints.
struct Names {
    state: std::sync::Weak<Mutex<State>>,
}

impl Resolver for Names {
    fn resolve(&self, from: Ipv4Addr, name: &str) -> Answer {
        let fallback = if name.contains('.') {
            Answer::Forward
        } else {
            Answer::NoSuchName
        };
        let Some(state) = self.state.upgrade() else {
            return fallback;
        };
        let state = state.lock().unwrap_or_else(|p| p.into_inner());
        let name = name.to_ascii_lowercase();
        // The asker's networks, found by its address on them.
        let Some(asker) = state.endpoints.values().find_map(|m| {
            m.iter()
                .find(|(_, a)| a.endpoint.ip == from)
                .map(|(id, _)| id.clone())
        }) else {
            return fallback;
        };
        let networks: Vec<&String> = state
            .endpoints
            .iter()
            .filter(|(_, m)| m.contains_key(&asker))
            .map(|(id, _)| id)
            .filter(|id| state.networks.get(*id).is_some_and(|n| n.has_dns()))
            .collect();
        let lookup = |network_id: &String, label: &str| -> Vec<Ipv4Addr> {
            state
                .endpoints
                .get(network_id)
                .map(|m| {
                    m.iter()
                        .filter(|(id, a)| {
                            a.member.name.eq_ignore_ascii_case(label)
                                || a.endpoint
                                    .aliases
                                    .iter()
                                    .any(|x| x.eq_ignore_ascii_case(label))
                                || (label.len() >= 12 && id.starts_with(label))
                        })
                        .map(|(_, a)| a.endpoint.ip)
                        .collect()
                })
                .unwrap_or_default()
        };
        // `name.network` asks one network.
        if let Some((label, suffix)) = name.split_once('.') {
            if let Some(id) = networks.iter().find(|id| {
                state
                    .networks
                    .get(**id)
                    .is_some_and(|n| n.name.eq_ignore_ascii_case(suffix))
            }) {
                let found = lookup(id, label);
                if !found.is_empty() {
                    return Answer::Addresses(found);
                }
            }
        }
        let mut found = Vec::new();
        for id in &networks {
            for ip in lookup(id, &name) {
                if !found.contains(&ip) {
                    found.push(ip);
                }
            }
        }
        if found.is_empty() {
            fallback
        } else {
            Answer::Addresses(found)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names_follow_dockers_rule() {
        assert!(valid_name("my-net_1.x"));
        assert!(!valid_name("-net"));
        assert!(!valid_name("a/b"));
    }

    fn config(root: &Path) -> NetConfig {
        NetConfig {
            data_root: root.to_path_buf(),
            default_bridge: "berthtest0".into(),
            default_subnet: Some("10.250.0.1/24".parse().unwrap()),
            pools: ipam::default_pools(),
            iptables: false,
        }
    }

    #[test]
    fn predefined_networks_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Networks::open(config(dir.path())).unwrap();
        let names: Vec<String> = first.list().into_iter().map(|n| n.name).collect();
        assert_eq!(names.len(), 3);
        for n in ["bridge", "host", "none"] {
            assert!(names.contains(&n.to_string()));
        }
        let bridge = first.get("bridge").unwrap();
        assert_eq!(bridge.subnet.unwrap().to_string(), "10.250.0.0/24");
        assert_eq!(bridge.gateway.unwrap().to_string(), "10.250.0.1");
        first.persist_unsaved().unwrap();
        drop(first);
        let again = Networks::open(config(dir.path())).unwrap();
        assert_eq!(again.get("bridge").unwrap().id, bridge.id);
        assert_eq!(again.get(&bridge.id[..6]).unwrap().name, "bridge");
        assert!(matches!(again.get("nope"), Err(Error::NotFound(_))));
    }

    #[test]
    fn names_resolve_only_on_shared_networks() {
        let state = Arc::new(Mutex::new(State::default()));
        let net = |name: &str, id: &str| Network {
            id: id.into(),
            name: name.into(),
            created: String::new(),
            driver: "bridge".into(),
            internal: false,
            attachable: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            subnet: None,
            gateway: None,
            ip_range: None,
            bridge: String::new(),
        };
        let attach =
            |s: &mut State, net: &str, cid: &str, name: &str, ip: [u8; 4], aliases: &[&str]| {
                s.endpoints.entry(net.into()).or_default().insert(
                    cid.into(),
                    Attached {
                        member: Member {
                            id: cid.into(),
                            name: name.into(),
                        },
                        endpoint: Endpoint {
                            network_id: net.into(),
                            network_name: String::new(),
                            endpoint_id: String::new(),
                            ifname: "eth0".into(),
                            host_veth: String::new(),
                            ip: Ipv4Addr::from(ip),
                            prefix: 24,
                            gateway: Ipv4Addr::UNSPECIFIED,
                            mac: String::new(),
                            aliases: aliases.iter().map(|a| a.to_string()).collect(),
                        },
                    },
                );
            };
        {
            let mut s = state.lock().unwrap();
            s.networks.insert("n1".into(), net("front", "n1"));
            s.networks.insert("n2".into(), net("back", "n2"));
            attach(
                &mut s,
                "n1",
                "aaaaaaaaaaaaaaaa",
                "web",
                [10, 1, 0, 2],
                &["www"],
            );
            attach(
                &mut s,
                "n1",
                "bbbbbbbbbbbbbbbb",
                "client",
                [10, 1, 0, 3],
                &[],
            );
            attach(&mut s, "n2", "cccccccccccccccc", "db", [10, 2, 0, 2], &[]);
        }
        let names = Names {
            state: Arc::downgrade(&state),
        };
        let client = Ipv4Addr::new(10, 1, 0, 3);
        let web = Answer::Addresses(vec![Ipv4Addr::new(10, 1, 0, 2)]);
        assert_eq!(names.resolve(client, "web"), web);
        assert_eq!(names.resolve(client, "WWW"), web);
        assert_eq!(names.resolve(client, "web.front"), web);
        assert_eq!(names.resolve(client, "aaaaaaaaaaaa"), web);
        assert_eq!(names.resolve(client, "db"), Answer::NoSuchName);
        assert_eq!(names.resolve(client, "example.org"), Answer::Forward);
    }
}
