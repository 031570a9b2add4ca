//! berth's networks: the predefined `bridge`, `host` and `none` networks and
//! user-defined bridge networks, each a Linux bridge with its own subnet; containers
//! attached by veth pairs; NAT, isolation and published ports through iptables; and a
//! resolver per user-defined network so containers find each other by name.

pub mod dns;
mod error;
pub mod firewall;
pub mod ipam;
pub mod link;
mod networks;
pub mod ports;

pub use error::{Error, Result};
pub use networks::{
    valid_name, CreateRequest, Endpoint, EndpointRequest, Member, NetConfig, Network, Networks,
    BRIDGE_NAME_OPTION,
};
pub use ports::{PortRequest, PublishedPort};
