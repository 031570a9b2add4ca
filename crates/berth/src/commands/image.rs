//! `image` commands: ls, inspect, import, tag, rm, history, save, load, prune, pull
//! and push.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use hyper::Method;
use serde_json::{json, Value};

use super::common::fail;
use super::progress::{self, Target};
use super::registry;
use crate::cli::{
    HistoryArgs, ImageLsArgs, ImportArgs, InspectArgs, LoadArgs, PullArgs, PushArgs, RmiArgs,
    SaveArgs, TagArgs,
};
use crate::client::{self, filters_json, path_segment, with_query, Client, ClientError};
use crate::credentials::{self, ConfigFile};
use crate::output::{
    ago, go_time, human_size, human_size4, info_note, pretty_json, print_rows, short_id,
};
use crate::reference::Reference;
use crate::template::Template;
use crate::ExitStatus;

/// The header that carries registry credentials to the daemon.
const AUTH_HEADER: &str = "X-Registry-Auth";

/// Docker's header names for image fields (`images`, `system df -v`).
pub(crate) const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Repository", "REPOSITORY"),
    ("VirtualSize", "SIZE"),
];

const LS_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const LS_TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// One image row: the fields of docker's image formatter, keys in the order its JSON
/// output has them. The usage fields (`Containers`, `SharedSize`, `UniqueSize`) are
/// "N/A" where the daemon reports -1, as it does outside `system df`.
pub(crate) fn image_row(image: &Value, repo: &str, tag: &str, digest: &str, trunc: bool) -> Value {
    let id = str_of(&image["Id"]);
    let created = image["Created"].as_i64().unwrap_or(0);
    let size = image["Size"].as_i64().unwrap_or(0);
    let shared = image["SharedSize"].as_i64().unwrap_or(-1);
    let containers = image["Containers"].as_i64().unwrap_or(-1);
    let unknown = "N/A".to_string();
    let known = |v: i64, text: String| if v == -1 { unknown.clone() } else { text };
    json!({
        "Containers": known(containers, containers.to_string()),
        "CreatedAt": go_time(created),
        "CreatedSince": ago(created),
        "Digest": digest,
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Repository": repo,
        "SharedSize": known(shared, human_size4(shared as f64)),
        "Size": human_size(size as f64),
        "Tag": tag,
        "UniqueSize": if size == -1 || shared == -1 {
            unknown.clone()
        } else {
            human_size4((size - shared) as f64)
        },
        "VirtualSize": human_size4(size as f64),
    })
}

/// Splits `name:tag` at the last `:` after the last `/` (a registry port is not a tag).
pub(crate) fn split_repo_tag(reference: &str) -> (&str, &str) {
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
        let digests: Vec<&str> = image["RepoDigests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(str_of)
            .collect();
        let row = |repo: &str, tag: &str, digest: &str| {
            image_row(image, repo, tag, digest, !args.no_trunc)
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
    show_stream(response, Target::Stdout).await
}

/// Shows a JSON message stream; an error in it ends the command with status 1.
async fn show_stream(
    response: hyper::Response<hyper::body::Incoming>,
    target: Target,
) -> Result<()> {
    progress::show(response, target)
        .await
        .map(|_| ())
        .map_err(|e| fail(1, e))
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
    let json = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("application/json"));
    if json {
        show_stream(response, Target::Stdout).await
    } else {
        crate::output::write_body(response, None, "load image").await
    }
}

/// `POST /images/create` for a registry image, as the docker client's `ImagePull`
/// and `ImageCreate` send it: the fully qualified name in `fromImage`, the tag or
/// digest in `tag` (none for `--all-tags`), the platform lower-cased, and the
/// credentials in `X-Registry-Auth`.
pub(crate) async fn create_from_registry(
    client: &Client,
    name: &str,
    tag: Option<&str>,
    platform: Option<&str>,
    auth: &str,
) -> client::Result<hyper::Response<hyper::body::Incoming>> {
    let path = with_query(
        "/images/create",
        &[
            ("fromImage", name.to_string()),
            ("tag", tag.unwrap_or_default().to_string()),
            ("platform", platform.unwrap_or_default().to_lowercase()),
        ],
    );
    client
        .send_with_headers(
            Method::POST,
            &path,
            client::empty(),
            None,
            &[(AUTH_HEADER, auth)],
        )
        .await
}

/// The reference `pull` and `push` work on: parsed as docker does, refused with
/// `--all-tags` when it has a tag, given `latest` (and saying so) when it has none.
fn command_reference(name: &str, all_tags: bool, quiet: bool) -> Result<Reference> {
    let reference = Reference::parse_normalized(name).map_err(|e| fail(1, e))?;
    if all_tags && !reference.is_name_only() {
        return Err(fail(1, "tag can't be used with --all-tags/-a"));
    }
    if !all_tags && reference.is_name_only() {
        if !quiet {
            println!("Using default tag: latest");
        }
        return Ok(reference.with_default_tag());
    }
    Ok(reference)
}

/// Sends a registry request with the stored credentials; when the daemon answers
/// 401, asks for others on the terminal and tries once more, as docker's
/// `PrivilegeFunc`.
async fn with_registry_auth<F, Fut>(
    reference: &Reference,
    command: &str,
    send: F,
) -> Result<hyper::Response<hyper::body::Incoming>>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = client::Result<hyper::Response<hyper::body::Incoming>>>,
{
    let key = credentials::key_for_domain(&reference.domain);
    let auth = ConfigFile::load_default().registry_auth(&key);
    match send(auth).await {
        Err(e) if e.is_unauthorized() => {
            match registry::ask_for_credentials(&key, command).await? {
                Some(auth) => Ok(send(auth).await?),
                None => Err(e.into()),
            }
        }
        result => Ok(result?),
    }
}

pub async fn pull(client: &Client, args: PullArgs) -> Result<()> {
    let reference = command_reference(&args.name, args.all_tags, args.quiet)?;
    let platform = args.platform.filter(|p| !p.is_empty());
    let tag = (!args.all_tags).then(|| reference.api_tag());
    let name = reference.name();
    let response = with_registry_auth(&reference, "pull", |auth| {
        let (name, tag, platform) = (name.clone(), tag.clone(), platform.clone());
        async move {
            create_from_registry(client, &name, tag.as_deref(), platform.as_deref(), &auth).await
        }
    })
    .await?;
    let target = if args.quiet {
        Target::Discard
    } else {
        Target::Stdout
    };
    show_stream(response, target).await?;
    println!("{reference}");
    Ok(())
}

pub async fn push(client: &Client, args: PushArgs) -> Result<()> {
    let platform = match args.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => match parse_platform(p) {
            Ok(platform) => {
                print!(
                    "{}",
                    info_note(
                        "Using --platform pushes only the specified platform manifest of a multi-platform image index.\n\
                         Other components, like attestations, will not be included.\n\
                         To push the complete multi-platform image, remove the --platform flag.\n",
                        std::io::stdout().is_terminal()
                    )
                );
                Some(platform.to_string())
            }
            Err(e) => {
                eprint!("Invalid platform {p}");
                return Err(fail(1, e));
            }
        },
        None => None,
    };
    let reference = command_reference(&args.name, args.all_tags, args.quiet)?;
    if reference.digest.is_some() {
        return Err(fail(1, "cannot push a digest reference"));
    }
    let path = with_query(
        &format!("/images/{}/push", path_segment(&reference.name())),
        &[
            ("tag", reference.tag.clone().unwrap_or_default()),
            ("platform", platform.unwrap_or_default()),
        ],
    );
    let response = with_registry_auth(&reference, "push", |auth| {
        let path = path.clone();
        async move {
            client
                .send_with_headers(
                    Method::POST,
                    &path,
                    client::empty(),
                    None,
                    &[(AUTH_HEADER, &auth)],
                )
                .await
        }
    })
    .await?;
    let target = if args.quiet {
        Target::Discard
    } else {
        Target::Stdout
    };
    let result = progress::show(response, target).await;
    let aux: &[Value] = match &result {
        Ok(aux) => aux,
        Err(_) => &[],
    };
    let notes = push_notes(aux);
    let shown = match result {
        Ok(_) => {
            if args.quiet {
                println!("{reference}");
            }
            Ok(())
        }
        Err(e) => Err(fail(1, e)),
    };
    let terminal = std::io::stdout().is_terminal();
    for note in notes {
        print!("{}", info_note(&note, terminal));
    }
    shown
}

/// The notes docker's push prints after the stream, from its `aux` messages.
fn push_notes(aux: &[Value]) -> Vec<String> {
    let mut notes = Vec::new();
    for aux in aux {
        if aux["manifestPushedInsteadOfIndex"].as_bool() == Some(true) {
            notes.push(format!(
                "Not all multiplatform-content is present and only the available single-platform image was pushed\n\x1b[31m{}\x1b[0m -> \x1b[32m{}\x1b[0m",
                aux["originalIndex"]["digest"].as_str().unwrap_or_default(),
                aux["selectedManifest"]["digest"].as_str().unwrap_or_default(),
            ));
        }
        if aux["contentMissing"].as_bool() == Some(true) {
            notes.push(
                "You're trying to push a manifest list/index which \n\
                 \t\t\t\treferences multiple platform specific manifests, but not all of them are available locally\n\
                 \t\t\t\tor available to the remote repository.\n\
                 \n\
                 \t\t\t\tMake sure you have all the referenced content and try again.\n\
                 \n\
                 \t\t\t\tYou can also push only a single platform specific manifest directly by specifying the platform you want to push with the --platform flag."
                    .to_string(),
            );
        }
    }
    notes
}

/// containerd's `platforms.Parse` as far as push needs it: `os[/arch[/variant]]`,
/// normalized, as the OCI platform JSON the API takes.
fn parse_platform(specifier: &str) -> Result<Value, String> {
    const KNOWN_OS: &[&str] = &[
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "windows",
        "zos",
    ];
    const KNOWN_ARCH: &[&str] = &[
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "ppc64",
        "ppc64le",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
        "i386",
        "x86_64",
        "x86-64",
        "aarch64",
        "armhf",
        "armel",
    ];
    let invalid =
        || format!("\"{specifier}\": unknown operating system or architecture: invalid argument");
    let parts: Vec<String> = specifier.split('/').map(str::to_lowercase).collect();
    if parts.iter().any(|p| {
        p.is_empty()
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    }) {
        return Err(invalid());
    }
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    let (os, arch, variant) = match parts.as_slice() {
        [one] if KNOWN_OS.contains(&one.as_str()) => {
            let (arch, variant) = normalize_arch(host_arch, "");
            (one.as_str(), arch, variant)
        }
        [one] if KNOWN_ARCH.contains(&one.as_str()) => {
            let (arch, variant) = normalize_arch(one, "");
            ("linux", arch, variant)
        }
        [os, arch] => {
            let (arch, mut variant) = normalize_arch(arch, "");
            if arch == "arm" && variant == "v7" {
                variant.clear();
            }
            (os.as_str(), arch, variant)
        }
        [os, arch, variant] => {
            let (arch, mut variant) = normalize_arch(arch, variant);
            if arch == "arm64" && variant.is_empty() {
                variant = "v8".into();
            }
            (os.as_str(), arch, variant)
        }
        _ => return Err(invalid()),
    };
    let os = if os == "macos" { "darwin" } else { os };
    let mut platform = serde_json::Map::new();
    platform.insert("architecture".into(), arch.into());
    platform.insert("os".into(), os.into());
    if !variant.is_empty() {
        platform.insert("variant".into(), variant.into());
    }
    Ok(Value::Object(platform))
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_lowercase(), variant.to_lowercase());
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => (
            "amd64".into(),
            if variant == "v1" {
                String::new()
            } else {
                variant
            },
        ),
        "aarch64" | "arm64" => (
            "arm64".into(),
            match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            },
        ),
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => (
            "arm".into(),
            match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            },
        ),
        _ => (arch, variant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_like_containerd() {
        let p = |s: &str| parse_platform(s).map(|v| v.to_string());
        assert_eq!(
            p("linux/amd64").unwrap(),
            r#"{"architecture":"amd64","os":"linux"}"#
        );
        assert_eq!(
            p("Linux/x86_64").unwrap(),
            r#"{"architecture":"amd64","os":"linux"}"#
        );
        assert_eq!(
            p("linux/arm/v6").unwrap(),
            r#"{"architecture":"arm","os":"linux","variant":"v6"}"#
        );
        assert_eq!(
            p("linux/arm").unwrap(),
            r#"{"architecture":"arm","os":"linux"}"#
        );
        assert_eq!(
            p("linux/arm64").unwrap(),
            r#"{"architecture":"arm64","os":"linux"}"#
        );
        assert_eq!(
            p("arm64").unwrap(),
            r#"{"architecture":"arm64","os":"linux"}"#
        );
        assert_eq!(
            p("foo").unwrap_err(),
            "\"foo\": unknown operating system or architecture: invalid argument"
        );
        assert!(p("linux//amd64").is_err());
    }

    #[test]
    fn push_notes_from_aux() {
        let notes = push_notes(&[
            serde_json::json!({"Tag": "1", "Digest": "sha256:d", "Size": 527}),
            serde_json::json!({"contentMissing": true}),
        ]);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("You're trying to push a manifest list/index which \n"));
    }

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
