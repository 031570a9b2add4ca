//! `container` commands and their top-level shortcuts (`run`, `ps`, `logs`...), with
//! docker's output, error wording and exit statuses.
//!
//! Layout: `opts` parses `create`/`run` options into the create body, `run` holds
//! the create/run/start/attach flows, `stream` the hijacked-connection plumbing,
//! `exec`, `logs`, `list` (ps, stats), `update` and `cp` one command each; the small
//! one-request commands live here.

mod cp;
mod exec;
mod list;
mod logs;
mod opts;
mod run;
pub(crate) mod stream;
mod update;

use std::fmt::Display;
use std::io::IsTerminal;

use anyhow::Result;
use hyper::Method;
use serde_json::Value;

pub use cp::cp;
pub use exec::exec;
pub use list::{ps, stats};
pub(crate) use list::{ps_row, PS_HEADERS};
pub(crate) use logs::get_timestamp;
pub use logs::logs;
pub(crate) use opts::ram_in_bytes;
pub use run::{attach, create, run, start};
pub use update::update;

use super::common::natural_cmp;
use crate::cli::{
    CommitArgs, ContainerArg, ContainerInspectArgs, ContainersArgs, ExportArgs, InspectArgs,
    KillArgs, PortArgs, RenameArgs, RmArgs, StopArgs, TopArgs,
};
use crate::client::{self, path_segment, with_query, Client, ClientError};
use crate::output::pretty_json;
use crate::template::Template;
use crate::ExitStatus;

/// Prints `message` to stderr, worded as docker prints it, and ends with status 1.
pub(crate) fn fail(message: impl Display) -> anyhow::Error {
    eprintln!("{message}");
    ExitStatus(1).into()
}

/// Ends with a container's exit status (the low 8 bits, as the shell sees them).
pub(crate) fn exit_status(code: i64) -> anyhow::Error {
    ExitStatus((code & 0xff) as u8).into()
}

/// `GET /containers/NAME/json` (with sizes when asked).
pub(crate) async fn inspect_container(
    client: &Client,
    name: &str,
    size: bool,
) -> std::result::Result<Value, ClientError> {
    let path = with_query(
        &format!("/containers/{}/json", path_segment(name)),
        &[("size", if size { "1".into() } else { String::new() })],
    );
    client.get_json(&path).await
}

/// `1` for a set boolean query parameter, nothing otherwise (so it is left out).
fn flag(on: bool) -> String {
    if on {
        "1".into()
    } else {
        String::new()
    }
}

/// Runs one request per container, printing each name that succeeded on stdout and,
/// at the end, every failure on stderr (status 1), as docker's `stop`, `kill`,
/// `pause`... do.
async fn for_each_container<F, Fut>(names: &[String], mut op: F) -> Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), ClientError>>,
{
    let mut errors = Vec::new();
    for name in names {
        match op(name.clone()).await {
            Ok(()) => println!("{name}"),
            Err(e @ ClientError::Daemon { .. }) => errors.push(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("\n")))
    }
}

async fn post_empty(client: &Client, path: &str) -> std::result::Result<(), ClientError> {
    client
        .send(Method::POST, path, client::empty(), None)
        .await
        .map(|_| ())
}

pub async fn stop(client: &Client, args: StopArgs) -> Result<()> {
    stop_or_restart(client, args, "stop").await
}

pub async fn restart(client: &Client, args: StopArgs) -> Result<()> {
    stop_or_restart(client, args, "restart").await
}

async fn stop_or_restart(client: &Client, args: StopArgs, action: &str) -> Result<()> {
    let query = [
        ("signal", args.signal.clone().unwrap_or_default()),
        ("t", args.timeout.map(|t| t.to_string()).unwrap_or_default()),
    ];
    for_each_container(&args.containers, |name| {
        let path = with_query(
            &format!("/containers/{}/{action}", path_segment(&name)),
            &query,
        );
        async move { post_empty(client, &path).await }
    })
    .await
}

pub async fn kill(client: &Client, args: KillArgs) -> Result<()> {
    let signal = args.signal.clone().unwrap_or_default();
    for_each_container(&args.containers, |name| {
        let path = with_query(
            &format!("/containers/{}/kill", path_segment(&name)),
            &[("signal", signal.clone())],
        );
        async move { post_empty(client, &path).await }
    })
    .await
}

pub async fn pause(client: &Client, args: ContainersArgs) -> Result<()> {
    for_each_container(&args.containers, |name| {
        let path = format!("/containers/{}/pause", path_segment(&name));
        async move { post_empty(client, &path).await }
    })
    .await
}

pub async fn unpause(client: &Client, args: ContainersArgs) -> Result<()> {
    for_each_container(&args.containers, |name| {
        let path = format!("/containers/{}/unpause", path_segment(&name));
        async move { post_empty(client, &path).await }
    })
    .await
}

pub async fn remove(client: &Client, args: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for name in &args.containers {
        let trimmed = name.trim_matches('/');
        if trimmed.is_empty() {
            errors.push("Container name cannot be empty".to_string());
            continue;
        }
        let path = with_query(
            &format!("/containers/{}", path_segment(trimmed)),
            &[
                ("v", flag(args.volumes)),
                ("link", flag(args.link)),
                ("force", flag(args.force)),
            ],
        );
        match client
            .send(Method::DELETE, &path, client::empty(), None)
            .await
        {
            Ok(_) => println!("{name}"),
            // With --force a missing container is reported but is no failure.
            Err(e) if args.force && e.is_not_found() => eprintln!("{e}"),
            Err(e @ ClientError::Daemon { .. }) => errors.push(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("\n")))
    }
}

pub async fn rename(client: &Client, args: RenameArgs) -> Result<()> {
    let old = args.container.trim();
    let new = args.new_name.trim();
    if old.is_empty() || new.is_empty() {
        return Err(fail("Error: Neither old nor new names may be empty"));
    }
    let path = with_query(
        &format!("/containers/{}/rename", path_segment(old)),
        &[("name", new.to_string())],
    );
    match post_empty(client, &path).await {
        Ok(()) => Ok(()),
        Err(e @ ClientError::Daemon { .. }) => {
            eprintln!("{e}");
            Err(fail(format!(
                "Error: failed to rename container named {old}"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn wait(client: &Client, args: ContainersArgs) -> Result<()> {
    let mut errors = Vec::new();
    for name in &args.containers {
        match run::wait_exit(client, name, "").await.await {
            Ok(Ok(code)) => println!("{code}"),
            Ok(Err(message)) => errors.push(message),
            Err(_) => errors.push(format!("waiting for {name} ended early")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("\n")))
    }
}

pub async fn top(client: &Client, args: TopArgs) -> Result<()> {
    let path = with_query(
        &format!("/containers/{}/top", path_segment(&args.container)),
        &[("ps_args", args.ps_args.join(" "))],
    );
    let list = client.get_json(&path).await?;
    let mut rows = Vec::new();
    let cells = |v: &Value| -> String {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join("\t")
    };
    rows.push(cells(&list["Titles"]));
    for process in list["Processes"].as_array().into_iter().flatten() {
        rows.push(cells(process));
    }
    print!("{}", tabulate_min(&rows, 20));
    Ok(())
}

/// Go's `tabwriter.NewWriter(out, min, 1, 3, ' ', 0)`: cells but the last of a row
/// padded to their column's width plus 3, at least `min`.
pub(crate) fn tabulate_min(rows: &[String], min: usize) -> String {
    let split: Vec<Vec<&str>> = rows.iter().map(|r| r.split('\t').collect()).collect();
    let columns = split.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in &split {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                widths[i] = widths[i].max((cell.chars().count() + 3).max(min));
            }
        }
    }
    let mut out = String::new();
    for row in &split {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// Go's `net.JoinHostPort`: IPv6 hosts in brackets.
pub(crate) fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's `strconv.ParseUint(s, 10, 16)`, which `docker port` checks a private port
/// with: ASCII digits only (no sign), at most 65535; the error is Go's reason.
fn parse_uint16(s: &str) -> Result<u16, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    s.parse::<u16>().map_err(|_| "value out of range")
}

/// The lines `docker port` prints for a container's `NetworkSettings.Ports`.
fn port_lines(ports: &Value, container: &str, wanted: Option<&str>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    match wanted {
        Some(wanted) => {
            let (port, proto) = wanted.split_once('/').unwrap_or((wanted, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if let Err(reason) = parse_uint16(port) {
                return Err(format!(
                    "Error: invalid port ({port}): strconv.ParseUint: parsing {}: {reason}",
                    list::go_quote(port)
                ));
            }
            let frontends = ports[format!("{port}/{proto}")]
                .as_array()
                .filter(|f| !f.is_empty())
                .ok_or_else(|| {
                    format!("Error: No public port '{wanted}' published for {container}")
                })?;
            for f in frontends {
                out.push(join_host_port(
                    f["HostIp"].as_str().unwrap_or(""),
                    f["HostPort"].as_str().unwrap_or(""),
                ));
            }
        }
        None => {
            for (from, frontends) in ports.as_object().into_iter().flatten() {
                for f in frontends.as_array().into_iter().flatten() {
                    out.push(format!(
                        "{from} -> {}",
                        join_host_port(
                            f["HostIp"].as_str().unwrap_or(""),
                            f["HostPort"].as_str().unwrap_or("")
                        )
                    ));
                }
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

pub async fn port(client: &Client, args: PortArgs) -> Result<()> {
    let container = inspect_container(client, &args.container, false).await?;
    let lines = port_lines(
        &container["NetworkSettings"]["Ports"],
        &args.container,
        args.port.as_deref(),
    )
    .map_err(fail)?;
    if !lines.is_empty() {
        println!("{}", lines.join("\n"));
    }
    Ok(())
}

/// `C`, `A` or `D` for a change's `Kind` (0 modified, 1 added, 2 deleted).
fn change_kind(kind: i64) -> &'static str {
    match kind {
        1 => "A",
        2 => "D",
        _ => "C",
    }
}

pub async fn diff(client: &Client, args: ContainerArg) -> Result<()> {
    let changes = client
        .get_json(&format!(
            "/containers/{}/changes",
            path_segment(&args.container)
        ))
        .await?;
    let mut out = String::new();
    for change in changes.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{} {}\n",
            change_kind(change["Kind"].as_i64().unwrap_or(0)),
            change["Path"].as_str().unwrap_or("")
        ));
    }
    print!("{out}");
    Ok(())
}

pub async fn commit(client: &Client, args: CommitArgs) -> Result<()> {
    let (repo, tag) = match args.reference.as_deref().filter(|r| !r.is_empty()) {
        Some(reference) => {
            if reference.contains('@') {
                return Err(fail("refusing to create a tag with a digest reference"));
            }
            let Some(parsed) = run::parse_image_ref(reference) else {
                return Err(fail("invalid reference format"));
            };
            (parsed.familiar_name, parsed.tag)
        }
        None => (String::new(), String::new()),
    };
    let mut query: Vec<(&str, String)> = vec![
        ("container", args.container.clone()),
        ("repo", repo),
        ("tag", tag),
        ("comment", args.message.clone().unwrap_or_default()),
        ("author", args.author.clone().unwrap_or_default()),
    ];
    for change in &args.change {
        query.push(("changes", change.clone()));
    }
    if args.no_pause || !args.pause {
        query.push(("pause", "0".into()));
    }
    let response = client
        .post_json(&with_query("/commit", &query), None)
        .await?;
    println!("{}", response["Id"].as_str().unwrap_or(""));
    Ok(())
}

pub async fn export(client: &Client, args: ExportArgs) -> Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(fail(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let response = client
        .get(&format!(
            "/containers/{}/export",
            path_segment(&args.container)
        ))
        .await?;
    crate::output::write_body(response, args.output.as_deref(), "export container").await
}

/// `container inspect`: containers only.
pub async fn inspect_containers(client: &Client, args: ContainerInspectArgs) -> Result<()> {
    inspect_objects(
        client,
        &args.names,
        Some("container"),
        args.format.as_deref(),
        args.size,
    )
    .await
}

/// The top-level `inspect`: each name is looked up as a container, then an image
/// (then a network and a volume), unless `--type` names the kind.
pub async fn inspect(client: &Client, args: InspectArgs) -> Result<()> {
    inspect_objects(
        client,
        &args.names,
        args.kind.as_deref(),
        args.format.as_deref(),
        args.size,
    )
    .await
}

async fn inspect_objects(
    client: &Client,
    names: &[String],
    kind: Option<&str>,
    format: Option<&str>,
    size: bool,
) -> Result<()> {
    const KINDS: [&str; 4] = ["container", "image", "network", "volume"];
    let kinds: Vec<&str> = match kind.filter(|k| !k.is_empty()) {
        None => KINDS.to_vec(),
        Some(k) if KINDS.contains(&k) => vec![k],
        Some(k) => return Err(fail(format!("\"{k}\" is not a valid value for --type"))),
    };
    // Parse the template before any request, so a bad one fails fast.
    let template = match format {
        Some(f) if f != "json" && !f.is_empty() => {
            Some(Template::parse(f).map_err(|e| fail(e.to_string()))?)
        }
        _ => None,
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    'names: for name in names {
        for kind in &kinds {
            let path = match *kind {
                "container" => with_query(
                    &format!("/containers/{}/json", path_segment(name)),
                    &[("size", flag(size))],
                ),
                "image" => format!("/images/{}/json", path_segment(name)),
                "network" => format!("/networks/{}", path_segment(name)),
                _ => format!("/volumes/{}", path_segment(name)),
            };
            match client.get_json(&path).await {
                Ok(doc) => {
                    found.push(doc);
                    continue 'names;
                }
                Err(e) if e.is_not_found() => {}
                // Without --type, a kind the daemon cannot look up is skipped.
                Err(ClientError::Daemon { .. }) if kinds.len() > 1 => {}
                Err(e) => return Err(e.into()),
            }
        }
        errors.push(match kinds.as_slice() {
            [only] => format!("Error: No such {only}: {name}"),
            _ => format!("Error: No such object: {name}"),
        });
    }
    match template {
        Some(template) => {
            let mut out = String::new();
            for doc in &found {
                out.push_str(&template.render(doc).map_err(|e| fail(e.to_string()))?);
                out.push('\n');
            }
            print!("{out}");
        }
        None => println!("{}", pretty_json(&Value::Array(found))),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn port_output_like_docker() {
        let ports = json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}],
            "9/udp": null,
        });
        assert_eq!(
            port_lines(&ports, "web", None).unwrap(),
            [
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080",
                "443/tcp -> 0.0.0.0:8443"
            ]
        );
        assert_eq!(
            port_lines(&ports, "web", Some("80")).unwrap(),
            ["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(
            port_lines(&ports, "web", Some("9/udp")).unwrap_err(),
            "Error: No public port '9/udp' published for web"
        );
        assert_eq!(
            port_lines(&ports, "web", Some("81/tcp")).unwrap_err(),
            "Error: No public port '81/tcp' published for web"
        );
        assert_eq!(
            port_lines(&ports, "web", Some("x")).unwrap_err(),
            "Error: invalid port (x): strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            port_lines(&ports, "web", Some("70000/udp")).unwrap_err(),
            "Error: invalid port (70000): strconv.ParseUint: parsing \"70000\": value out of range"
        );
        // An empty host IP prints as docker's `:8080`; no published ports, no lines.
        assert_eq!(
            port_lines(
                &json!({"53/udp": [{"HostIp": "", "HostPort": "53"}]}),
                "dns",
                None
            )
            .unwrap(),
            ["53/udp -> :53"]
        );
        assert!(port_lines(&Value::Null, "web", None).unwrap().is_empty());
    }

    #[test]
    fn private_ports_parse_like_go() {
        assert_eq!(parse_uint16("80"), Ok(80));
        assert_eq!(parse_uint16("0080"), Ok(80));
        assert_eq!(parse_uint16("65535"), Ok(65535));
        assert_eq!(parse_uint16("65536"), Err("value out of range"));
        assert_eq!(parse_uint16("+80"), Err("invalid syntax"));
        assert_eq!(parse_uint16(""), Err("invalid syntax"));
        assert_eq!(parse_uint16("8_0"), Err("invalid syntax"));
    }

    #[test]
    fn change_kinds() {
        assert_eq!([0, 1, 2].map(change_kind), ["C", "A", "D"]);
    }

    #[test]
    fn top_table_has_wide_columns() {
        let out = tabulate_min(&["UID\tPID\tCMD".into(), "root\t1\tsh".into()], 20);
        assert_eq!(
            out,
            format!(
                "UID{}PID{}CMD\nroot{}1{}sh\n",
                " ".repeat(17),
                " ".repeat(17),
                " ".repeat(16),
                " ".repeat(19)
            )
        );
    }
}
