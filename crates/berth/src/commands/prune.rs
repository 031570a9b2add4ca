//! Pruning, shared by `container prune`, `image prune`, `volume prune`, `network
//! prune`, `builder prune` and `system prune` (which runs them in docker's order):
//! one request per kind, the section docker prints for what it deleted, and the
//! space it reclaimed.

use anyhow::Result;
use serde_json::Value;

use super::common::{fail, flag_error, natural_cmp, parse_filters, str_of};
use crate::cli::{
    BuilderPruneArgs, ContainerPruneArgs, NetworkPruneArgs, PruneArgs, SystemPruneArgs,
    VolumePruneArgs,
};
use crate::client::{filter_args_json, with_query, Client};
use crate::output::human_size4;

/// What one prune request removed: docker's section for it (empty when nothing was
/// deleted) and the bytes it freed.
#[derive(Debug, Default, PartialEq)]
pub struct Pruned {
    pub output: String,
    pub reclaimed: f64,
}

impl Pruned {
    /// Prints the section, then the total as docker's single-kind prune commands do.
    fn print_with_total(&self) {
        print!("{}{}", self.section_text(), total_line(self.reclaimed));
    }

    /// The section as docker's `fmt.Fprintln(output)` prints it: a blank line after.
    fn section_text(&self) -> String {
        if self.output.is_empty() {
            String::new()
        } else {
            format!("{}\n", self.output)
        }
    }
}

/// The last line of a prune: go-units' `HumanSize` of what was freed.
pub fn total_line(reclaimed: f64) -> String {
    format!("Total reclaimed space: {}\n", human_size4(reclaimed))
}

/// `Title:` then one line per entry, or nothing for an empty or missing list.
fn section(title: &str, entries: &Value, line: impl Fn(&Value) -> String) -> String {
    let Some(entries) = entries.as_array().filter(|a| !a.is_empty()) else {
        return String::new();
    };
    let mut out = format!("{title}\n");
    for entry in entries {
        out.push_str(&line(entry));
        out.push('\n');
    }
    out
}

/// The space a report freed, counted only when it names what it deleted (as docker
/// does for containers, volumes and images).
fn reclaimed_if(output: &str, report: &Value) -> f64 {
    if output.is_empty() {
        0.0
    } else {
        report["SpaceReclaimed"].as_f64().unwrap_or(0.0)
    }
}

fn containers_pruned(report: &Value) -> Pruned {
    let output = section("Deleted Containers:", &report["ContainersDeleted"], |id| {
        str_of(id).to_string()
    });
    let reclaimed = reclaimed_if(&output, report);
    Pruned { output, reclaimed }
}

fn networks_pruned(report: &Value) -> Pruned {
    let output = section("Deleted Networks:", &report["NetworksDeleted"], |name| {
        str_of(name).to_string()
    });
    Pruned {
        output,
        reclaimed: 0.0,
    }
}

fn volumes_pruned(report: &Value) -> Pruned {
    let output = section("Deleted Volumes:", &report["VolumesDeleted"], |name| {
        str_of(name).to_string()
    });
    let reclaimed = reclaimed_if(&output, report);
    Pruned { output, reclaimed }
}

fn images_pruned(report: &Value) -> Pruned {
    let output = section(
        "Deleted Images:",
        &report["ImagesDeleted"],
        |item| match item["Untagged"].as_str().filter(|u| !u.is_empty()) {
            Some(untagged) => format!("untagged: {untagged}"),
            None => format!("deleted: {}", str_of(&item["Deleted"])),
        },
    );
    let reclaimed = reclaimed_if(&output, report);
    Pruned { output, reclaimed }
}

fn build_cache_pruned(report: &Value) -> Pruned {
    let output = section(
        "Deleted build cache objects:",
        &report["CachesDeleted"],
        |id| str_of(id).to_string(),
    );
    Pruned {
        output,
        reclaimed: report["SpaceReclaimed"].as_f64().unwrap_or(0.0),
    }
}

/// `POST <path>?filters=...` (plus `extra` parameters), read as a prune report.
async fn post_prune(
    client: &Client,
    path: &str,
    filters: &[String],
    extra: &[(&str, String)],
) -> Result<Value> {
    let filters = filter_args_json(filters).map_err(|e| fail(1, e))?;
    let mut query = extra.to_vec();
    query.push(("filters", filters));
    Ok(client.post_json(&with_query(path, &query), None).await?)
}

async fn prune_containers(client: &Client, filters: &[String]) -> Result<Pruned> {
    let report = post_prune(client, "/containers/prune", filters, &[]).await?;
    Ok(containers_pruned(&report))
}

async fn prune_networks(client: &Client, filters: &[String]) -> Result<Pruned> {
    let report = post_prune(client, "/networks/prune", filters, &[]).await?;
    Ok(networks_pruned(&report))
}

async fn prune_volumes(client: &Client, filters: &[String]) -> Result<Pruned> {
    let report = post_prune(client, "/volumes/prune", filters, &[]).await?;
    Ok(volumes_pruned(&report))
}

/// docker always says which images it means: `dangling=true`, or `dangling=false`
/// for `--all` (every image without a container).
async fn prune_images(client: &Client, all: bool, filters: &[String]) -> Result<Pruned> {
    let mut filters = filters.to_vec();
    filters.push(format!("dangling={}", !all));
    let report = post_prune(client, "/images/prune", &filters, &[]).await?;
    Ok(images_pruned(&report))
}

/// `POST /build/prune`: `all=1` for `--all`, `keep-storage` when not zero.
async fn prune_build_cache(
    client: &Client,
    all: bool,
    keep_storage: i64,
    filters: &[String],
) -> Result<Pruned> {
    let extra = [
        ("all", if all { "1".into() } else { String::new() }),
        (
            "keep-storage",
            if keep_storage != 0 {
                keep_storage.to_string()
            } else {
                String::new()
            },
        ),
    ];
    let report = post_prune(client, "/build/prune", filters, &extra).await?;
    Ok(build_cache_pruned(&report))
}

/// Asks before pruning unless `--force`; `warning` ends with docker's question.
fn confirmed(force: bool, warning: &str) -> bool {
    force || super::confirm(warning)
}

/// Reads `--filter` values as docker's `FilterOpt` does; bad ones end `berth
/// <command>` with pflag's wording (status 125).
fn filters_of(values: &[String], command: &str) -> Result<Vec<String>> {
    parse_filters(values, "--filter").map_err(|e| flag_error(command, &e))
}

pub async fn container(client: &Client, args: ContainerPruneArgs) -> Result<()> {
    let filters = filters_of(&args.filter, "container prune")?;
    if !confirmed(
        args.force,
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
    ) {
        return Ok(());
    }
    prune_containers(client, &filters).await?.print_with_total();
    Ok(())
}

pub async fn network(client: &Client, args: NetworkPruneArgs) -> Result<()> {
    let filters = filters_of(&args.filter, "network prune")?;
    if !confirmed(
        args.force,
        "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
    ) {
        return Ok(());
    }
    // docker's `network prune` prints no total: networks take no space.
    print!("{}", prune_networks(client, &filters).await?.section_text());
    Ok(())
}

pub async fn volume(client: &Client, args: VolumePruneArgs) -> Result<()> {
    let mut filters = filters_of(&args.filter, "volume prune")?;
    let warning = if args.all {
        if filters.iter().any(|f| f.starts_with("all=")) {
            return Err(fail(
                1,
                "conflicting options: cannot specify both --all and --filter all=1",
            ));
        }
        filters.push("all=true".into());
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !confirmed(
        args.force,
        &format!("{warning}\nAre you sure you want to continue?"),
    ) {
        return Ok(());
    }
    prune_volumes(client, &filters).await?.print_with_total();
    Ok(())
}

pub async fn image(client: &Client, args: PruneArgs) -> Result<()> {
    let filters = filters_of(&args.filter, "image prune")?;
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !confirmed(
        args.force,
        &format!("{warning}\nAre you sure you want to continue?"),
    ) {
        return Ok(());
    }
    prune_images(client, args.all, &filters)
        .await?
        .print_with_total();
    Ok(())
}

/// docker's `--keep-storage`: a size as `RAMInBytes` reads it.
fn keep_storage_of(value: Option<&str>) -> Result<i64> {
    match value {
        None => Ok(0),
        Some(v) => super::container::ram_in_bytes(v).map_err(|message| {
            flag_error(
                "builder prune",
                &super::common::FlagError {
                    flag: "--keep-storage",
                    value: v.to_string(),
                    message,
                },
            )
        }),
    }
}

pub async fn builder(client: &Client, args: BuilderPruneArgs) -> Result<()> {
    let filters = filters_of(&args.filter, "builder prune")?;
    let keep_storage = keep_storage_of(args.keep_storage.as_deref())?;
    let warning = if args.all {
        "WARNING! This will remove all build cache. Are you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"
    };
    if !confirmed(args.force, warning) {
        return Ok(());
    }
    prune_build_cache(client, args.all, keep_storage, &filters)
        .await?
        .print_with_total();
    Ok(())
}

/// docker's `system prune` question: what will go, then the filters that narrow it
/// (only `label`, `label!` and `until`, in natural order).
fn system_warning(all: bool, volumes: bool, filters: &[String]) -> String {
    let mut warnings = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if volumes {
        warnings.push("all anonymous volumes not used by at least one container");
    }
    warnings.push(if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    warnings.push(if all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut out = String::from("WARNING! This will remove:");
    for warning in warnings {
        out.push_str("\n  - ");
        out.push_str(warning);
    }
    out.push('\n');
    let mut shown: Vec<&String> = filters
        .iter()
        .filter(|f| {
            let key = f.split_once('=').map_or(f.as_str(), |(k, _)| k);
            matches!(key, "label" | "label!" | "until")
        })
        .collect();
    shown.sort_by(|a, b| natural_cmp(a, b));
    if !shown.is_empty() {
        out.push_str("\n  Items to be pruned will be filtered with:");
        for filter in shown {
            out.push_str("\n  - ");
            out.push_str(filter);
        }
        out.push('\n');
    }
    out.push_str("\nAre you sure you want to continue?");
    out
}

/// `system prune`: containers, networks, volumes (with `--volumes`, anonymous ones
/// only, as docker's), images and the build cache, each section as it comes, then
/// the total.
pub async fn system(client: &Client, args: SystemPruneArgs) -> Result<()> {
    let filters = filters_of(&args.filter, "system prune")?;
    if args.volumes && filters.iter().any(|f| f.starts_with("until=")) {
        return Err(fail(
            1,
            "ERROR: The \"until\" filter is not supported with \"--volumes\"",
        ));
    }
    if !confirmed(
        args.force,
        &system_warning(args.all, args.volumes, &filters),
    ) {
        return Ok(());
    }
    let mut reclaimed = 0.0;
    let mut report = |pruned: Pruned| {
        print!("{}", pruned.section_text());
        reclaimed += pruned.reclaimed;
    };
    report(prune_containers(client, &filters).await?);
    report(prune_networks(client, &filters).await?);
    if args.volumes {
        report(prune_volumes(client, &filters).await?);
    }
    report(prune_images(client, args.all, &filters).await?);
    report(prune_build_cache(client, args.all, 0, &filters).await?);
    print!("{}", total_line(reclaimed));
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sections_like_docker() {
        let pruned = containers_pruned(&json!({
            "ContainersDeleted": ["aaa", "bbb"], "SpaceReclaimed": 1_234_567
        }));
        assert_eq!(pruned.output, "Deleted Containers:\naaa\nbbb\n");
        assert_eq!(pruned.reclaimed, 1_234_567.0);
        assert_eq!(pruned.section_text(), "Deleted Containers:\naaa\nbbb\n\n");
        // Nothing deleted: no section, and no space counted.
        let none = containers_pruned(&json!({"ContainersDeleted": null, "SpaceReclaimed": 5}));
        assert_eq!(none, Pruned::default());
        assert_eq!(none.section_text(), "");
        assert_eq!(
            networks_pruned(&json!({"NetworksDeleted": ["n1", "n2"]})).section_text(),
            "Deleted Networks:\nn1\nn2\n\n"
        );
        assert_eq!(networks_pruned(&json!({"NetworksDeleted": []})).output, "");
        assert_eq!(networks_pruned(&Value::Null).output, "");
        assert_eq!(
            volumes_pruned(&json!({"VolumesDeleted": ["v"], "SpaceReclaimed": 36})),
            Pruned {
                output: "Deleted Volumes:\nv\n".into(),
                reclaimed: 36.0
            }
        );
        let images = images_pruned(&json!({
            "ImagesDeleted": [
                {"Untagged": "busybox:latest"},
                {"Deleted": "sha256:aaa"},
                {"Untagged": "", "Deleted": "sha256:bbb"},
            ],
            "SpaceReclaimed": 4_261_296,
        }));
        assert_eq!(
            images.output,
            "Deleted Images:\nuntagged: busybox:latest\ndeleted: sha256:aaa\ndeleted: sha256:bbb\n"
        );
        // The build cache counts its space even when it names nothing.
        let cache = build_cache_pruned(&json!({"CachesDeleted": [], "SpaceReclaimed": 2000}));
        assert_eq!(cache.output, "");
        assert_eq!(cache.reclaimed, 2000.0);
        assert_eq!(
            build_cache_pruned(&json!({"CachesDeleted": ["c1"], "SpaceReclaimed": 0})).output,
            "Deleted build cache objects:\nc1\n"
        );
    }

    #[test]
    fn totals_like_go_units() {
        assert_eq!(total_line(0.0), "Total reclaimed space: 0B\n");
        assert_eq!(total_line(1_234_567.0), "Total reclaimed space: 1.235MB\n");
        assert_eq!(total_line(1840.0), "Total reclaimed space: 1.84kB\n");
    }

    #[test]
    fn system_prune_question_like_docker() {
        assert_eq!(
            system_warning(false, false, &[]),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue?"
        );
        let filters = [
            "until=24h".to_string(),
            "label=x".into(),
            "dangling=true".into(),
        ];
        assert_eq!(
            system_warning(true, true, &filters),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all anonymous volumes not used by at least one container\n  - all images without at least one container associated to them\n  - all build cache\n\n  Items to be pruned will be filtered with:\n  - label=x\n  - until=24h\n\nAre you sure you want to continue?"
        );
        // `label!` sorts before `label=`, as docker's natural order has it.
        let filters = ["label=a=b".to_string(), "label!=c".into()];
        assert!(system_warning(false, false, &filters)
            .contains("filtered with:\n  - label!=c\n  - label=a=b\n"));
    }

    #[test]
    fn keep_storage_reads_sizes() {
        assert_eq!(keep_storage_of(None).unwrap(), 0);
        assert_eq!(keep_storage_of(Some("1g")).unwrap(), 1 << 30);
        assert!(keep_storage_of(Some("lots")).is_err());
    }
}
