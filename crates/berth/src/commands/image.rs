//! `image` commands: ls, inspect, import, tag, rm, history, save, load, prune.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use hyper::Method;
use serde_json::{json, Value};

use crate::cli::{
    HistoryArgs, ImageLsArgs, ImportArgs, InspectArgs, LoadArgs, PruneArgs, RmiArgs, SaveArgs,
    TagArgs,
};
use crate::client::{self, filters_json, path_segment, with_query, Client, ClientError};
use crate::output::{ago, go_time, human_size, pretty_json, print_rows, short_id};
use crate::template::Template;
use crate::ExitStatus;

/// Docker's header names for image list fields.
const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Repository", "REPOSITORY"),
];

const LS_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const LS_TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Splits `name:tag` at the last `:` after the last `/` (a registry port is not a tag).
fn split_repo_tag(reference: &str) -> (&str, &str) {
    let name = reference.split('@').next().unwrap_or(reference);
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], &name[slash + i + 1..]),
        None => (name, ""),
    }
}

pub async fn list(client: &Client, args: ImageLsArgs) -> Result<()> {
    let mut filters = args.filter.clone();
    if let Some(reference) = &args.reference {
        filters.push(format!("reference={reference}"));
    }
    let filters = filters_json(&filters).map_err(|e| anyhow::anyhow!(e))?;
    let path = with_query(
        "/images/json",
        &[
            ("all", if args.all { "1".into() } else { String::new() }),
            ("filters", filters),
            (
                "digests",
                if args.digests {
                    "1".into()
                } else {
                    String::new()
                },
            ),
        ],
    );
    let images = client.get_json(&path).await?;
    let mut rows = Vec::new();
    for image in images.as_array().into_iter().flatten() {
        let id = str_of(&image["Id"]);
        let shown_id = if args.no_trunc {
            id.to_string()
        } else {
            short_id(id)
        };
        let created = image["Created"].as_i64().unwrap_or(0);
        let size = human_size(image["Size"].as_f64().unwrap_or(0.0));
        let digests: Vec<&str> = image["RepoDigests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(str_of)
            .collect();
        let row = |repo: &str, tag: &str, digest: &str| {
            json!({
                "Containers": "N/A",
                "CreatedAt": go_time(created),
                "CreatedSince": ago(created),
                "Digest": digest,
                "ID": shown_id,
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": size,
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": size,
            })
        };
        let tags: Vec<&str> = image["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(str_of)
            .filter(|t| *t != "<none>:<none>")
            .collect();
        if tags.is_empty() {
            let digest = digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map(|(_, d)| d)
                .unwrap_or("<none>");
            let repo = digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map(|(r, _)| r)
                .unwrap_or("<none>");
            rows.push(row(repo, "<none>", digest));
        }
        for tag in tags {
            let (repo, t) = split_repo_tag(tag);
            let digest = digests
                .iter()
                .find(|d| d.split_once('@').is_some_and(|(r, _)| r == repo))
                .and_then(|d| d.split_once('@'))
                .map(|(_, d)| d)
                .unwrap_or("<none>");
            rows.push(row(repo, t, digest));
        }
    }
    if args.quiet {
        let mut out = String::new();
        for row in &rows {
            out.push_str(str_of(&row["ID"]));
            out.push('\n');
        }
        print!("{out}");
        return Ok(());
    }
    let default = if args.digests {
        LS_TABLE_DIGESTS
    } else {
        LS_TABLE
    };
    print_rows(args.format.as_deref(), default, IMAGE_HEADERS, &rows)
}

pub async fn inspect(client: &Client, args: InspectArgs) -> Result<()> {
    if let Some(kind) = args.kind.as_deref() {
        if kind != "image" {
            bail!("\"{kind}\" is not a valid value for --type");
        }
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &args.names {
        match client
            .get_json(&format!("/images/{}/json", path_segment(name)))
            .await
        {
            Ok(doc) => found.push(doc),
            Err(e) if e.is_not_found() => missing.push(name.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    match args.format.as_deref() {
        Some(format) if format != "json" => {
            let template = Template::parse(format)
                .map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
            let mut out = String::new();
            for doc in &found {
                out.push_str(&template.render(doc).map_err(|e| anyhow::anyhow!("{e}"))?);
                out.push('\n');
            }
            print!("{out}");
        }
        _ => println!("{}", pretty_json(&Value::Array(found))),
    }
    if !missing.is_empty() {
        for name in missing {
            eprintln!("Error: No such image: {name}");
        }
        return Err(ExitStatus(1).into());
    }
    Ok(())
}

pub async fn import(client: &Client, args: ImportArgs) -> Result<()> {
    let (repo, tag) = match &args.reference {
        Some(r) => {
            let (repo, tag) = split_repo_tag(r);
            (repo.to_string(), tag.to_string())
        }
        None => (String::new(), String::new()),
    };
    let is_url = args.source.starts_with("http://") || args.source.starts_with("https://");
    let mut query: Vec<(&str, String)> = vec![
        (
            "fromSrc",
            if is_url {
                args.source.clone()
            } else {
                "-".into()
            },
        ),
        ("repo", repo),
        ("tag", tag),
        ("message", args.message.clone().unwrap_or_default()),
        ("platform", args.platform.clone().unwrap_or_default()),
    ];
    for change in &args.change {
        query.push(("changes", change.clone()));
    }
    let body = if is_url {
        client::empty()
    } else if args.source == "-" {
        client::reader_body_with_progress(tokio::io::stdin(), "Importing", None)
    } else {
        let file = tokio::fs::File::open(&args.source)
            .await
            .map_err(|e| anyhow::anyhow!("open {}: {e}", args.source))?;
        let size = file.metadata().await.ok().map(|m| m.len());
        client::reader_body_with_progress(file, "Importing", size)
    };
    let response = client
        .send(
            Method::POST,
            &with_query("/images/create", &query),
            body,
            Some("application/x-tar"),
        )
        .await?;
    let bytes = client::read_all(response).await?;
    for message in json_messages(&bytes) {
        if let Some(error) = message["error"].as_str() {
            bail!("{error}");
        }
        if let Some(status) = message["status"].as_str() {
            println!("{status}");
        }
    }
    Ok(())
}

/// Splits a `\r\n`-separated JSON message stream.
fn json_messages(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line.trim_ascii()).ok())
        .collect()
}

pub async fn tag(client: &Client, args: TagArgs) -> Result<()> {
    let (repo, tag) = split_repo_tag(&args.target);
    if repo.is_empty() || args.target.contains('@') {
        bail!(
            "Error parsing reference: {:?} is not a valid repository/tag: invalid reference format",
            args.target
        );
    }
    let path = with_query(
        &format!("/images/{}/tag", path_segment(&args.source)),
        &[("repo", repo.to_string()), ("tag", tag.to_string())],
    );
    client.post_json(&path, None).await?;
    Ok(())
}

pub async fn remove(client: &Client, args: RmiArgs) -> Result<()> {
    let mut failed = false;
    for image in &args.images {
        let path = with_query(
            &format!("/images/{}", path_segment(image)),
            &[
                (
                    "force",
                    if args.force {
                        "1".into()
                    } else {
                        String::new()
                    },
                ),
                (
                    "noprune",
                    if args.no_prune {
                        "1".into()
                    } else {
                        String::new()
                    },
                ),
            ],
        );
        match client.delete_json(&path).await {
            Ok(items) => {
                let mut out = String::new();
                for item in items.as_array().into_iter().flatten() {
                    if let Some(u) = item["Untagged"].as_str() {
                        out.push_str(&format!("Untagged: {u}\n"));
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        out.push_str(&format!("Deleted: {d}\n"));
                    }
                }
                print!("{out}");
            }
            Err(e @ ClientError::Daemon { .. }) => {
                eprintln!("{e}");
                failed = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if failed {
        return Err(ExitStatus(1).into());
    }
    Ok(())
}

pub async fn history(client: &Client, args: HistoryArgs) -> Result<()> {
    let items = client
        .get_json(&format!("/images/{}/history", path_segment(&args.image)))
        .await?;
    let mut rows = Vec::new();
    for item in items.as_array().into_iter().flatten() {
        let id = str_of(&item["Id"]);
        let shown_id = if id == "<missing>" || args.no_trunc {
            id.to_string()
        } else {
            short_id(id)
        };
        let created = item["Created"].as_i64().unwrap_or(0);
        let created_by = str_of(&item["CreatedBy"]).replace('\t', " ");
        let created_by = if args.no_trunc || created_by.chars().count() <= 45 {
            created_by
        } else {
            format!("{}…", created_by.chars().take(44).collect::<String>())
        };
        let size = item["Size"].as_f64().unwrap_or(0.0);
        rows.push(json!({
            "ID": shown_id,
            "CreatedSince": if args.human { ago(created) } else { chrono::DateTime::from_timestamp(created, 0).map(|t| t.to_rfc3339()).unwrap_or_default() },
            "CreatedAt": chrono::DateTime::from_timestamp(created, 0).map(|t| t.to_rfc3339()).unwrap_or_default(),
            "CreatedBy": created_by,
            "Size": if args.human { human_size(size) } else { size.to_string() },
            "Comment": str_of(&item["Comment"]),
        }));
    }
    if args.quiet {
        for row in &rows {
            println!("{}", str_of(&row["ID"]));
        }
        return Ok(());
    }
    print_rows(
        args.format.as_deref(),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &[
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
        ],
        &rows,
    )
}

pub async fn save(client: &Client, args: SaveArgs) -> Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let query: Vec<(&str, String)> = args.images.iter().map(|i| ("names", i.clone())).collect();
    let response = client.get(&with_query("/images/get", &query)).await?;
    crate::output::write_body(response, args.output.as_deref(), "save image").await
}

pub async fn load(client: &Client, args: LoadArgs) -> Result<()> {
    let body = match &args.input {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| anyhow::anyhow!("open {path}: {e}"))?;
            let size = file.metadata().await.ok().map(|m| m.len());
            if args.quiet {
                client::reader_body(file)
            } else {
                client::reader_body_with_progress(file, "Loading", size)
            }
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            if args.quiet {
                client::reader_body(tokio::io::stdin())
            } else {
                client::reader_body_with_progress(tokio::io::stdin(), "Loading", None)
            }
        }
    };
    let path = with_query(
        "/images/load",
        &[(
            "quiet",
            if args.quiet {
                "1".into()
            } else {
                String::new()
            },
        )],
    );
    let response = client
        .send(Method::POST, &path, body, Some("application/x-tar"))
        .await?;
    let bytes = client::read_all(response).await?;
    for message in json_messages(&bytes) {
        if let Some(error) = message["error"].as_str() {
            bail!("{error}");
        }
        if let Some(stream) = message["stream"].as_str() {
            print!("{stream}");
        }
    }
    Ok(())
}

pub async fn prune(client: &Client, args: PruneArgs) -> Result<()> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        println!("{warning}");
        if !super::confirm("Are you sure you want to continue?") {
            return Ok(());
        }
    }
    let mut filters = args.filter.clone();
    if args.all {
        filters.push("dangling=false".into());
    }
    let filters = filters_json(&filters).map_err(|e| anyhow::anyhow!(e))?;
    let report = client
        .post_json(&with_query("/images/prune", &[("filters", filters)]), None)
        .await?;
    let mut out = String::new();
    if let Some(items) = report["ImagesDeleted"].as_array().filter(|a| !a.is_empty()) {
        out.push_str("Deleted Images:\n");
        for item in items {
            if let Some(u) = item["Untagged"].as_str() {
                out.push_str(&format!("untagged: {u}\n"));
            }
            if let Some(d) = item["Deleted"].as_str() {
                out.push_str(&format!("deleted: {d}\n"));
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(report["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    ));
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tag_split() {
        assert_eq!(split_repo_tag("busybox:latest"), ("busybox", "latest"));
        assert_eq!(
            split_repo_tag("localhost:5000/app"),
            ("localhost:5000/app", "")
        );
        assert_eq!(
            split_repo_tag("localhost:5000/app:1"),
            ("localhost:5000/app", "1")
        );
    }
}
