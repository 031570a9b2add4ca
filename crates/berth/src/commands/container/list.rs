//! `ps` and `stats`: container tables with docker's columns, truncation rules and
//! `--format` fields, and the CPU/memory arithmetic of `docker stats`.

use std::io::IsTerminal;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::{fail, join_host_port};
use crate::cli::{PsArgs, StatsArgs};
use crate::client::{filters_json, path_segment, with_query, Client, ClientError};
use crate::output::{ago, go_time, human_size, render_rows, short_id};

/// docker's header names for `ps` fields.
pub(crate) const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Label", "LABEL"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("HealthStatus", "HEALTH STATUS"),
];

const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// docker's `Ellipsis`: at most `width` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, width: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    if width == 1 {
        return chars[0].to_string();
    }
    let mut out: String = chars[..width - 1].iter().collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`: double quotes, with quotes, backslashes and control
/// characters escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// docker's `DisplayablePorts`: consecutive unpublished ports grouped into ranges,
/// published ones as `ip:public->private/proto`.
pub fn displayable_ports(ports: &[Value]) -> String {
    struct Port {
        ip: String,
        private: u64,
        public: u64,
        kind: String,
    }
    let mut ports: Vec<Port> = ports
        .iter()
        .map(|p| Port {
            ip: p["IP"].as_str().unwrap_or("").to_string(),
            private: p["PrivatePort"].as_u64().unwrap_or(0),
            public: p["PublicPort"].as_u64().unwrap_or(0),
            kind: p["Type"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    ports.sort_by(|a, b| {
        a.private
            .cmp(&b.private)
            .then_with(|| a.ip.cmp(&b.ip))
            .then_with(|| a.public.cmp(&b.public))
            .then_with(|| a.kind.cmp(&b.kind))
    });
    let form_group = |key: &str, first: u64, last: u64| {
        let (ip, kind) = match key.rsplit_once('/') {
            Some((ip, kind)) => (ip, kind),
            None => ("", key),
        };
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{}->{group}", join_host_port(ip, &group));
        }
        format!("{group}/{kind}")
    };
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for port in &ports {
        let mut key = port.kind.clone();
        if !port.ip.is_empty() {
            if port.public != port.private {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&port.ip, &port.public.to_string()),
                    port.private,
                    port.kind
                ));
                continue;
            }
            key = format!("{}/{}", port.ip, port.kind);
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, port.private, port.private)),
            Some(group) if port.private == group.2 + 1 => group.2 = port.private,
            Some(group) => {
                result.push(form_group(&group.0, group.1, group.2));
                group.1 = port.private;
                group.2 = port.private;
            }
        }
    }
    for (key, first, last) in &groups {
        result.push(form_group(key, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

/// One `ps` row: the fields docker's container formatter offers, by name.
pub(crate) fn ps_row(c: &Value, trunc: bool) -> Value {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let id = s(&c["Id"]);
    let image = s(&c["Image"]);
    let image_shown = if image.is_empty() {
        "<no image>".to_string()
    } else if trunc {
        let image_id = s(&c["ImageID"]);
        if short_id(&image_id) == short_id(&image) {
            short_id(&image)
        } else {
            // Truncate a digest reference to its name (`busybox@sha256:…` -> `busybox`).
            image.split('@').next().unwrap_or(&image).to_string()
        }
    } else {
        image
    };
    let mut names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| s(n).trim_start_matches('/').to_string())
        .collect();
    if trunc {
        // Links show up as `other/alias`: keep the container's own name.
        if let Some(own) = names.iter().find(|n| !n.contains('/')) {
            names = vec![own.clone()];
        }
    }
    let command = s(&c["Command"]);
    let command = if trunc {
        ellipsis(&command, 20)
    } else {
        command
    };
    let created = c["Created"].as_i64().unwrap_or(0);
    let size_rw = c["SizeRw"].as_f64().unwrap_or(0.0);
    let size_root = c["SizeRootFs"].as_f64().unwrap_or(0.0);
    let size = if size_root > 0.0 {
        format!(
            "{} (virtual {})",
            human_size(size_rw),
            human_size(size_root)
        )
    } else {
        human_size(size_rw)
    };
    let mut label_pairs: Vec<String> = c["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    label_pairs.sort();
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["Name"].as_str().filter(|n| !n.is_empty());
            let name = name.map_or_else(|| s(&m["Source"]), str::to_string);
            if trunc {
                ellipsis(&name, 15)
            } else {
                name
            }
        })
        .collect();
    let local_volumes = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"].as_str() == Some("local"))
        .count();
    let mut networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let ports: Vec<Value> = c["Ports"].as_array().cloned().unwrap_or_default();
    let mut row = Map::new();
    row.insert("Command".into(), json!(go_quote(&command)));
    row.insert("CreatedAt".into(), json!(go_time(created)));
    row.insert("HealthStatus".into(), json!(s(&c["Health"]["Status"])));
    row.insert("ID".into(), json!(if trunc { short_id(&id) } else { id }));
    row.insert("Image".into(), json!(image_shown));
    row.insert("Labels".into(), json!(label_pairs.join(",")));
    row.insert("LocalVolumes".into(), json!(local_volumes.to_string()));
    row.insert("Mounts".into(), json!(mounts.join(",")));
    row.insert("Names".into(), json!(names.join(",")));
    row.insert("Networks".into(), json!(networks.join(",")));
    row.insert("Ports".into(), json!(displayable_ports(&ports)));
    row.insert("RunningFor".into(), json!(ago(created)));
    row.insert("Size".into(), json!(size));
    row.insert("State".into(), json!(s(&c["State"])));
    row.insert("Status".into(), json!(s(&c["Status"])));
    Value::Object(row)
}

/// The one-argument methods of a `ps` row: `{{.Label "k"}}` answers from the
/// container's labels, while `{{.Labels}}` stays docker's `k=v,...` string.
pub(crate) fn ps_methods(c: &Value) -> Value {
    let labels = c["Labels"].as_object().cloned().unwrap_or_default();
    json!({ "Label": labels })
}

pub async fn ps(client: &Client, args: PsArgs) -> Result<()> {
    let filters = filters_json(&args.filter).map_err(fail)?;
    let mut limit = args.last;
    if args.latest && limit == -1 {
        limit = 1;
    }
    let format = args.format.clone().filter(|f| !f.is_empty());
    // docker asks for sizes when a custom format prints them.
    let size = args.size || format.as_deref().is_some_and(|f| f.contains(".Size"));
    let path = with_query(
        "/containers/json",
        &[
            ("all", if args.all { "1".into() } else { String::new() }),
            (
                "limit",
                if limit > 0 {
                    limit.to_string()
                } else {
                    String::new()
                },
            ),
            ("size", if size { "1".into() } else { String::new() }),
            ("filters", filters),
        ],
    );
    let containers = client.get_json(&path).await?;
    let trunc = !args.no_trunc;
    let containers: &[Value] = containers.as_array().map_or(&[], Vec::as_slice);
    let rows: Vec<Value> = containers.iter().map(|c| ps_row(c, trunc)).collect();
    let methods: Vec<Value> = containers.iter().map(ps_methods).collect();
    // -q prints ids unless a custom format asks for more (docker's "table" counts
    // as no format here).
    if args.quiet && format.as_deref().is_none_or(|f| f == "table") {
        let mut out = String::new();
        for row in &rows {
            out.push_str(row["ID"].as_str().unwrap_or(""));
            out.push('\n');
        }
        print!("{out}");
        return Ok(());
    }
    let default = if args.size {
        format!("{PS_TABLE}\t{{{{.Size}}}}")
    } else {
        PS_TABLE.to_string()
    };
    print!(
        "{}",
        render_rows(format.as_deref(), &default, PS_HEADERS, &rows, &methods)?
    );
    Ok(())
}

/// docker's header names for `stats` fields.
const STATS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

const STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// docker's `calculateCPUPercentUnix`: the container's share of the system's CPU
/// time between the two samples, times the number of CPUs.
pub fn cpu_percent(stats: &Value) -> f64 {
    let cpu = &stats["cpu_stats"];
    let pre = &stats["precpu_stats"];
    let cpu_delta = cpu["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0)
        - pre["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0);
    let system_delta = cpu["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - pre["system_cpu_usage"].as_f64().unwrap_or(0.0);
    let mut online = cpu["online_cpus"].as_f64().unwrap_or(0.0);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0.0, |a| a.len() as f64);
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    }
}

/// docker's memory usage without the page cache: usage less inactive file pages
/// (`total_inactive_file` on cgroup v1, `inactive_file` on v2).
pub fn memory_usage(stats: &Value) -> f64 {
    let mem = &stats["memory_stats"];
    let usage = mem["usage"].as_f64().unwrap_or(0.0);
    if let Some(v) = mem["stats"]["total_inactive_file"].as_f64() {
        if v < usage {
            return usage - v;
        }
    }
    match mem["stats"]["inactive_file"].as_f64() {
        Some(v) if v < usage => usage - v,
        _ => usage,
    }
}

/// Total received and sent bytes over all networks.
fn network_io(stats: &Value) -> (f64, f64) {
    let mut rx = 0.0;
    let mut tx = 0.0;
    for net in stats["networks"].as_object().into_iter().flatten() {
        rx += net.1["rx_bytes"].as_f64().unwrap_or(0.0);
        tx += net.1["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    (rx, tx)
}

/// Total read and written bytes from the recursive blkio service-bytes entries.
fn block_io(stats: &Value) -> (f64, f64) {
    let mut read = 0.0;
    let mut write = 0.0;
    for entry in stats["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let value = entry["value"].as_f64().unwrap_or(0.0);
        match entry["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += value,
            Some("write") => write += value,
            _ => {}
        }
    }
    (read, write)
}

/// go-units' `BytesSize`: binary units, four significant digits (`1.5MiB`).
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut value = size;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{}{}", go_g(value, 4), UNITS[unit])
}

/// Go's `%.Ng` for the small non-negative values sizes produce.
fn go_g(value: f64, precision: i32) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let exponent = value.abs().log10().floor() as i32;
    let decimals = (precision - 1 - exponent).max(0) as usize;
    let s = format!("{value:.decimals$}");
    // Rounding may carry into one more digit (999.95 -> "1000.0"); trim zeros.
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// One `stats` row, docker's fields already formatted.
fn stats_row(container_arg: &str, id: &str, name: &str, stats: &Value, trunc: bool) -> Value {
    let memory = memory_usage(stats);
    let limit = stats["memory_stats"]["limit"].as_f64().unwrap_or(0.0);
    let mem_percent = if limit != 0.0 {
        memory / limit * 100.0
    } else {
        0.0
    };
    let (rx, tx) = network_io(stats);
    let (read, write) = block_io(stats);
    json!({
        "BlockIO": format!("{} / {}", human_size(read), human_size(write)),
        "CPUPerc": format!("{:.2}%", cpu_percent(stats)),
        "Container": container_arg,
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "MemPerc": format!("{mem_percent:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(memory), bytes_size(limit)),
        "Name": name.trim_start_matches('/'),
        "NetIO": format!("{} / {}", human_size(rx), human_size(tx)),
        "PIDs": stats["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

/// One sample for each container: `(argument, stats)`; missing containers drop out.
async fn sample(client: &Client, targets: &[String]) -> Vec<(String, Value)> {
    let requests = targets.iter().map(|target| async move {
        let path = format!("/containers/{}/stats?stream=false", path_segment(target));
        (target.clone(), client.get_json(&path).await)
    });
    futures_util::future::join_all(requests)
        .await
        .into_iter()
        .filter_map(|(target, result)| result.ok().map(|s| (target, s)))
        .collect()
}

pub async fn stats(client: &Client, args: StatsArgs) -> Result<()> {
    let trunc = !args.no_trunc;
    let named = !args.containers.is_empty();
    // Named containers must exist, like docker's "No such container" at the start.
    if named {
        let mut errors = Vec::new();
        for name in &args.containers {
            match super::inspect_container(client, name, false).await {
                Ok(_) => {}
                Err(e @ ClientError::Daemon { .. }) => errors.push(e.to_string()),
                Err(e) => return Err(e.into()),
            }
        }
        if !errors.is_empty() {
            return Err(fail(errors.join("\n")));
        }
    }
    let stream = !args.no_stream;
    let redraw = stream && std::io::stdout().is_terminal();
    loop {
        let started = std::time::Instant::now();
        let targets: Vec<String> = if named {
            args.containers.clone()
        } else {
            let path = with_query(
                "/containers/json",
                &[("all", if args.all { "1".into() } else { String::new() })],
            );
            client
                .get_json(&path)
                .await?
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["Id"].as_str().map(str::to_string))
                .collect()
        };
        let rows: Vec<Value> = sample(client, &targets)
            .await
            .iter()
            .map(|(target, s)| {
                let id = s["id"].as_str().unwrap_or(target);
                let name = s["name"].as_str().unwrap_or("");
                stats_row(target, id, name, s, trunc)
            })
            .collect();
        let table = render_rows(
            args.format.as_deref(),
            STATS_TABLE,
            STATS_HEADERS,
            &rows,
            &[],
        )?;
        write_frame(&stats_frame(&table, redraw))?;
        if !stream {
            return Ok(());
        }
        // One frame a second, however long the samples took.
        let period = std::time::Duration::from_secs(1);
        tokio::time::sleep(period.saturating_sub(started.elapsed())).await;
    }
}

/// One screen of `stats`: on a terminal docker clears it and starts at the top, so
/// the table redraws in place; elsewhere the tables follow one another.
fn stats_frame(table: &str, redraw: bool) -> String {
    if redraw {
        format!("\x1b[2J\x1b[H{table}")
    } else {
        table.to_string()
    }
}

/// Writes a frame in one go, so a terminal never shows half a table.
fn write_frame(frame: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(frame.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_truncation_and_quoting() {
        assert_eq!(ellipsis("sh", 20), "sh");
        assert_eq!(
            ellipsis("/docker-entrypoint.sh nginx -g daemon off;", 20),
            "/docker-entrypoint.…"
        );
        assert_eq!(ellipsis(&"a".repeat(20), 20), "a".repeat(20));
        assert_eq!(go_quote("sh -c \"echo\"\n"), "\"sh -c \\\"echo\\\"\\n\"");
        assert_eq!(go_quote("/docker-entrypoint.…"), "\"/docker-entrypoint.…\"");
    }

    #[test]
    fn ps_rows_like_docker() {
        let c = json!({
            "Id": "4bed76d3ad428b889c56c1ecc2bf2ed95cb08256db22dc5ef5863e1d03252a19",
            "Names": ["/test", "/other/alias"],
            "Image": "nginx:alpine",
            "ImageID": "sha256:1111",
            "Command": "/docker-entrypoint.sh nginx -g 'daemon off;'",
            "Created": 0,
            "Ports": [{"PrivatePort": 80, "Type": "tcp"}],
            "Labels": {"b": "2", "a": "1"},
            "State": "running",
            "Status": "Up 2 seconds",
            "NetworkSettings": {"Networks": {"bridge": {}}},
            "Mounts": [{"Name": "0123456789abcdef0123", "Driver": "local"}],
        });
        let row = ps_row(&c, true);
        assert_eq!(row["ID"], "4bed76d3ad42");
        assert_eq!(row["Names"], "test");
        assert_eq!(row["Command"], "\"/docker-entrypoint.…\"");
        assert_eq!(row["Ports"], "80/tcp");
        assert_eq!(row["Labels"], "a=1,b=2");
        assert_eq!(row["Mounts"], "0123456789abcd…");
        assert_eq!(row["LocalVolumes"], "1");
        assert_eq!(row["Networks"], "bridge");
        assert_eq!(row["Size"], "0B");
        let full = ps_row(&c, false);
        assert_eq!(full["Names"], "test,other/alias");
        assert_eq!(full["Labels"], "a=1,b=2");
        assert_eq!(full["ID"].as_str().unwrap().len(), 64);
        let digest = json!({"Image": "busybox@sha256:abcd", "ImageID": "sha256:ffff"});
        assert_eq!(ps_row(&digest, true)["Image"], "busybox");
        let by_id =
            json!({"Image": "sha256:0123456789abcdef", "ImageID": "sha256:0123456789abcdef"});
        assert_eq!(ps_row(&by_id, true)["Image"], "0123456789ab");
    }

    #[test]
    fn ps_format_fields_like_docker() {
        let c = json!({
            "Id": "4bed76d3ad428b889c56c1ecc2bf2ed95cb08256db22dc5ef5863e1d03252a19",
            "Names": ["/web"],
            "Image": "nginx",
            "Labels": {"com.example.tier": "front", "a": "1"},
            "State": "running",
            "Status": "Up 3 minutes (healthy)",
            "SizeRw": 1234, "SizeRootFs": 5_000_000,
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
            "NetworkSettings": {"Networks": {"front": {}, "back": {}}},
            "Mounts": [{"Name": "data", "Source": "/var/lib/x"}, {"Source": "/etc/hosts"}],
        });
        let rows = [ps_row(&c, true)];
        let methods = [ps_methods(&c)];
        let format = r#"{{.Names}}|{{.Status}}|{{.Size}}|{{.Ports}}|{{.Networks}}|{{.Mounts}}|{{.Label "com.example.tier"}}|{{.Label "none"}}|{{.Labels}}"#;
        assert_eq!(
            render_rows(Some(format), PS_TABLE, PS_HEADERS, &rows, &methods).unwrap(),
            "web|Up 3 minutes (healthy)|1.23kB (virtual 5MB)|0.0.0.0:8080->80/tcp|back,front|data,/etc/hosts|front||a=1,com.example.tier=front\n"
        );
        let table = render_rows(
            Some("table {{.ID}}\t{{.Label \"a\"}}"),
            PS_TABLE,
            PS_HEADERS,
            &rows,
            &methods,
        )
        .unwrap();
        assert_eq!(table, "CONTAINER ID   LABEL\n4bed76d3ad42   1\n");
        // `json` prints the row's fields only, without the methods.
        let json_line = render_rows(Some("json"), PS_TABLE, PS_HEADERS, &rows, &methods).unwrap();
        assert!(json_line.contains(r#""Labels":"a=1,com.example.tier=front""#));
        assert!(!json_line.contains(r#""Label":"#));
    }

    #[test]
    fn ports_grouped_like_docker() {
        let p = |ip: &str, private: u64, public: u64, kind: &str| json!({"IP": ip, "PrivatePort": private, "PublicPort": public, "Type": kind});
        assert_eq!(
            displayable_ports(&[
                p("", 81, 0, "tcp"),
                p("", 80, 0, "tcp"),
                p("", 82, 0, "tcp"),
                p("", 90, 0, "tcp"),
                p("", 53, 0, "udp"),
            ]),
            // docker's order: groups closed early come first, then open ones in
            // the order they were opened.
            "80-82/tcp, 53/udp, 90/tcp"
        );
        assert_eq!(
            displayable_ports(&[p("0.0.0.0", 80, 8080, "tcp"), p("::", 80, 8080, "tcp")]),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(
            displayable_ports(&[p("0.0.0.0", 9000, 9000, "tcp")]),
            "0.0.0.0:9000->9000/tcp"
        );
        assert_eq!(displayable_ports(&[]), "");
    }

    #[test]
    fn cpu_and_memory_like_docker_stats() {
        let s = json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 400_000_000u64}, "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 200_000_000u64}, "system_cpu_usage": 10_000_000_000u64},
            "memory_stats": {"usage": 10_485_760u64, "limit": 104_857_600u64, "stats": {"inactive_file": 2_097_152u64}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 500}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"op": "read", "value": 4096}, {"op": "Write", "value": 1_000_000}, {"op": "total", "value": 9}
            ]},
            "pids_stats": {"current": 3},
        });
        assert!((cpu_percent(&s) - 4.0).abs() < 1e-9);
        assert_eq!(memory_usage(&s), 8_388_608.0);
        let row = stats_row("web", "4bed76d3ad428b889c56", "/web", &s, true);
        assert_eq!(row["CPUPerc"], "4.00%");
        assert_eq!(row["MemUsage"], "8MiB / 100MiB");
        assert_eq!(row["MemPerc"], "8.00%");
        assert_eq!(row["NetIO"], "2kB / 500B");
        assert_eq!(row["BlockIO"], "4.1kB / 1MB");
        assert_eq!(row["PIDs"], "3");
        assert_eq!(row["Name"], "web");
        assert_eq!(row["ID"], "4bed76d3ad42");
        // No previous sample: 0%, not NaN.
        assert_eq!(cpu_percent(&json!({})), 0.0);
        let v1 = json!({"memory_stats": {"usage": 100, "stats": {"total_inactive_file": 30}}});
        assert_eq!(memory_usage(&v1), 70.0);
    }

    #[test]
    fn stats_frames_redraw_only_on_a_terminal() {
        assert_eq!(stats_frame("T\n", true), "\x1b[2J\x1b[HT\n");
        assert_eq!(stats_frame("T\n", false), "T\n");
    }

    #[test]
    fn binary_sizes() {
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(bytes_size(8_200_000_000.0), "7.637GiB");
        assert_eq!(bytes_size(1023.0), "1023B");
    }
}
