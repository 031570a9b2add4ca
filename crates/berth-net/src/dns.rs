//! The embedded resolver of user-defined networks. Like podman's aardvark-dns it
//! listens on the network's gateway address; containers on that network get it as
//! their nameserver. It answers container names, aliases and short ids for the asking
//! container's networks, says NXDOMAIN at once for other single-label names, and
//! relays everything else to the host's resolvers.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

/// What the resolver knows about a name, asked by a container at `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A container on one of the asker's networks.
    Addresses(Vec<Ipv4Addr>),
    /// Not ours and not worth forwarding.
    NoSuchName,
    /// Someone else's name: ask the host's resolvers.
    Forward,
}

pub trait Resolver: Send + Sync + 'static {
    fn resolve(&self, from: Ipv4Addr, name: &str) -> Answer;
}

/// The host's resolvers, from /etc/resolv.conf: berthd runs in the host's namespace,
/// so loopback resolvers (systemd-resolved's 127.0.0.53) work from here.
pub fn host_upstreams() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

const TTL: u32 = 600;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds our reply to `query`, or `None` when it must be forwarded.
pub fn answer(query: &Message, from: Ipv4Addr, resolver: &dyn Resolver) -> Option<Message> {
    let question = query.queries.first()?;
    let mut name = question.name().to_ascii();
    if name.ends_with('.') {
        name.pop();
    }
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(question.clone());
    match resolver.resolve(from, &name) {
        Answer::Forward => return None,
        Answer::NoSuchName => reply.metadata.response_code = ResponseCode::NXDomain,
        Answer::Addresses(addresses) => {
            reply.metadata.authoritative = true;
            // Other record types of a known name: an empty, successful answer, so the
            // client does not go on asking elsewhere.
            if question.query_type() == RecordType::A {
                for ip in addresses {
                    reply.add_answer(Record::from_rdata(
                        question.name().clone(),
                        TTL,
                        RData::A(A(ip)),
                    ));
                }
            }
        }
    }
    Some(reply)
}

/// Serves `socket` until the task is aborted.
pub async fn serve(
    socket: UdpSocket,
    resolver: Arc<dyn Resolver>,
    upstreams: Arc<Vec<SocketAddr>>,
) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 4096];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                tracing::debug!("dns: {e}");
                continue;
            }
        };
        let packet = buf[..len].to_vec();
        let Ok(query) = Message::from_vec(&packet) else {
            continue;
        };
        if query.metadata.message_type != MessageType::Query {
            continue;
        }
        let from = match peer.ip() {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => continue,
        };
        match answer(&query, from, resolver.as_ref()) {
            Some(reply) => {
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
            None => {
                let socket = socket.clone();
                let upstreams = upstreams.clone();
                tokio::spawn(async move {
                    let reply = match forward(&packet, &upstreams).await {
                        Some(bytes) => bytes,
                        None => {
                            let mut failed =
                                Message::response(query.metadata.id, query.metadata.op_code);
                            failed.metadata.response_code = ResponseCode::ServFail;
                            failed.add_queries(query.queries.iter().cloned());
                            match failed.to_vec() {
                                Ok(bytes) => bytes,
                                Err(_) => return,
                            }
                        }
                    };
                    let _ = socket.send_to(&reply, peer).await;
                });
            }
        }
    }
}

async fn forward(packet: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for upstream in upstreams {
        let bind: SocketAddr = if upstream.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(socket) = UdpSocket::bind(bind).await else {
            continue;
        };
        if socket.send_to(packet, upstream).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((len, _))) =
            tokio::time::timeout(FORWARD_TIMEOUT, socket.recv_from(&mut buf)).await
        {
            buf.truncate(len);
            return Some(buf);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{OpCode, Query};
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    struct Fixed;
    impl Resolver for Fixed {
        fn resolve(&self, _from: Ipv4Addr, name: &str) -> Answer {
            match name {
                "web" => Answer::Addresses(vec![Ipv4Addr::new(10, 1, 0, 2)]),
                n if n.contains('.') => Answer::Forward,
                _ => Answer::NoSuchName,
            }
        }
    }

    fn query(name: &str, kind: RecordType) -> Message {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_str(name).unwrap(), kind));
        m
    }

    #[test]
    fn known_names_get_their_address() {
        let reply = answer(&query("web.", RecordType::A), Ipv4Addr::LOCALHOST, &Fixed).unwrap();
        assert_eq!(reply.metadata.id, 7);
        assert_eq!(reply.answers.len(), 1);
        let wire = reply.to_vec().unwrap();
        let parsed = Message::from_vec(&wire).unwrap();
        assert_eq!(
            &parsed.answers[0].data,
            &RData::A(A(Ipv4Addr::new(10, 1, 0, 2)))
        );
    }

    #[test]
    fn aaaa_of_a_known_name_is_empty_not_an_error() {
        let reply = answer(
            &query("web.", RecordType::AAAA),
            Ipv4Addr::LOCALHOST,
            &Fixed,
        )
        .unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.answers.is_empty());
    }

    #[test]
    fn unknown_single_labels_are_nxdomain_and_others_forwarded() {
        let reply = answer(&query("nope.", RecordType::A), Ipv4Addr::LOCALHOST, &Fixed).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
        assert!(answer(
            &query("example.org.", RecordType::A),
            Ipv4Addr::LOCALHOST,
            &Fixed
        )
        .is_none());
    }
}
