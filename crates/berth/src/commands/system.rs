//! `version`, `info`, `events`.

use anyhow::Result;
use chrono::{DateTime, Local, Utc};
use http_body_util::BodyExt;
use serde_json::Value;

use super::common::{fail, flag_error, parse_filters};
use crate::cli::{DfArgs, EventsArgs, FormatArgs, VersionArgs};
use crate::client::{filter_args_json, with_query, Client, ClientError};
use crate::output::human_size4;
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

/// `events`: the daemon's event stream, one line per event as docker prints it, or
/// through `--format` (`json`, or a template run per event).
pub async fn events(client: &Client, args: EventsArgs) -> Result<()> {
    let filters =
        parse_filters(&args.filter, "-f, --filter").map_err(|e| flag_error("events", &e))?;
    let filters = filter_args_json(&filters).map_err(|e| fail(1, e))?;
    let template = match args.format.as_deref().filter(|f| !f.is_empty()) {
        None => None,
        Some(format) => {
            let format = if format == "json" {
                "{{json .}}"
            } else {
                format
            };
            Some(Template::parse(format).map_err(|e| {
                let message = e.to_string();
                let go_message = message
                    .strip_prefix("template parsing error: ")
                    .unwrap_or(&message);
                fail(64, format!("Error parsing format: {go_message}"))
            })?)
        }
    };
    // docker's client reads both bounds as `GetTimestamp` does for `logs`.
    let now = Local::now();
    let time = |value: &Option<String>| match value.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => super::container::get_timestamp(v, now).map_err(|e| fail(1, e)),
        None => Ok(String::new()),
    };
    let query = [
        ("since", time(&args.since)?),
        ("until", time(&args.until)?),
        ("filters", filters),
    ];
    let response = client.get(&with_query("/events", &query)).await?;
    let mut body = response.into_body();
    let mut buffer: Vec<u8> = Vec::new();
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
            let text = match &template {
                Some(t) => t.render(&event).map_err(|e| fail(1, e))?,
                None => event_line(&event, &Local),
            };
            println!("{text}");
        }
    }
    Ok(())
}

/// docker's `prettyPrintEvent`: the time (`RFC3339NanoFixed`, in `zone`), type,
/// action and actor, then the actor's attributes sorted by name when it has any:
/// `2024-01-01T00:00:00.000000000Z container start 4bed… (image=busybox, name=x)`.
fn event_line<Tz: chrono::TimeZone>(event: &Value, zone: &Tz) -> String {
    let nanos = event["timeNano"].as_i64().unwrap_or(0);
    let nanos = if nanos != 0 {
        nanos
    } else {
        event["time"]
            .as_i64()
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
    };
    let mut out = String::new();
    if nanos != 0 {
        let time = DateTime::<Utc>::from_timestamp(
            nanos.div_euclid(1_000_000_000),
            nanos.rem_euclid(1_000_000_000) as u32,
        );
        if let Some(time) = time.map(|t| t.with_timezone(zone).fixed_offset()) {
            let offset = if time.offset().local_minus_utc() == 0 {
                "Z".to_string()
            } else {
                time.format("%:z").to_string()
            };
            out.push_str(&format!(
                "{}{offset} ",
                time.format("%Y-%m-%dT%H:%M:%S%.9f")
            ));
        }
    }
    out.push_str(&format!(
        "{} {} {}",
        s(&event["Type"]),
        s(&event["Action"]),
        s(&event["Actor"]["ID"])
    ));
    if let Some(attributes) = event["Actor"]["Attributes"]
        .as_object()
        .filter(|a| !a.is_empty())
    {
        let mut pairs: Vec<String> = attributes
            .iter()
            .map(|(k, v)| format!("{k}={}", s(v)))
            .collect();
        pairs.sort();
        out.push_str(&format!(" ({})", pairs.join(", ")));
    }
    out
}

/// docker's headers for the `system df` summary (the others derive from the names).
const DF_HEADERS: &[(&str, &str)] = &[("TotalCount", "TOTAL"), ("Reclaimable", "RECLAIMABLE")];
const DF_TABLE: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const DF_IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const DF_CONTAINERS_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const DF_VOLUMES_TABLE: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const DF_BUILD_CACHE_TABLE: &str = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";
/// docker's headers for build cache fields.
const BUILD_CACHE_HEADERS: &[(&str, &str)] = &[
    ("ID", "CACHE ID"),
    ("CacheType", "CACHE TYPE"),
    ("CreatedSince", "CREATED"),
    ("LastUsedSince", "LAST USED"),
    ("UsageCount", "USAGE"),
    ("InUse", "IN USE"),
];

/// What `GET /system/df` reported, each list empty when missing.
struct DiskUsage {
    layers_size: i64,
    images: Vec<Value>,
    containers: Vec<Value>,
    volumes: Vec<Value>,
    build_cache: Vec<Value>,
}

impl DiskUsage {
    fn from_response(usage: &Value) -> Self {
        let list = |key: &str| usage[key].as_array().cloned().unwrap_or_default();
        DiskUsage {
            layers_size: usage["LayersSize"].as_i64().unwrap_or(0),
            images: list("Images"),
            containers: list("Containers"),
            volumes: list("Volumes"),
            build_cache: list("BuildCache"),
        }
    }

    /// The build cache's size as docker's `system df` counts it: records shared
    /// with others are counted there.
    fn build_cache_size(&self) -> i64 {
        self.build_cache
            .iter()
            .filter(|r| !r["Shared"].as_bool().unwrap_or(false))
            .map(|r| int(&r["Size"]))
            .sum()
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// A container docker counts as active: running, paused or restarting.
fn container_active(c: &Value) -> bool {
    matches!(
        c["State"].as_str().map(str::to_ascii_lowercase).as_deref(),
        Some("running" | "paused" | "restarting")
    )
}

/// docker's "Reclaimable" cell: the size, and its share of the total in whole
/// percent (rounded down) when there is a total.
fn reclaimable_cell(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size4(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        human_size4(reclaimable as f64)
    }
}

/// One summary row, keys in the order docker's JSON output has them.
fn summary_row(kind: &str, total: usize, active: usize, size: i64, reclaimable: String) -> Value {
    serde_json::json!({
        "Active": active.to_string(),
        "Reclaimable": reclaimable,
        "Size": human_size4(size as f64),
        "TotalCount": total.to_string(),
        "Type": kind,
    })
}

/// The four rows of `system df`, computed as docker's CLI does from the lists.
fn summary_rows(du: &DiskUsage) -> Vec<Value> {
    let images_in_use: Vec<&Value> = du
        .images
        .iter()
        .filter(|i| int(&i["Containers"]) > 0)
        .collect();
    // What images in use hold alone cannot be reclaimed; shared layers can't either,
    // but those are counted once in LayersSize.
    let images_used: i64 = du
        .images
        .iter()
        .filter(|i| int(&i["Containers"]) != 0)
        .filter(|i| int(&i["Size"]) != -1 && int(&i["SharedSize"]) != -1)
        .map(|i| int(&i["Size"]) - int(&i["SharedSize"]))
        .sum();
    let images_reclaimable = du.layers_size - images_used;

    let containers_size: i64 = du.containers.iter().map(|c| int(&c["SizeRw"])).sum();
    let containers_reclaimable: i64 = du
        .containers
        .iter()
        .filter(|c| !container_active(c))
        .map(|c| int(&c["SizeRw"]))
        .sum();

    let sized_volumes: Vec<&Value> = du
        .volumes
        .iter()
        .filter(|v| int(&v["UsageData"]["Size"]) != -1)
        .collect();
    let volumes_size: i64 = sized_volumes
        .iter()
        .map(|v| int(&v["UsageData"]["Size"]))
        .sum();
    let volumes_reclaimable: i64 = sized_volumes
        .iter()
        .filter(|v| int(&v["UsageData"]["RefCount"]) == 0)
        .map(|v| int(&v["UsageData"]["Size"]))
        .sum();

    let in_use = |r: &&Value| r["InUse"].as_bool().unwrap_or(false);
    let cache_size = du.build_cache_size();
    let cache_in_use: i64 = du
        .build_cache
        .iter()
        .filter(in_use)
        .filter(|r| !r["Shared"].as_bool().unwrap_or(false))
        .map(|r| int(&r["Size"]))
        .sum();

    vec![
        summary_row(
            "Images",
            du.images.len(),
            images_in_use.len(),
            du.layers_size,
            reclaimable_cell(images_reclaimable, du.layers_size),
        ),
        summary_row(
            "Containers",
            du.containers.len(),
            du.containers.iter().filter(|c| container_active(c)).count(),
            containers_size,
            reclaimable_cell(containers_reclaimable, containers_size),
        ),
        summary_row(
            "Local Volumes",
            du.volumes.len(),
            du.volumes
                .iter()
                .filter(|v| int(&v["UsageData"]["RefCount"]) > 0)
                .count(),
            volumes_size,
            reclaimable_cell(volumes_reclaimable, volumes_size),
        ),
        summary_row(
            "Build Cache",
            du.build_cache.len(),
            du.build_cache.iter().filter(in_use).count(),
            cache_size,
            human_size4((cache_size - cache_in_use) as f64),
        ),
    ]
}

/// The repository and tag `system df -v` shows for an image: its first tag, or
/// `<none>` for a dangling one.
fn df_repo_tag(image: &Value) -> (String, String) {
    let first = image["RepoTags"]
        .as_array()
        .and_then(|tags| tags.first())
        .and_then(Value::as_str)
        .filter(|t| *t != "<none>:<none>");
    match first.map(super::image::split_repo_tag) {
        Some((repo, tag)) if !tag.is_empty() => (repo.to_string(), tag.to_string()),
        _ => ("<none>".to_string(), "<none>".to_string()),
    }
}

/// A build cache record's time, if it has one that parses.
fn record_time(v: &Value) -> Option<DateTime<chrono::FixedOffset>> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
}

fn since(t: DateTime<chrono::FixedOffset>) -> String {
    format!(
        "{} ago",
        crate::output::human_duration((Utc::now() - t.with_timezone(&Utc)).num_seconds())
    )
}

/// One build cache row: the fields of docker's build cache formatter.
fn build_cache_row(record: &Value, trunc: bool) -> Value {
    let id = s(&record["ID"]);
    let shown = if trunc { truncate_id(&id) } else { id };
    let in_use = record["InUse"].as_bool().unwrap_or(false);
    let parents: Vec<String> = record["Parents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    let parent = parents.join(", ");
    let created = record_time(&record["CreatedAt"]);
    let last_used = record_time(&record["LastUsedAt"]);
    serde_json::json!({
        "CacheType": s(&record["Type"]),
        "CreatedAt": created.map(crate::output::go_time_string).unwrap_or_default(),
        "CreatedSince": created.map(since).unwrap_or_default(),
        "Description": s(&record["Description"]),
        "ID": if in_use { format!("{shown}*") } else { shown },
        "InUse": in_use.to_string(),
        "LastUsedAt": last_used.map(crate::output::go_time_string).unwrap_or_default(),
        "LastUsedSince": last_used.map(since).unwrap_or_default(),
        "Parent": if trunc { truncate_id(&parent) } else { parent },
        "Shared": record["Shared"].as_bool().unwrap_or(false).to_string(),
        "Size": crate::output::human_size(int(&record["Size"]) as f64),
        "UsageCount": int(&record["UsageCount"]).to_string(),
    })
}

/// docker's `TruncateID`: what follows the algorithm, at most 12 characters.
fn truncate_id(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, hex)| hex);
    hex.chars().take(12).collect()
}

/// Build cache records in docker's order: never used first, then by last use,
/// then by id.
fn sorted_build_cache(records: &[Value]) -> Vec<&Value> {
    let mut sorted: Vec<&Value> = records.iter().collect();
    sorted.sort_by(|a, b| {
        record_time(&a["LastUsedAt"])
            .cmp(&record_time(&b["LastUsedAt"]))
            .then_with(|| s(&a["ID"]).cmp(&s(&b["ID"])))
    });
    sorted
}

/// The rows of `system df -v`, by section, as docker's formatters give them.
struct VerboseRows {
    images: Vec<Value>,
    containers: Vec<Value>,
    volumes: Vec<Value>,
    build_cache: Vec<Value>,
}

fn verbose_rows(du: &DiskUsage, trunc: bool) -> VerboseRows {
    let images = du
        .images
        .iter()
        .map(|i| {
            let (repo, tag) = df_repo_tag(i);
            super::image::image_row(i, &repo, &tag, "", trunc)
        })
        .collect();
    let containers = du
        .containers
        .iter()
        .map(|c| {
            // docker leaves the virtual size out of this table.
            let mut c = c.clone();
            c["SizeRootFs"] = Value::from(0);
            super::container::ps_row(&c, trunc)
        })
        .collect();
    let volumes = du
        .volumes
        .iter()
        .map(|v| Value::Object(super::volume::volume_row(v, false)))
        .collect();
    let build_cache = sorted_build_cache(&du.build_cache)
        .into_iter()
        .map(|r| build_cache_row(r, trunc))
        .collect();
    VerboseRows {
        images,
        containers,
        volumes,
        build_cache,
    }
}

/// `system df -v` as docker's tables: one per section, each with its header even
/// when it has no rows.
fn verbose_tables(du: &DiskUsage) -> Result<String> {
    let rows = verbose_rows(du, true);
    let table = |format: &str, headers: &[(&str, &str)], rows: &[Value]| {
        crate::output::render_rows(Some(format), format, headers, rows, &[])
    };
    let mut out = String::from("Images space usage:\n\n");
    out.push_str(&table(
        DF_IMAGES_TABLE,
        super::image::IMAGE_HEADERS,
        &rows.images,
    )?);
    out.push_str("\nContainers space usage:\n\n");
    out.push_str(&table(
        DF_CONTAINERS_TABLE,
        super::container::PS_HEADERS,
        &rows.containers,
    )?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    out.push_str(&table(
        DF_VOLUMES_TABLE,
        super::volume::VOLUME_HEADERS,
        &rows.volumes,
    )?);
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size4(du.build_cache_size() as f64)
    ));
    out.push_str(&table(
        DF_BUILD_CACHE_TABLE,
        BUILD_CACHE_HEADERS,
        &rows.build_cache,
    )?);
    Ok(out)
}

/// `system df -v --format`: the template runs once over all four lists (untruncated),
/// and docker adds no newline after it.
fn verbose_custom(du: &DiskUsage, format: &str) -> Result<String> {
    let rows = verbose_rows(du, false);
    let data = serde_json::json!({
        "Images": rows.images,
        "Containers": rows.containers,
        "Volumes": rows.volumes,
        "BuildCache": rows.build_cache,
    });
    let format = if format == "json" {
        "{{json .}}".to_string()
    } else {
        crate::template::split_table(format).1
    };
    let template = Template::parse(&format).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(template.render(&data).map_err(|e| anyhow::anyhow!("{e}"))?)
}

/// `system df`: what images, containers, volumes and the build cache take, as
/// docker's summary table or, with `-v`, its detailed tables.
pub async fn df(client: &Client, args: DfArgs) -> Result<()> {
    let usage = client.get_json("/system/df").await?;
    let du = DiskUsage::from_response(&usage);
    let format = args.format.as_deref().filter(|f| !f.is_empty());
    if args.verbose {
        let out = match format {
            None | Some("table") => verbose_tables(&du)?,
            Some(format) => verbose_custom(&du, format)?,
        };
        print!("{out}");
        return Ok(());
    }
    crate::output::print_rows(format, DF_TABLE, DF_HEADERS, &summary_rows(&du))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn usage() -> DiskUsage {
        DiskUsage::from_response(&json!({
            "LayersSize": 10_000_000,
            "Images": [
                {"Id": "sha256:aaaaaaaaaaaaaaaa", "RepoTags": ["busybox:latest", "busybox:1"],
                 "Created": 0, "Size": 4_000_000, "SharedSize": 1_000_000, "Containers": 2},
                {"Id": "sha256:bbbbbbbbbbbbbbbb", "RepoTags": ["<none>:<none>"],
                 "Created": 0, "Size": 6_000_000, "SharedSize": 1_000_000, "Containers": 0},
            ],
            "Containers": [
                {"Id": "cccccccccccccccccccc", "Names": ["/web"], "Image": "busybox",
                 "Command": "sh", "State": "running", "Status": "Up 1 second",
                 "SizeRw": 300, "SizeRootFs": 4_000_300, "Created": 0},
                {"Id": "dddddddddddddddddddd", "Names": ["/old"], "Image": "busybox",
                 "Command": "true", "State": "exited", "Status": "Exited (0) 1 second ago",
                 "SizeRw": 100, "Created": 0},
            ],
            "Volumes": [
                {"Name": "data", "UsageData": {"RefCount": 1, "Size": 2000}},
                {"Name": "old", "UsageData": {"RefCount": 0, "Size": 1000}},
                {"Name": "unknown", "UsageData": {"RefCount": 0, "Size": -1}},
            ],
            "BuildCache": [
                {"ID": "zzz", "Type": "regular", "Size": 500, "Shared": false, "InUse": true,
                 "CreatedAt": "2024-01-01T00:00:00Z", "LastUsedAt": "2024-01-02T00:00:00Z",
                 "UsageCount": 3},
                {"ID": "yyy", "Type": "regular", "Size": 700, "Shared": false, "InUse": false,
                 "CreatedAt": "2024-01-01T00:00:00Z", "LastUsedAt": null, "UsageCount": 0},
                {"ID": "xxx", "Type": "source.local", "Size": 9000, "Shared": true,
                 "InUse": false, "CreatedAt": "2024-01-01T00:00:00Z",
                 "LastUsedAt": "2024-01-01T00:00:00Z", "UsageCount": 1},
            ],
        }))
    }

    #[test]
    fn event_lines_like_docker() {
        let event = json!({
            "status": "start", "id": "4bed", "from": "busybox",
            "Type": "container", "Action": "start",
            "Actor": {"ID": "4bed", "Attributes": {"name": "x", "image": "busybox"}},
            "scope": "local", "time": 1_704_067_200, "timeNano": 1_704_067_200_000_000_123i64,
        });
        assert_eq!(
            event_line(&event, &Utc),
            "2024-01-01T00:00:00.000000123Z container start 4bed (image=busybox, name=x)"
        );
        let east = chrono::FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            event_line(&event, &east),
            "2024-01-01T01:00:00.000000123+01:00 container start 4bed (image=busybox, name=x)"
        );
        // Seconds only, no attributes: no parentheses.
        let bare = json!({"Type": "network", "Action": "create", "Actor": {"ID": "n1"}, "time": 1_704_067_200});
        assert_eq!(
            event_line(&bare, &Utc),
            "2024-01-01T00:00:00.000000000Z network create n1"
        );
        let t = Template::parse("{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
            .unwrap();
        assert_eq!(t.render(&event).unwrap(), "container start 4bed x");
    }

    #[test]
    fn summary_like_docker() {
        let rows = summary_rows(&usage());
        let text = crate::output::render_rows(None, DF_TABLE, DF_HEADERS, &rows, &[]).unwrap();
        assert_eq!(
            text,
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          2         1         10MB      7MB (70%)\n\
             Containers      2         1         400B      100B (25%)\n\
             Local Volumes   3         1         3kB       1kB (33%)\n\
             Build Cache     3         1         1.2kB     700B\n"
        );
        let json =
            crate::output::render_rows(Some("json"), DF_TABLE, DF_HEADERS, &rows, &[]).unwrap();
        assert_eq!(
            json.lines().next().unwrap(),
            r#"{"Active":"1","Reclaimable":"7MB (70%)","Size":"10MB","TotalCount":"2","Type":"Images"}"#
        );
        // Nothing at all: no percentages.
        let empty = summary_rows(&DiskUsage::from_response(&json!({})));
        assert_eq!(empty[0]["Reclaimable"], "0B");
        assert_eq!(empty[3]["TotalCount"], "0");
    }

    #[test]
    fn verbose_tables_like_docker() {
        let out = verbose_tables(&usage()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Images space usage:");
        assert_eq!(lines[1], "");
        let words = |line: &str| {
            line.split("   ")
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            words(lines[2]),
            [
                "REPOSITORY",
                "TAG",
                "IMAGE ID",
                "CREATED",
                "SIZE",
                "SHARED SIZE",
                "UNIQUE SIZE",
                "CONTAINERS"
            ]
        );
        assert_eq!(
            lines[3],
            "busybox      latest    aaaaaaaaaaaa   56 years ago   4MB       1MB           3MB           2"
                .replace("56 years", &crate::output::human_duration(chrono::Utc::now().timestamp()))
        );
        assert!(lines[4].starts_with("<none>       <none>    bbbbbbbbbbbb"));
        assert_eq!(lines[5], "");
        assert_eq!(lines[6], "Containers space usage:");
        assert_eq!(
            words(lines[8]),
            [
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "LOCAL VOLUMES",
                "SIZE",
                "CREATED",
                "STATUS",
                "NAMES"
            ]
        );
        // The virtual size is left out.
        assert!(lines[9].contains("   300B   ") && !lines[9].contains("virtual"));
        let volumes = lines
            .iter()
            .position(|l| *l == "Local Volumes space usage:")
            .unwrap();
        assert_eq!(words(lines[volumes + 2]), ["VOLUME NAME", "LINKS", "SIZE"]);
        assert_eq!(words(lines[volumes + 3]), ["data", "1", "2kB"]);
        let cache = lines
            .iter()
            .position(|l| l.starts_with("Build cache usage:"))
            .unwrap();
        assert_eq!(lines[cache], "Build cache usage: 1.2kB");
        assert_eq!(
            words(lines[cache + 2]),
            [
                "CACHE ID",
                "CACHE TYPE",
                "SIZE",
                "CREATED",
                "LAST USED",
                "USAGE",
                "SHARED"
            ]
        );
        // Never used first, then by last use; in use marked with `*`.
        assert!(lines[cache + 3].starts_with("yyy "));
        assert!(lines[cache + 4].starts_with("xxx "));
        assert!(lines[cache + 5].starts_with("zzz* "));
        assert!(lines[cache + 5].ends_with("3         false"));
        assert_eq!(lines.len(), cache + 6);
    }

    #[test]
    fn verbose_custom_formats() {
        let du = usage();
        assert_eq!(
            verbose_custom(&du, "{{range .Volumes}}{{.Name}}={{.Size}};{{end}}").unwrap(),
            "data=2kB;old=1kB;unknown=-1B;"
        );
        let json = verbose_custom(&du, "json").unwrap();
        let parsed: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["Images"][0]["ID"], "sha256:aaaaaaaaaaaaaaaa");
        assert_eq!(parsed["BuildCache"][2]["ID"], "zzz*");
        assert_eq!(parsed["Containers"][1]["Names"], "old");
    }
}
