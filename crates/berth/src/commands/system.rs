//! `version`, `info`, `events`.

use anyhow::Result;
use chrono::{DateTime, Local, Utc};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::cli::{DfArgs, EventsArgs, FormatArgs, VersionArgs};
use crate::client::{filters_json, with_query, Client, ClientError};
use crate::template::Template;

pub async fn version(client: &Client, args: VersionArgs) -> Result<()> {
    let client_info = serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": crate::client::API_VERSION,
        "Os": "linux",
        "Arch": std::env::consts::ARCH,
    });
    let server = client.get_json("/version").await;
    if let Some(format) = args.format {
        let data = serde_json::json!({"Client": client_info, "Server": server.as_ref().ok()});
        let t = Template::parse(&format).map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("{}", t.render(&data).map_err(|e| anyhow::anyhow!("{e}"))?);
        return server.map(|_| ()).map_err(Into::into);
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", crate::client::API_VERSION);
    println!(" OS/Arch:           linux/{}", std::env::consts::ARCH);
    let server = server?;
    println!();
    println!(
        "Server: {}",
        server["Platform"]["Name"].as_str().unwrap_or("berth")
    );
    println!(" Engine:");
    println!("  Version:          {}", s(&server["Version"]));
    println!(
        "  API version:      {} (minimum version {})",
        s(&server["ApiVersion"]),
        s(&server["MinAPIVersion"])
    );
    println!("  Git commit:       {}", s(&server["GitCommit"]));
    println!(
        "  OS/Arch:          {}/{}",
        s(&server["Os"]),
        s(&server["Arch"])
    );
    println!("  Kernel version:   {}", s(&server["KernelVersion"]));
    Ok(())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub async fn info(client: &Client, args: FormatArgs) -> Result<()> {
    let info = client.get_json("/info").await?;
    if let Some(format) = args.format {
        let t = Template::parse(&format).map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("{}", t.render(&info).map_err(|e| anyhow::anyhow!("{e}"))?);
        return Ok(());
    }
    let mut out = String::new();
    out.push_str("Client:\n");
    out.push_str(&format!(" Version:    {}\n", env!("CARGO_PKG_VERSION")));
    out.push_str(&format!(" Context:    {}\n\n", client.host()));
    out.push_str("Server:\n");
    let line = |out: &mut String, k: &str, v: String| out.push_str(&format!(" {k}: {v}\n"));
    line(&mut out, "Containers", s(&info["Containers"]));
    line(&mut out, " Running", s(&info["ContainersRunning"]));
    line(&mut out, " Paused", s(&info["ContainersPaused"]));
    line(&mut out, " Stopped", s(&info["ContainersStopped"]));
    line(&mut out, "Images", s(&info["Images"]));
    line(&mut out, "Server Version", s(&info["ServerVersion"]));
    line(&mut out, "Storage Driver", s(&info["Driver"]));
    line(&mut out, "Logging Driver", s(&info["LoggingDriver"]));
    line(&mut out, "Cgroup Driver", s(&info["CgroupDriver"]));
    line(&mut out, "Cgroup Version", s(&info["CgroupVersion"]));
    line(
        &mut out,
        "Live Restore Enabled",
        s(&info["LiveRestoreEnabled"]),
    );
    line(&mut out, "Kernel Version", s(&info["KernelVersion"]));
    line(&mut out, "Operating System", s(&info["OperatingSystem"]));
    line(&mut out, "OSType", s(&info["OSType"]));
    line(&mut out, "Architecture", s(&info["Architecture"]));
    line(&mut out, "CPUs", s(&info["NCPU"]));
    line(
        &mut out,
        "Total Memory",
        human_binary(info["MemTotal"].as_f64().unwrap_or(0.0)),
    );
    line(&mut out, "Name", s(&info["Name"]));
    line(&mut out, "ID", s(&info["ID"]));
    line(&mut out, "Docker Root Dir", s(&info["DockerRootDir"]));
    line(&mut out, "Debug Mode", s(&info["Debug"]));
    if let Some(mirrors) = info["RegistryConfig"]["Mirrors"]
        .as_array()
        .filter(|m| !m.is_empty())
    {
        out.push_str(" Registry Mirrors:\n");
        for m in mirrors {
            out.push_str(&format!("  {}\n", s(m)));
        }
    }
    if let Some(insecure) = info["RegistryConfig"]["InsecureRegistryCIDRs"].as_array() {
        out.push_str(" Insecure Registries:\n");
        for r in insecure {
            out.push_str(&format!("  {}\n", s(r)));
        }
    }
    if let Some(security) = info["SecurityOptions"].as_array() {
        out.push_str(" Security Options:\n");
        for opt in security {
            out.push_str(&format!(
                "  {}\n",
                s(opt)
                    .trim_start_matches("name=")
                    .replace(",profile=", "\n   Profile: ")
            ));
        }
    }
    print!("{out}");
    for warning in info["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", s(warning));
    }
    Ok(())
}

/// `units.BytesSize`: binary units with two decimals, as "Total Memory: 23.47GiB".
fn human_binary(size: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = size;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{:.4}", value)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
        + UNITS[unit]
}

/// Docker's `--since`/`--until`: a unix time, an RFC 3339 time, or a duration ago (`10m`).
fn event_time(raw: &str) -> Result<String> {
    if raw.parse::<f64>().is_ok() {
        return Ok(raw.to_string());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    let (num, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid time {raw:?}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => anyhow::bail!("invalid time {raw:?}"),
    };
    Ok((Utc::now().timestamp() - secs).to_string())
}

pub async fn events(client: &Client, args: EventsArgs) -> Result<()> {
    let filters = filters_json(&args.filter).map_err(|e| anyhow::anyhow!(e))?;
    let mut query = vec![("filters", filters)];
    if let Some(since) = &args.since {
        query.push(("since", event_time(since)?));
    }
    if let Some(until) = &args.until {
        query.push(("until", event_time(until)?));
    }
    let response = client.get(&with_query("/events", &query)).await?;
    let mut body = response.into_body();
    let mut buffer: Vec<u8> = Vec::new();
    let template = match args.format.as_deref() {
        Some("json") | None => None,
        Some(f) => Some(Template::parse(f).map_err(|e| anyhow::anyhow!("{e}"))?),
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ClientError::Transport(e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            buffer.extend_from_slice(data);
        }
        while let Some(pos) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=pos).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if args.format.as_deref() == Some("json") {
                println!("{event}");
            } else if let Some(t) = &template {
                println!("{}", t.render(&event).map_err(|e| anyhow::anyhow!("{e}"))?);
            } else {
                println!("{}", event_line(&event));
            }
        }
    }
    Ok(())
}

/// `2024-01-01T10:00:00.000000000+00:00 image tag sha256:… (name=busybox:latest)`.
fn event_line(event: &Value) -> String {
    let nanos = event["timeNano"].as_i64().unwrap_or(0);
    let time =
        DateTime::<Utc>::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
            .map(|t| {
                t.with_timezone(&Local)
                    .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
                    .to_string()
            })
            .unwrap_or_default();
    let attributes: Vec<String> = event["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            pairs.iter().map(|(k, v)| format!("{k}={}", s(v))).collect()
        })
        .unwrap_or_default();
    format!(
        "{time} {} {} {} ({})",
        s(&event["Type"]),
        s(&event["Action"]),
        s(&event["Actor"]["ID"]),
        attributes.join(", ")
    )
}

/// `system df`: Docker's summary of what images, containers and volumes take.
pub async fn df(client: &Client, args: DfArgs) -> Result<()> {
    let usage = client.get_json("/system/df").await?;
    let list = |key: &str| usage[key].as_array().cloned().unwrap_or_default();
    let images = list("Images");
    let containers = list("Containers");
    let volumes = list("Volumes");
    let num = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let layers = num(&usage, "LayersSize");
    let images_unused: f64 = images
        .iter()
        .filter(|i| num(i, "Containers") == 0.0)
        .map(|i| num(i, "Size"))
        .sum();
    let running = |c: &&Value| c["State"] == "running" || c["State"] == "paused";
    let containers_size: f64 = containers.iter().map(|c| num(c, "SizeRw")).sum();
    let containers_reclaim: f64 = containers
        .iter()
        .filter(|c| !running(c))
        .map(|c| num(c, "SizeRw"))
        .sum();
    let volumes_size: f64 = volumes.iter().map(|v| num(&v["UsageData"], "Size")).sum();
    let volumes_reclaim: f64 = volumes
        .iter()
        .filter(|v| num(&v["UsageData"], "RefCount") == 0.0)
        .map(|v| num(&v["UsageData"], "Size"))
        .sum();
    let reclaim = |part: f64, total: f64| {
        if total > 0.0 {
            format!(
                "{} ({}%)",
                crate::output::human_size(part),
                (part * 100.0 / total).round() as i64
            )
        } else {
            crate::output::human_size(part)
        }
    };
    let rows = vec![
        serde_json::json!({"Type": "Images", "TotalCount": images.len().to_string(),
            "Active": images.iter().filter(|i| num(i, "Containers") > 0.0).count().to_string(),
            "Size": crate::output::human_size(layers), "Reclaimable": reclaim(images_unused.min(layers), layers)}),
        serde_json::json!({"Type": "Containers", "TotalCount": containers.len().to_string(),
            "Active": containers.iter().filter(running).count().to_string(),
            "Size": crate::output::human_size(containers_size), "Reclaimable": reclaim(containers_reclaim, containers_size)}),
        serde_json::json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(),
            "Active": volumes.iter().filter(|v| num(&v["UsageData"], "RefCount") > 0.0).count().to_string(),
            "Size": crate::output::human_size(volumes_size), "Reclaimable": reclaim(volumes_reclaim, volumes_size)}),
        serde_json::json!({"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
    ];
    if args.verbose {
        println!("Images space usage:\n");
        for i in &images {
            println!(
                "{}\t{}\t{}",
                i["RepoTags"]
                    .get(0)
                    .and_then(|t| t.as_str())
                    .unwrap_or("<none>"),
                crate::output::short_id(i["Id"].as_str().unwrap_or("")),
                crate::output::human_size(num(i, "Size"))
            );
        }
        println!("\nLocal Volumes space usage:\n");
        for v in &volumes {
            println!(
                "{}\t{}\t{}",
                v["Name"].as_str().unwrap_or(""),
                num(&v["UsageData"], "RefCount"),
                crate::output::human_size(num(&v["UsageData"], "Size"))
            );
        }
        return Ok(());
    }
    crate::output::print_rows(
        args.format.as_deref(),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        &[("TotalCount", "TOTAL"), ("Reclaimable", "RECLAIMABLE")],
        &rows,
    )
}
