//! `volume` commands: create, ls, inspect, rm, prune, with docker's output, error
//! wording and exit statuses (its cli/command/volume).

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::common::{
    fail, flag_error, natural_cmp, parse_filters, parse_labels, parse_opts, str_of,
    uses_label_method, InspectFormat,
};
use crate::cli::{VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumeRmArgs};
use crate::client::{filters_json, path_segment, with_query, Client};
use crate::output::{human_size4, print_rows};

/// docker's `defaultVolumeTableFormat`.
const LS_TABLE: &str = "table {{.Driver}}\t{{.Name}}";
/// docker's `defaultVolumeQuietFormat`.
const LS_QUIET: &str = "{{.Name}}";

/// Docker's header names for volume list fields (the others are derived from the
/// field name, which gives the same result).
pub(crate) const VOLUME_HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
];

/// One `volume ls` row: the fields docker's volume context offers, keys in the order
/// Go's JSON encoder prints them, plus `CreatedAt` for templates. `Links` and `Size`
/// come from `UsageData`, which the daemon fills in for `system df` only.
pub(crate) fn volume_row(volume: &Value, label_objects: bool) -> Map<String, Value> {
    let label_map = volume["Labels"].as_object().cloned().unwrap_or_default();
    let mut pairs: Vec<String> = label_map
        .iter()
        .map(|(k, v)| format!("{k}={}", str_of(v)))
        .collect();
    pairs.sort();
    let labels = if label_objects {
        Value::Object(label_map)
    } else {
        json!(pairs.join(","))
    };
    let mut row = Map::new();
    row.insert("Driver".into(), json!(str_of(&volume["Driver"])));
    row.insert("Labels".into(), labels);
    let usage = &volume["UsageData"];
    let (links, size) = if usage.is_object() {
        (
            usage["RefCount"].as_i64().unwrap_or(0).to_string(),
            human_size4(usage["Size"].as_f64().unwrap_or(0.0)),
        )
    } else {
        ("N/A".to_string(), "N/A".to_string())
    };
    row.insert("Links".into(), json!(links));
    row.insert("Mountpoint".into(), json!(str_of(&volume["Mountpoint"])));
    row.insert("Name".into(), json!(str_of(&volume["Name"])));
    row.insert("Scope".into(), json!(str_of(&volume["Scope"])));
    row.insert("Size".into(), json!(size));
    row.insert("CreatedAt".into(), json!(str_of(&volume["CreatedAt"])));
    row
}

/// The template `volume ls` prints with: docker's `NewVolumeFormat`.
fn ls_format(format: Option<&str>, quiet: bool) -> &str {
    match format.filter(|f| !f.is_empty()) {
        None | Some("table") if quiet => LS_QUIET,
        None | Some("table") => LS_TABLE,
        Some("raw") if quiet => "name: {{.Name}}",
        Some("raw") => "name: {{.Name}}\\ndriver: {{.Driver}}\\n",
        Some(f) => f,
    }
}

pub async fn create(client: &Client, args: VolumeCreateArgs) -> Result<()> {
    let mut name = args.name.clone().unwrap_or_default();
    if let Some(positional) = &args.volume {
        if !name.is_empty() {
            return Err(fail(
                1,
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
            ));
        }
        name = positional.clone();
    }
    let labels = parse_labels(&args.label).map_err(|e| flag_error("volume create", &e))?;
    let body = json!({
        "Name": name,
        "Driver": args.driver,
        "DriverOpts": parse_opts(&args.opt),
        "Labels": labels,
    });
    let volume = client.post_json("/volumes/create", Some(&body)).await?;
    println!("{}", str_of(&volume["Name"]));
    Ok(())
}

pub async fn list(client: &Client, args: VolumeLsArgs) -> Result<()> {
    let filters =
        parse_filters(&args.filter, "-f, --filter").map_err(|e| flag_error("volume ls", &e))?;
    let filters = filters_json(&filters).map_err(|e| fail(1, e))?;
    let response = client
        .get_json(&with_query("/volumes", &[("filters", filters)]))
        .await?;
    let mut volumes: Vec<&Value> = response["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    volumes.sort_by(|a, b| natural_cmp(str_of(&a["Name"]), str_of(&b["Name"])));
    let format = ls_format(args.format.as_deref(), args.quiet);
    let label_objects = uses_label_method(format);
    let rows: Vec<Value> = volumes
        .iter()
        .map(|v| {
            let mut row = volume_row(v, label_objects);
            // docker's JSON lines carry only the context's own fields.
            if format == "json" {
                row.remove("CreatedAt");
            }
            Value::Object(row)
        })
        .collect();
    print_rows(Some(format), LS_TABLE, VOLUME_HEADERS, &rows)
}

pub async fn inspect(client: &Client, args: VolumeInspectArgs) -> Result<()> {
    // A bad template fails before any request.
    let format = InspectFormat::parse(args.format.as_deref())?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match client
            .get_json(&format!("/volumes/{}", path_segment(name)))
            .await
        {
            Ok(doc) => found.push(doc),
            Err(e) => errors.push(e.to_string()),
        }
    }
    format.finish(found, errors)
}

pub async fn remove(client: &Client, args: VolumeRmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for name in &args.volumes {
        let path = with_query(
            &format!("/volumes/{}", path_segment(name)),
            &[(
                "force",
                if args.force {
                    "1".into()
                } else {
                    String::new()
                },
            )],
        );
        match client.delete_json(&path).await {
            Ok(_) => println!("{name}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(1, errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_like_docker() {
        let v = json!({
            "Name": "data", "Driver": "local", "Scope": "local",
            "Mountpoint": "/var/lib/berth/volumes/data/_data",
            "Labels": {"z": "1", "a": "2"}, "CreatedAt": "2024-01-02T03:04:05Z",
        });
        let row = volume_row(&v, false);
        assert_eq!(row["Labels"], "a=2,z=1");
        assert_eq!(row["Links"], "N/A");
        assert_eq!(row["Size"], "N/A");
        assert_eq!(row["CreatedAt"], "2024-01-02T03:04:05Z");
        let row = volume_row(&v, true);
        assert_eq!(row["Labels"], json!({"z": "1", "a": "2"}));
        let row = volume_row(&json!({"Name": "n", "Labels": null}), false);
        assert_eq!(row["Labels"], "");
        let used = json!({"Name": "d", "UsageData": {"RefCount": 2, "Size": 1_234_567}});
        let row = volume_row(&used, false);
        assert_eq!(
            (&row["Links"], &row["Size"]),
            (&json!("2"), &json!("1.235MB"))
        );
    }

    #[test]
    fn ls_formats_like_docker() {
        assert_eq!(ls_format(None, false), LS_TABLE);
        assert_eq!(ls_format(Some(""), true), LS_QUIET);
        assert_eq!(ls_format(Some("table"), true), LS_QUIET);
        assert_eq!(ls_format(Some("{{.Mountpoint}}"), true), "{{.Mountpoint}}");
    }
}
