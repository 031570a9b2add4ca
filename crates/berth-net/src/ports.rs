//! Published ports: the host side is reserved by binding (not listening on) a socket,
//! so that no other program, and no other container, can take the port while the
//! kernel's DNAT carries the traffic to the container.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Socket, Type};

use crate::error::{Error, Result};

/// A `-p` binding as the API carries it (`PortBindings` entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub container_port: u16,
    pub proto: String,
    /// Empty for every address.
    pub host_ip: String,
    /// Empty for an ephemeral port; `N` or a range `N-M`.
    pub host_port: String,
}

/// A port as published: what inspect's `NetworkSettings.Ports` and `ps` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container_port: u16,
    pub proto: String,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

/// A held host port.
pub struct Reservation {
    _socket: Socket,
}

fn parse_port(text: &str, spec: &str) -> Result<u16> {
    text.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Error::InvalidArgument(format!("invalid port specification: \"{spec}\"")))
}

impl PortRequest {
    pub fn host_address(&self) -> Result<Ipv4Addr> {
        if self.host_ip.is_empty() {
            return Ok(Ipv4Addr::UNSPECIFIED);
        }
        self.host_ip.parse().map_err(|_| {
            Error::InvalidArgument(format!(
                "invalid host IP address for port {}/{}: {:?} (only IPv4 addresses are supported)",
                self.container_port, self.proto, self.host_ip
            ))
        })
    }

    /// The host ports to try, in order; `[0]` asks the kernel for one.
    pub fn candidate_ports(&self) -> Result<Vec<u16>> {
        let spec = &self.host_port;
        if spec.is_empty() || spec == "0" {
            return Ok(vec![0]);
        }
        match spec.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_port(a, spec)?, parse_port(b, spec)?);
                if a > b {
                    return Err(Error::InvalidArgument(format!(
                        "invalid port range: \"{spec}\""
                    )));
                }
                Ok((a..=b).collect())
            }
            None => Ok(vec![parse_port(spec, spec)?]),
        }
    }
}

/// Binds `ip:port` for `proto` (`tcp`, `udp` or `sctp`, the last not held).
pub fn reserve(ip: Ipv4Addr, port: u16, proto: &str) -> std::io::Result<(Reservation, u16)> {
    let kind = match proto {
        "udp" => Type::DGRAM,
        _ => Type::STREAM,
    };
    let socket = Socket::new(Domain::IPV4, kind, None)?;
    socket.set_cloexec(true)?;
    socket.bind(&SocketAddr::from((ip, port)).into())?;
    let port = socket
        .local_addr()?
        .as_socket()
        .map(|a| a.port())
        .unwrap_or(port);
    Ok((Reservation { _socket: socket }, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host_port: &str) -> PortRequest {
        PortRequest {
            container_port: 80,
            proto: "tcp".into(),
            host_ip: String::new(),
            host_port: host_port.into(),
        }
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(req("").candidate_ports().unwrap(), vec![0]);
        assert_eq!(req("8080").candidate_ports().unwrap(), vec![8080]);
        assert_eq!(
            req("8000-8002").candidate_ports().unwrap(),
            vec![8000, 8001, 8002]
        );
        let err = req("80a").candidate_ports().unwrap_err().to_string();
        assert!(err.contains("\"80a\""), "{err}");
        assert!(req("9-3").candidate_ports().is_err());
    }

    #[test]
    fn a_reserved_port_cannot_be_taken_twice() {
        let (held, port) = reserve(Ipv4Addr::LOCALHOST, 0, "tcp").unwrap();
        assert_ne!(port, 0);
        let again = reserve(Ipv4Addr::LOCALHOST, port, "tcp");
        assert_eq!(
            again.err().map(|e| e.kind()),
            Some(std::io::ErrorKind::AddrInUse)
        );
        drop(held);
        assert!(reserve(Ipv4Addr::LOCALHOST, port, "tcp").is_ok());
    }
}
