//! Links and addresses through rtnetlink: one bridge per network, one veth pair per
//! attachment with its container end created directly inside the container's network
//! namespace, so it never appears (or collides with `eth0`) on the host.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::error::{Error, Result};

fn errno(e: &rtnetlink::Error) -> i32 {
    match e {
        rtnetlink::Error::NetlinkError(m) => -m.raw_code(),
        _ => 0,
    }
}

/// A netlink connection in berthd's own (the host's) network namespace.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Must be called inside the tokio runtime, which drives the connection.
    pub fn new() -> Result<Self> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| Error::io("opening a netlink socket", e))?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    pub async fn index_of(&self, name: &str) -> Result<Option<u32>> {
        index_of(&self.handle, name).await
    }

    /// Makes sure bridge `name` exists, holds `gateway/prefix` and is up.
    pub async fn ensure_bridge(&self, name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<u32> {
        let index = match self.index_of(name).await? {
            Some(index) => index,
            None => {
                match self
                    .handle
                    .link()
                    .add(LinkBridge::new(name).build())
                    .execute()
                    .await
                {
                    Ok(()) => {}
                    Err(e) if errno(&e) == libc::EEXIST => {}
                    Err(e) => return Err(Error::netlink(format!("creating bridge {name}"), e)),
                }
                self.index_of(name).await?.ok_or_else(|| {
                    Error::netlink(format!("creating bridge {name}"), "it vanished")
                })?
            }
        };
        match self
            .handle
            .address()
            .add(index, IpAddr::V4(gateway), prefix)
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if errno(&e) == libc::EEXIST => {}
            Err(e) => {
                return Err(Error::netlink(
                    format!("adding {gateway}/{prefix} to {name}"),
                    e,
                ))
            }
        }
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("setting {name} up"), e))?;
        // Published ports on 127.0.0.1 are DNATed to the bridge: the kernel must accept
        // loopback sources there (Docker does the same without its userland proxy).
        set_sysctl(&format!("net/ipv4/conf/{name}/route_localnet"), "1");
        Ok(index)
    }

    /// Deletes a link by name; a link already gone is not an error.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let Some(index) = self.index_of(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == libc::ENODEV => Ok(()),
            Err(e) => Err(Error::netlink(format!("deleting {name}"), e)),
        }
    }

    /// Creates a veth pair: `host_name` enslaved to `bridge` and up on the host,
    /// `ifname` with `mac` inside the namespace pinned at `netns`.
    pub async fn add_veth(
        &self,
        host_name: &str,
        bridge: u32,
        netns: &Path,
        ifname: &str,
        mac: [u8; 6],
    ) -> Result<()> {
        let ns =
            File::open(netns).map_err(|e| Error::io(format!("opening {}", netns.display()), e))?;
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(ifname.to_string())
            .address(mac.to_vec())
            .setns_by_fd(ns.as_raw_fd())
            .build();
        let message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host_name.to_string())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge)
            .up()
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("creating veth {host_name}"), e))?;
        drop(ns);
        Ok(())
    }
}

async fn index_of(handle: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == libc::ENODEV => Ok(None),
        Err(e) => Err(Error::netlink(format!("looking up {name}"), e)),
    }
}

/// A netlink connection whose socket lives in the namespace pinned at `netns`: the
/// socket is made by a short-lived thread that joined that namespace, so nothing else
/// in the daemon changes namespace.
fn connect_in(netns: &Path) -> Result<Handle> {
    let ns = File::open(netns).map_err(|e| Error::io(format!("opening {}", netns.display()), e))?;
    let runtime = tokio::runtime::Handle::current();
    let made = std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        let _entered = runtime.enter();
        rtnetlink::new_connection()
    })
    .join()
    .map_err(|_| Error::netlink("joining a container's network namespace", "thread panicked"))?;
    let (connection, handle, _) =
        made.map_err(|e| Error::io("opening a netlink socket in a container", e))?;
    tokio::spawn(connection);
    Ok(handle)
}

/// Inside the container: `ifname` gets `ip/prefix` and goes up; with a gateway it
/// becomes the default route.
pub async fn configure_in_netns(
    netns: &Path,
    ifname: &str,
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
) -> Result<()> {
    let handle = connect_in(netns)?;
    let index = index_of(&handle, ifname)
        .await?
        .ok_or_else(|| Error::netlink(format!("configuring {ifname}"), "no such device"))?;
    handle
        .address()
        .add(index, IpAddr::V4(ip), prefix)
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("adding {ip}/{prefix} to {ifname}"), e))?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("setting {ifname} up"), e))?;
    if let Some(gateway) = gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        match handle.route().add(route).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == libc::EEXIST => {}
            Err(e) => {
                return Err(Error::netlink(
                    format!("adding the default route via {gateway}"),
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// Deletes `ifname` inside the container's namespace (`network disconnect`): its veth
/// peer on the host goes with it.
pub async fn delete_in_netns(netns: &Path, ifname: &str) -> Result<()> {
    let handle = connect_in(netns)?;
    if let Some(index) = index_of(&handle, ifname).await? {
        handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("deleting {ifname}"), e))?;
    }
    Ok(())
}

/// The names of the container's interfaces, to pick the next `ethN`.
pub async fn links_in_netns(netns: &Path) -> Result<Vec<String>> {
    use rtnetlink::packet_route::link::LinkAttribute;
    let handle = connect_in(netns)?;
    let mut names = Vec::new();
    let mut links = handle.link().get().execute();
    while let Some(link) = links
        .try_next()
        .await
        .map_err(|e| Error::netlink("listing a container's links", e))?
    {
        for attr in link.attributes {
            if let LinkAttribute::IfName(name) = attr {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// Writes a sysctl under /proc/sys; failures are logged, not fatal: the setting only
/// matters for some paths and may be read-only in nested setups.
pub fn set_sysctl(key: &str, value: &str) {
    let path = Path::new("/proc/sys").join(key);
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return;
    }
    if let Err(e) = std::fs::write(&path, value) {
        tracing::warn!("setting {key}={value}: {e}");
    }
}
