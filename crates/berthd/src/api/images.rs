//! `/images/...`: list, inspect, import, tag, remove, history, save, load, prune.

use std::collections::BTreeMap;
use std::io::Read;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use berth_store::archive::{self, SaveItem};
use berth_store::change::parse_change;
use berth_store::store::ImageView;
use berth_store::{DeleteItem, Digest, ImageUsage, ImportOptions, Reference};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::filters::{glob_match, parse_until, Filters};
use super::params::Params;
use super::stream::{body_channel, body_reader};
use super::{ApiVersion, AppState};

/// Which containers use an image, for the deletion rules.
fn usage_of(daemon: &AppState) -> impl Fn(&Digest) -> ImageUsage + Send + 'static {
    let runtime = daemon.runtime.clone();
    move |id: &Digest| runtime.image_usage(id.as_str())
}

const LIST_FILTERS: &[&str] = &["dangling", "label", "before", "since", "reference", "until"];

pub async fn list(
    State(daemon): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(params.get("filters"), LIST_FILTERS)?;
    let all = params.flag("all");
    let images = daemon.images.clone();
    let resolve_time = |key: &str| -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
        match filters.get(key).first() {
            None => Ok(None),
            Some(name) => {
                let view = images.resolve(name)?;
                Ok(view.image.created())
            }
        }
    };
    let before = resolve_time("before")?;
    let since = resolve_time("since")?;
    for d in filters.get("dangling") {
        if d != "true" && d != "false" && d != "1" && d != "0" {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'dangling={d}'"
            )));
        }
    }
    let mut views: Vec<ImageView> = images
        .list()
        .into_iter()
        .filter(|v| all || !v.tags.is_empty() || v.children == 0)
        .filter(|v| {
            filters.any_or_absent("dangling", |d| {
                let want = d == "true" || d == "1";
                v.tags.is_empty() == want
            })
        })
        .filter(|v| filters.labels_match("label", &v.image.config.labels()))
        .filter(|v| before.is_none_or(|b| v.image.created() < Some(b)))
        .filter(|v| since.is_none_or(|s| v.image.created() > Some(s)))
        .filter(|v| {
            filters.any_or_absent("reference", |pattern| {
                v.tags.iter().any(|t| {
                    glob_match(pattern, &t.familiar_name()) || glob_match(pattern, &t.familiar())
                })
            })
        })
        .collect();
    views.sort_by(|a, b| {
        b.image
            .created()
            .cmp(&a.image.created())
            .then(a.image.id.cmp(&b.image.id))
    });
    // With a reference filter, Docker lists only the matching tags of each image.
    let out: Vec<Value> = views
        .iter()
        .map(|v| {
            let mut summary = image_summary(v, version);
            if filters.contains("reference") {
                let tags: Vec<String> = v
                    .tags
                    .iter()
                    .filter(|t| {
                        filters.get("reference").iter().any(|p| {
                            glob_match(p, &t.familiar_name()) || glob_match(p, &t.familiar())
                        })
                    })
                    .map(|t| t.familiar())
                    .collect();
                summary["RepoTags"] = json!(tags);
            }
            summary
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

fn image_summary(v: &ImageView, version: ApiVersion) -> Value {
    let image = &v.image;
    let mut summary = json!({
        "Id": image.id,
        "ParentId": image.record.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        "RepoTags": v.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
        "RepoDigests": image.record.repo_digests,
        "Created": image.created().map(|t| t.timestamp()).unwrap_or(0),
        "Size": image.record.size,
        "SharedSize": -1,
        "Labels": image.config.config.labels.clone().unwrap_or_default(),
        "Containers": -1,
    });
    if version < ApiVersion(1, 44) {
        summary["VirtualSize"] = json!(image.record.size);
    }
    summary
}

/// The inspect document, in Docker's shape.
fn inspect_document(daemon: &AppState, v: &ImageView, version: ApiVersion) -> ApiResult<Value> {
    let image = &v.image;
    let config = &image.config;
    let layer_paths = daemon.images.layer_paths(&image.id)?;
    let mut lower: Vec<String> = layer_paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    lower.reverse();
    let upper = lower.first().cloned().unwrap_or_default();
    let mut graph_data = json!({
        "MergedDir": upper.replace("/diff", "/merged"),
        "UpperDir": upper,
        "WorkDir": upper.replace("/diff", "/work"),
    });
    if lower.len() > 1 {
        graph_data["LowerDir"] = json!(lower[1..].join(":"));
    }
    let mut doc = json!({
        "Id": image.id,
        "RepoTags": v.tags.iter().filter(|t| t.tag().is_some()).map(|t| t.familiar()).collect::<Vec<_>>(),
        "RepoDigests": image.record.repo_digests,
        "Parent": image.record.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        "Comment": config.comment.clone().unwrap_or_default(),
        "Created": config.created.clone().unwrap_or_default(),
        "DockerVersion": config.extra.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": container_config_json(&config.config),
        "Architecture": config.architecture,
        "Os": config.os,
        "Size": image.record.size,
        "GraphDriver": {"Data": graph_data, "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": config.rootfs.diff_ids},
        "Metadata": {
            "LastTagTime": image.record.last_tag_time
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
    });
    if let Some(variant) = &config.variant {
        doc["Variant"] = json!(variant);
    }
    if version < ApiVersion(1, 44) {
        doc["VirtualSize"] = json!(image.record.size);
    }
    if version < ApiVersion(1, 45) {
        doc["Container"] = json!("");
        doc["ContainerConfig"] = container_config_json(&config.config);
    }
    Ok(doc)
}

/// The image's container defaults with every key Docker shows, empty ones included.
fn container_config_json(c: &berth_store::ContainerConfig) -> Value {
    json!({
        "Hostname": "",
        "Domainname": "",
        "User": c.user,
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "ExposedPorts": c.exposed_ports,
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": c.env,
        "Cmd": c.cmd,
        "Healthcheck": c.healthcheck,
        "ArgsEscaped": c.args_escaped,
        "Image": "",
        "Volumes": c.volumes,
        "WorkingDir": c.working_dir,
        "Entrypoint": c.entrypoint,
        "OnBuild": c.on_build,
        "Labels": c.labels,
        "StopSignal": c.stop_signal,
        "Shell": c.shell,
    })
    .as_object()
    .map(|m| {
        Value::Object(
            m.iter()
                .filter(|(k, v)| {
                    !(v.is_null()
                        && matches!(
                            k.as_str(),
                            "ExposedPorts" | "Healthcheck" | "ArgsEscaped" | "StopSignal" | "Shell"
                        ))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    })
    .unwrap_or(Value::Null)
}

/// GET `/images/{name}/json|history|get`: names may contain `/`, so the route is a
/// wildcard and the action is the last segment.
pub async fn get_dispatch(
    State(daemon): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Path(rest): Path<String>,
) -> ApiResult<Response> {
    let (name, action) = split_action(&rest)?;
    match action {
        "json" => {
            let view = daemon.images.resolve(name)?;
            Ok(Json(inspect_document(&daemon, &view, version)?).into_response())
        }
        "history" => {
            let images = daemon.images.clone();
            let name = name.to_string();
            let items = tokio::task::spawn_blocking(move || images.history(&name)).await??;
            Ok(Json(items).into_response())
        }
        "get" => save_response(daemon, vec![name.to_string()]).await,
        _ => Err(ApiError::not_found(format!(
            "page not found: /images/{rest}"
        ))),
    }
}

fn split_action(rest: &str) -> ApiResult<(&str, &str)> {
    rest.rsplit_once('/')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| ApiError::not_found(format!("page not found: /images/{rest}")))
}

/// POST `/images/{name}/tag` and `/images/{name}/push`.
pub async fn post_dispatch(
    State(daemon): State<AppState>,
    Path(rest): Path<String>,
    params: Params,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let (name, action) = split_action(&rest)?;
    match action {
        "tag" => tag(&daemon, name, &params),
        "push" => {
            super::registry::push(State(daemon), Path(name.to_string()), params, headers).await
        }
        _ => Err(ApiError::not_found(format!(
            "page not found: /images/{rest}"
        ))),
    }
}

fn tag(daemon: &AppState, name: &str, params: &Params) -> ApiResult<Response> {
    let repo = params
        .non_empty("repo")
        .ok_or_else(|| ApiError::bad_request("repository name must have at least one component"))?;
    let view = daemon.images.resolve(name)?;
    let reference = target_reference(repo, params.get("tag"))?;
    daemon.images.tag(&view.image.id, &reference)?;
    daemon
        .events
        .image("tag", view.image.id.as_str(), &reference.familiar());
    Ok(StatusCode::CREATED.into_response())
}

/// `repo` plus optional `tag` as a tagged reference; digests are not tags.
fn target_reference(repo: &str, tag: Option<&str>) -> ApiResult<Reference> {
    let parsed = Reference::parse_normalized(repo)?;
    if parsed.digest().is_some() {
        return Err(ApiError::bad_request(
            "refusing to create a tag with a digest reference",
        ));
    }
    let tag = tag
        .filter(|t| !t.is_empty())
        .or(parsed.tag())
        .unwrap_or("latest");
    Ok(parsed.with_tag(tag)?)
}

pub async fn delete(
    State(daemon): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let force = params.flag("force");
    let prune = !params.flag("noprune");
    let images = daemon.images.clone();
    let _no_creates = daemon.runtime.exclude_creation().await;
    let usage = usage_of(&daemon);
    let items =
        tokio::task::spawn_blocking(move || images.delete(&name, force, prune, &usage)).await??;
    let mut out = Vec::new();
    for item in &items {
        match item {
            DeleteItem::Untagged(r) => {
                daemon.events.image("untag", r, r);
                out.push(json!({"Untagged": r}));
            }
            DeleteItem::Deleted(id) => {
                out.push(json!({"Deleted": id}));
            }
        }
    }
    if let Some(DeleteItem::Deleted(id)) =
        items.iter().find(|i| matches!(i, DeleteItem::Deleted(_)))
    {
        daemon.events.image("delete", id, id);
    }
    Ok(Json(Value::Array(out)))
}

/// POST `/images/create`: `fromSrc` imports a tarball (the body, or a URL);
/// `fromImage` (pull) arrives with the registry.
pub async fn create(
    State(daemon): State<AppState>,
    params: Params,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if params.non_empty("fromSrc").is_none() && params.non_empty("fromImage").is_some() {
        drain(body).await;
        return super::registry::pull(daemon, params, headers).await;
    }
    let options = match import_options(&params) {
        Ok(o) => o,
        Err(e) => {
            // Read what the client is still sending, or it sees a broken pipe, not our error.
            drain(body).await;
            return Err(e);
        }
    };
    let reference = options.reference.clone();
    let mut reader: Box<dyn Read + Send> = if options.source == "-" {
        Box::new(body_reader(body))
    } else {
        drain(body).await;
        Box::new(body_reader(fetch_url(&options.source).await?))
    };
    let images = daemon.images.clone();
    let id = tokio::task::spawn_blocking(move || {
        let result = images.import(&mut reader, options);
        if result.is_err() {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        }
        result
    })
    .await??;
    let name = reference
        .as_ref()
        .map(|r| r.familiar())
        .unwrap_or_else(|| id.to_string());
    daemon.events.image("import", id.as_str(), &name);
    if let Some(r) = &reference {
        daemon.events.image("tag", id.as_str(), &r.familiar());
    }
    let body = format!("{}\r\n", json!({"status": id}));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `fromSrc`, `repo`, `tag`, `message` and `changes` of an import, checked before any
/// byte of the archive is read.
fn import_options(params: &Params) -> ApiResult<ImportOptions> {
    let Some(source) = params.non_empty("fromSrc").map(str::to_string) else {
        if let Some(image) = params.get("fromImage") {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("pull access denied for {image}: pulling from registries is not supported by this berthd yet"),
            ));
        }
        return Err(ApiError::bad_request("fromSrc or fromImage is required"));
    };
    let reference = match params.non_empty("repo") {
        Some(repo) => Some(target_reference(repo, params.get("tag"))?),
        None => None,
    };
    let changes = params
        .all("changes")
        .iter()
        .map(|c| parse_change(c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ImportOptions {
        reference,
        message: params.get("message").map(str::to_string),
        changes,
        source,
    })
}

/// Consumes and discards the rest of a request body.
async fn drain(body: Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    while let Some(Ok(_)) = body.frame().await {}
}

/// Downloads an import source over plain HTTP.
async fn fetch_url(url: &str) -> ApiResult<Body> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| ApiError::bad_request(format!("invalid URL {url:?}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(ApiError::bad_request(format!(
            "cannot import from {url}: only http:// URLs (or a file, or stdin) are supported"
        )));
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client
        .get(uri)
        .await
        .map_err(|e| ApiError::internal(format!("fetching {url}: {e}")))?;
    if !response.status().is_success() {
        return Err(ApiError::bad_request(format!(
            "fetching {url}: server answered {}",
            response.status()
        )));
    }
    Ok(Body::new(response.into_body()))
}

pub async fn save_many(State(daemon): State<AppState>, params: Params) -> ApiResult<Response> {
    let names = params.all("names");
    if names.is_empty() {
        return Err(ApiError::bad_request(
            "no images to save: give at least one name",
        ));
    }
    save_response(daemon, names).await
}

/// Resolves every name before the first byte is sent, so a bad name is a clean 404.
async fn save_response(daemon: AppState, names: Vec<String>) -> ApiResult<Response> {
    let mut items: Vec<SaveItem> = Vec::new();
    for name in &names {
        let (view, tags) = save_selection(&daemon, name)?;
        match items.iter_mut().find(|i| i.image.id == view.image.id) {
            Some(existing) => {
                for t in tags {
                    if !existing.tags.contains(&t) {
                        existing.tags.push(t);
                    }
                }
            }
            None => items.push(SaveItem {
                image: view.image,
                tags,
            }),
        }
    }
    for item in &items {
        let name = item
            .tags
            .first()
            .map(|t| t.familiar())
            .unwrap_or_else(|| item.image.id.to_string());
        daemon.events.image("save", item.image.id.as_str(), &name);
    }
    let (mut writer, body) = body_channel();
    let images = daemon.images.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = archive::save(&images, &items, &mut writer) {
            tracing::error!("save failed: {e}");
            writer.fail(e);
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// A name given to `save`: a bare repository saves all its tags; a tag saves that tag;
/// an id saves the image untagged.
fn save_selection(daemon: &AppState, name: &str) -> ApiResult<(ImageView, Vec<Reference>)> {
    if let Ok(parsed) = Reference::parse_normalized(name) {
        if parsed.tag().is_none() && parsed.digest().is_none() {
            let all: Vec<ImageView> = daemon
                .images
                .list()
                .into_iter()
                .filter(|v| v.tags.iter().any(|t| t.name() == parsed.name()))
                .collect();
            if all.len() == 1 {
                let view = all.into_iter().next().expect("one element");
                let tags = view
                    .tags
                    .iter()
                    .filter(|t| t.name() == parsed.name())
                    .cloned()
                    .collect();
                return Ok((view, tags));
            }
        }
    }
    let view = daemon.images.resolve(name)?;
    let tags = match Reference::parse_with_default_tag(name) {
        Ok(r) if view.tags.contains(&r) => vec![r],
        _ => Vec::new(),
    };
    Ok((view, tags))
}

pub async fn load(
    State(daemon): State<AppState>,
    params: Params,
    body: Body,
) -> ApiResult<Response> {
    let quiet = params.flag("quiet");
    let mut reader = body_reader(body);
    let images = daemon.images.clone();
    let result = tokio::task::spawn_blocking(move || {
        let result = archive::load(&images, &mut reader);
        if result.is_err() {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        }
        result
    })
    .await??;
    let mut lines = String::new();
    for image in &result.images {
        for (reference, previous) in &image.moved {
            lines.push_str(&format!(
                "{}\r\n",
                json!({"stream": format!(
                    "The image {} already exists, renaming the old one with ID {} to empty string\n",
                    reference.familiar(), previous
                )})
            ));
        }
        if image.tags.is_empty() {
            daemon
                .events
                .image("load", image.id.as_str(), image.id.as_str());
            lines.push_str(&format!(
                "{}\r\n",
                json!({"stream": format!("Loaded image ID: {}\n", image.id)})
            ));
        }
        for tag in &image.tags {
            daemon
                .events
                .image("load", image.id.as_str(), &tag.familiar());
            lines.push_str(&format!(
                "{}\r\n",
                json!({"stream": format!("Loaded image: {}\n", tag.familiar())})
            ));
        }
    }
    let _ = quiet; // Docker sends the same lines either way; -q only hides progress bars.
    Ok(([(header::CONTENT_TYPE, "application/json")], lines).into_response())
}

pub async fn prune(State(daemon): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(
        params.get("filters"),
        &["dangling", "until", "label", "label!"],
    )?;
    let all = filters
        .get("dangling")
        .iter()
        .any(|d| d == "false" || d == "0");
    let until = match filters.get("until").first() {
        Some(u) => Some(parse_until(u)?),
        None => None,
    };
    let images = daemon.images.clone();
    let _no_creates = daemon.runtime.exclude_creation().await;
    let usage = usage_of(&daemon);
    let filters2 = filters.clone();
    let (items, reclaimed) = tokio::task::spawn_blocking(move || {
        let selected = |v: &ImageView| {
            let labels: BTreeMap<String, String> = v.image.config.labels();
            filters2.labels_match("label", &labels)
                && filters2
                    .get("label!")
                    .iter()
                    .all(|l| !Filters::single_label_match(l, &labels))
                && until.is_none_or(|u| v.image.created().is_some_and(|c| c.timestamp() < u))
        };
        images.prune(all, &selected, &usage)
    })
    .await??;
    let mut deleted = Vec::new();
    for item in &items {
        match item {
            DeleteItem::Untagged(r) => {
                daemon.events.image("untag", r, r);
                deleted.push(json!({"Untagged": r}));
            }
            DeleteItem::Deleted(id) => {
                if id.starts_with("sha256:") {
                    daemon.events.image("delete", id, id);
                }
                deleted.push(json!({"Deleted": id}));
            }
        }
    }
    Ok(Json(json!({
        "ImagesDeleted": if deleted.is_empty() { Value::Null } else { Value::Array(deleted) },
        "SpaceReclaimed": reclaimed,
    })))
}
