//! IPv4 address management: subnets, the pools new networks draw from, and the
//! addresses handed to endpoints.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An IPv4 network in CIDR form; `addr` may carry host bits (as `--ip-range` and
/// `--subnet 10.1.2.3/16` do) until [`Subnet::network`] drops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        Subnet {
            addr,
            prefix: prefix.min(32),
        }
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix as u32)
        }
    }

    /// The same subnet with the host bits cleared.
    pub fn network(&self) -> Subnet {
        Subnet::new(
            Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            self.prefix,
        )
    }

    pub fn first(&self) -> u32 {
        u32::from(self.addr) & self.mask()
    }

    pub fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The `n`th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let ip = self.first().checked_add(n)?;
        (ip <= self.last()).then(|| Ipv4Addr::from(ip))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidArgument(format!("invalid CIDR address: {s}"));
        let (addr, prefix) = s.split_once('/').ok_or_else(invalid)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        if prefix > 32 {
            return Err(invalid());
        }
        Ok(Subnet::new(addr, prefix))
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One of `default-address-pools`: `base` cut into subnets of `size` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub base: Subnet,
    pub size: u8,
}

/// Docker's defaults: 172.17–31.0.0/16, then 192.168.0–240.0/20.
pub fn default_pools() -> Vec<Pool> {
    vec![
        Pool {
            base: Subnet::new(Ipv4Addr::new(172, 17, 0, 0), 16),
            size: 16,
        },
        Pool {
            base: Subnet::new(Ipv4Addr::new(172, 18, 0, 0), 15),
            size: 16,
        },
        Pool {
            base: Subnet::new(Ipv4Addr::new(172, 20, 0, 0), 14),
            size: 16,
        },
        Pool {
            base: Subnet::new(Ipv4Addr::new(172, 24, 0, 0), 14),
            size: 16,
        },
        Pool {
            base: Subnet::new(Ipv4Addr::new(172, 28, 0, 0), 14),
            size: 16,
        },
        Pool {
            base: Subnet::new(Ipv4Addr::new(192, 168, 0, 0), 16),
            size: 20,
        },
    ]
}

/// The first subnet from `pools` that overlaps none of `taken`.
pub fn pick_subnet(pools: &[Pool], taken: &[Subnet]) -> Option<Subnet> {
    for pool in pools {
        let base = pool.base.network();
        if pool.size < base.prefix || pool.size > 30 {
            continue;
        }
        let count = 1u64 << (pool.size - base.prefix);
        let step = 1u64 << (32 - pool.size);
        for i in 0..count {
            let start = base.first() as u64 + i * step;
            let candidate = Subnet::new(Ipv4Addr::from(start as u32), pool.size);
            if !taken.iter().any(|t| t.overlaps(&candidate)) {
                return Some(candidate);
            }
        }
    }
    None
}

/// The host's IPv4 routes other than default routes, from /proc/net/route: a new
/// network must not shadow a destination the host already reaches.
pub fn host_routes() -> Vec<Subnet> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    parse_proc_routes(&text)
}

fn parse_proc_routes(text: &str) -> Vec<Subnet> {
    let mut routes = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        // The kernel prints the address and mask words in host (little-endian) order.
        let (Ok(dest), Ok(mask)) = (
            u32::from_str_radix(fields[1], 16),
            u32::from_str_radix(fields[7], 16),
        ) else {
            continue;
        };
        let prefix = mask.count_ones() as u8;
        if prefix == 0 {
            continue;
        }
        let dest = Ipv4Addr::from(dest.to_le_bytes());
        routes.push(Subnet::new(dest, prefix).network());
    }
    routes
}

/// Where a network may hand out addresses, and which it has.
#[derive(Debug, Clone)]
pub struct Allocator {
    pub subnet: Subnet,
    pub range: Subnet,
    pub gateway: Ipv4Addr,
    pub used: BTreeSet<Ipv4Addr>,
}

impl Allocator {
    fn usable(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        self.subnet.contains(ip)
            && n != self.subnet.first()
            && (self.subnet.prefix >= 31 || n != self.subnet.last())
            && ip != self.gateway
    }

    /// A specific address (`--ip`), or the first free one of the range.
    pub fn allocate(&mut self, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        if let Some(ip) = wanted {
            if !self.usable(ip) || !self.range.contains(ip) {
                return Err(Error::InvalidArgument(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                )));
            }
            if !self.used.insert(ip) {
                return Err(Error::Conflict(format!(
                    "Address already in use: {ip} is already allocated"
                )));
            }
            return Ok(ip);
        }
        let range = self.range.network();
        for n in range.first()..=range.last() {
            let ip = Ipv4Addr::from(n);
            if self.usable(ip) && !self.used.contains(&ip) {
                self.used.insert(ip);
                return Ok(ip);
            }
        }
        Err(Error::Conflict(format!(
            "no available IPv4 addresses on this network's address pools: {}",
            self.subnet
        )))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }
}

/// Docker's MAC for an address: 02:42 followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let invalid = || Error::InvalidArgument(format!("invalid MAC address: {text}"));
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(invalid());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| invalid())?;
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_parsing_and_errors() {
        assert_eq!(s("10.1.2.3/16").network().to_string(), "10.1.0.0/16");
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        let err = "300.0.0.0/8".parse::<Subnet>().unwrap_err().to_string();
        assert_eq!(err, "invalid CIDR address: 300.0.0.0/8");
    }

    #[test]
    fn overlap_and_contains() {
        assert!(s("10.0.0.0/8").overlaps(&s("10.5.0.0/16")));
        assert!(!s("10.0.0.0/16").overlaps(&s("10.1.0.0/16")));
        assert!(s("172.18.0.0/16").contains("172.18.255.254".parse().unwrap()));
    }

    #[test]
    fn picks_the_first_free_pool_subnet() {
        let pools = default_pools();
        assert_eq!(
            pick_subnet(&pools, &[]).unwrap().to_string(),
            "172.17.0.0/16"
        );
        let taken = [s("172.17.0.0/16"), s("172.18.5.0/24")];
        assert_eq!(
            pick_subnet(&pools, &taken).unwrap().to_string(),
            "172.19.0.0/16"
        );
        let all_172: Vec<Subnet> = vec![s("172.16.0.0/12")];
        assert_eq!(
            pick_subnet(&pools, &all_172).unwrap().to_string(),
            "192.168.0.0/20"
        );
    }

    #[test]
    fn proc_routes_are_read_as_subnets() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = parse_proc_routes(text);
        assert_eq!(routes, vec![s("192.0.2.0/24"), s("172.17.0.0/16")]);
    }

    #[test]
    fn allocation_skips_network_gateway_and_broadcast() {
        let subnet = s("10.9.0.0/29");
        let mut a = Allocator {
            subnet,
            range: subnet,
            gateway: "10.9.0.1".parse().unwrap(),
            used: BTreeSet::new(),
        };
        let got: Vec<String> = (0..5)
            .map(|_| a.allocate(None).unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
        );
        assert!(a.allocate(None).is_err());
        a.release("10.9.0.4".parse().unwrap());
        assert_eq!(a.allocate(None).unwrap().to_string(), "10.9.0.4");
    }

    #[test]
    fn static_addresses_must_be_free_and_in_range() {
        let subnet = s("10.9.0.0/24");
        let mut a = Allocator {
            subnet,
            range: s("10.9.0.128/25"),
            gateway: "10.9.0.1".parse().unwrap(),
            used: BTreeSet::new(),
        };
        assert!(a.allocate(Some("10.9.0.5".parse().unwrap())).is_err());
        assert_eq!(
            a.allocate(Some("10.9.0.200".parse().unwrap())).unwrap(),
            "10.9.0.200".parse::<Ipv4Addr>().unwrap()
        );
        let err = a.allocate(Some("10.9.0.200".parse().unwrap())).unwrap_err();
        assert!(err.to_string().contains("already"), "{err}");
        // The range's own network address is a usable host of the subnet.
        assert_eq!(a.allocate(None).unwrap().to_string(), "10.9.0.128");
    }

    #[test]
    fn docker_style_mac() {
        assert_eq!(
            format_mac(&mac_for("172.17.0.2".parse().unwrap())),
            "02:42:ac:11:00:02"
        );
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
    }
}
