//! NAT and forwarding through Debian's iptables, as Docker does, so that berth's
//! rules live beside Docker's and the host's own (an nftables table of our own could
//! not override another table's FORWARD drop policy).
//!
//! Two chains are ours: `BERTH` in nat, jumped to for traffic addressed to the host,
//! holding one DNAT rule per published port; and `BERTH-FORWARD` in filter, jumped to
//! from FORWARD, holding the per-bridge accept (or, for internal networks, isolation)
//! rules. The chains and jumps stay; every other rule is removed by whoever added it.
//! Rules are applied in batches through `iptables-restore --noflush`: one process per
//! change, not one per rule.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::ipam::Subnet;

pub const NAT_CHAIN: &str = "BERTH";
pub const FORWARD_CHAIN: &str = "BERTH-FORWARD";

/// One rule: its table and its arguments after `-A`/`-D`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub table: &'static str,
    pub spec: String,
}

impl Rule {
    fn new(table: &'static str, spec: impl Into<String>) -> Self {
        Rule {
            table,
            spec: spec.into(),
        }
    }
}

fn iptables(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("iptables").arg("-w").args(args).output()
}

/// Creates our chains and the jumps to them, once per boot; cheap when present.
pub fn ensure_base() -> Result<()> {
    let _ = iptables(&["-t", "nat", "-N", NAT_CHAIN]);
    let _ = iptables(&["-t", "filter", "-N", FORWARD_CHAIN]);
    let jumps: [(&str, &str, Vec<&str>); 3] = [
        (
            "nat",
            "PREROUTING",
            vec!["-m", "addrtype", "--dst-type", "LOCAL", "-j", NAT_CHAIN],
        ),
        (
            "nat",
            "OUTPUT",
            vec!["-m", "addrtype", "--dst-type", "LOCAL", "-j", NAT_CHAIN],
        ),
        ("filter", "FORWARD", vec!["-j", FORWARD_CHAIN]),
    ];
    for (table, chain, rule) in jumps {
        let mut check = vec!["-t", table, "-C", chain];
        check.extend(&rule);
        let present = iptables(&check)
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !present {
            let mut insert = vec!["-t", table, "-I", chain, "1"];
            insert.extend(&rule);
            let out =
                iptables(&insert).map_err(|e| Error::Firewall(format!("running iptables: {e}")))?;
            if !out.status.success() {
                return Err(Error::Firewall(
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ));
            }
        }
    }
    crate::link::set_sysctl("net/ipv4/ip_forward", "1");
    Ok(())
}

/// The rules a bridge network needs: masquerading and forwarding, or, for an internal
/// network, isolation from everything but itself.
pub fn network_rules(bridge: &str, subnet: Subnet, internal: bool) -> Vec<Rule> {
    let subnet = subnet.network();
    if internal {
        return vec![
            Rule::new(
                "filter",
                format!("{FORWARD_CHAIN} -i {bridge} -o {bridge} -j ACCEPT"),
            ),
            Rule::new(
                "filter",
                format!("{FORWARD_CHAIN} -i {bridge} ! -o {bridge} -j DROP"),
            ),
            Rule::new(
                "filter",
                format!("{FORWARD_CHAIN} -o {bridge} ! -i {bridge} -j DROP"),
            ),
        ];
    }
    vec![
        Rule::new(
            "nat",
            format!("POSTROUTING -s {subnet} ! -o {bridge} -j MASQUERADE"),
        ),
        // Connections from the host's own addresses (127.0.0.1 included) DNATed to a
        // container must come back through the host.
        Rule::new(
            "nat",
            format!("POSTROUTING -o {bridge} -m addrtype --src-type LOCAL -j MASQUERADE"),
        ),
        Rule::new("filter", format!("{FORWARD_CHAIN} -o {bridge} -j ACCEPT")),
        Rule::new("filter", format!("{FORWARD_CHAIN} -i {bridge} -j ACCEPT")),
    ]
}

/// The DNAT rule of one published port.
pub fn port_rule(
    host_ip: Ipv4Addr,
    host_port: u16,
    proto: &str,
    container_ip: Ipv4Addr,
    container_port: u16,
) -> Rule {
    let dest = if host_ip.is_unspecified() {
        String::new()
    } else {
        format!("-d {host_ip}/32 ")
    };
    Rule::new(
        "nat",
        format!(
            "{NAT_CHAIN} {dest}-p {proto} -m {proto} --dport {host_port} -j DNAT --to-destination {container_ip}:{container_port}"
        ),
    )
}

fn restore(script: &str) -> Result<()> {
    let mut child = Command::new("iptables-restore")
        .args(["--noflush", "-w"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Firewall(format!("running iptables-restore: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| Error::Firewall(format!("writing to iptables-restore: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Firewall(format!("waiting for iptables-restore: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Firewall(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

fn script(op: &str, rules: &[Rule]) -> String {
    let mut text = String::new();
    for table in ["nat", "filter"] {
        let mine: Vec<&Rule> = rules.iter().filter(|r| r.table == table).collect();
        if mine.is_empty() {
            continue;
        }
        text.push_str(&format!("*{table}\n"));
        for rule in mine {
            text.push_str(&format!("{op} {}\n", rule.spec));
        }
        text.push_str("COMMIT\n");
    }
    text
}

/// Appends `rules`, all or none.
pub fn add(rules: &[Rule]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    restore(&script("-A", rules))
}

/// Appends those of `rules` not already present (after a daemon restart the kernel
/// still holds what the previous run added).
pub fn ensure(rules: &[Rule]) -> Result<()> {
    let missing: Vec<Rule> = rules
        .iter()
        .filter(|rule| {
            let mut args = vec!["-t", rule.table, "-C"];
            args.extend(rule.spec.split_whitespace());
            !iptables(&args).map(|o| o.status.success()).unwrap_or(false)
        })
        .cloned()
        .collect();
    add(&missing)
}

/// Deletes `rules`; those already gone are skipped, so a partial state heals.
pub fn remove(rules: &[Rule]) {
    if rules.is_empty() || restore(&script("-D", rules)).is_ok() {
        return;
    }
    for rule in rules {
        let mut args = vec!["-t", rule.table, "-D"];
        args.extend(rule.spec.split_whitespace());
        let _ = iptables(&args);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_script_groups_rules_by_table() {
        let rules = network_rules("br-1", "10.5.0.0/16".parse().unwrap(), false);
        let text = script("-A", &rules);
        assert_eq!(
            text,
            "*nat\n-A POSTROUTING -s 10.5.0.0/16 ! -o br-1 -j MASQUERADE\n\
-A POSTROUTING -o br-1 -m addrtype --src-type LOCAL -j MASQUERADE\nCOMMIT\n\
*filter\n-A BERTH-FORWARD -o br-1 -j ACCEPT\n-A BERTH-FORWARD -i br-1 -j ACCEPT\nCOMMIT\n"
        );
    }

    #[test]
    fn port_rules_name_the_host_address_only_when_given() {
        let any = port_rule(
            Ipv4Addr::UNSPECIFIED,
            8080,
            "tcp",
            "10.5.0.2".parse().unwrap(),
            80,
        );
        assert_eq!(
            any.spec,
            "BERTH -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.5.0.2:80"
        );
        let local = port_rule(
            Ipv4Addr::LOCALHOST,
            5353,
            "udp",
            "10.5.0.2".parse().unwrap(),
            53,
        );
        assert!(local.spec.starts_with("BERTH -d 127.0.0.1/32 -p udp"));
    }

    #[test]
    fn internal_networks_get_no_masquerade() {
        let rules = network_rules("br-2", "10.6.0.0/24".parse().unwrap(), true);
        assert!(rules.iter().all(|r| r.table == "filter"));
        assert!(rules.iter().any(|r| r.spec.contains("DROP")));
    }
}
