//! Pull (`POST /images/create?fromImage=`), push (`POST /images/{name}/push`) and
//! `POST /auth`, with berth-registry's progress turned into Docker's JSON message
//! stream so the docker CLI draws its usual bars.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use berth_registry::{Credentials, Platform, Progress, PullOptions, PushOptions, RegistryConfig};
use berth_store::Reference;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::error::{ApiError, ApiResult};
use super::params::Params;
use super::AppState;

impl From<berth_registry::Error> for ApiError {
    fn from(e: berth_registry::Error) -> Self {
        if e.is_unauthorized() {
            return ApiError::new(StatusCode::UNAUTHORIZED, e.to_string());
        }
        ApiError::from_kind(e.kind(), e.to_string())
    }
}

fn registry_config(daemon: &AppState) -> RegistryConfig {
    let settings = daemon.settings();
    RegistryConfig {
        mirrors: settings.registry_mirrors,
        insecure: settings.insecure_registries,
        certs_dir: Some(daemon.config.certs_dir.clone()),
    }
}

/// `X-Registry-Auth`: base64url JSON, padded or not; `{}` or nothing for none.
pub fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    let raw = headers.get("x-registry-auth")?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    let decoded = [
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
    ]
    .iter()
    .find_map(|engine| engine.decode(raw).ok())?;
    let value: Value = serde_json::from_slice(&decoded).ok()?;
    let text = |k: &str| value[k].as_str().unwrap_or("").to_string();
    let c = Credentials {
        username: text("username"),
        password: text("password"),
        identity_token: text("identitytoken"),
    };
    (!c.is_empty()).then_some(c)
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
}

/// docker's progress bar: `[=====>      ]  12.3MB/70MB`.
pub fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human(current));
    }
    let width = 50u64;
    let filled = (current.min(total) * width / total) as usize;
    let mut bar = "=".repeat(filled);
    if filled < width as usize {
        bar.push('>');
        bar.push_str(&" ".repeat(width as usize - filled - 1));
    }
    format!("[{bar}] {:>8}/{}", human(current), human(total))
}

pub fn message(p: &Progress) -> Value {
    match p {
        Progress::Status {
            id: Some(id),
            status,
        } => json!({"status": status, "id": id}),
        Progress::Status { id: None, status } => json!({"status": status}),
        Progress::Bytes {
            id,
            action,
            current,
            total,
        } => json!({
            "status": action,
            "progressDetail": {"current": current, "total": total},
            "progress": progress_bar(*current, *total),
            "id": id,
        }),
    }
}

fn error_message(text: &str) -> Value {
    json!({"errorDetail": {"message": text}, "error": text})
}

/// A JSON message stream fed by `run`.
fn stream_response(rx: mpsc::UnboundedReceiver<Value>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|v| {
            let line = format!("{v}\r\n");
            (Ok::<_, std::io::Error>(bytes::Bytes::from(line)), rx)
        })
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

fn sink(tx: &mpsc::UnboundedSender<Value>) -> berth_registry::ProgressSink {
    let tx = tx.clone();
    Arc::new(move |p: Progress| {
        let _ = tx.send(message(&p));
    })
}

/// `POST /images/create?fromImage=…`.
pub async fn pull(daemon: AppState, params: Params, headers: HeaderMap) -> ApiResult<Response> {
    let from = params.get("fromImage").unwrap_or("");
    let tag = params.get("tag").unwrap_or("");
    let input = if tag.is_empty() {
        from.to_string()
    } else if tag.starts_with("sha256:") {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    // A name alone (no tag parameter, no tag or digest in fromImage) means every tag,
    // as dockerd reads it; the CLI always sends a tag otherwise.
    let all_tags = tag.is_empty()
        && Reference::parse_normalized(from)
            .map(|r| r.tag().is_none() && r.digest().is_none())
            .unwrap_or(false);
    let reference = if all_tags {
        Reference::parse_normalized(&input)?
    } else {
        Reference::parse_with_default_tag(&input)?
    };
    let platform = match params.non_empty("platform") {
        Some(p) => Some(Platform::parse(p)?),
        None => None,
    };
    let options = PullOptions {
        store: daemon.images.clone(),
        config: registry_config(&daemon),
        credentials: credentials(&headers),
        platform,
        progress: Arc::new(|_| {}),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let options = PullOptions {
        progress: sink(&tx),
        ..options
    };
    tokio::spawn(async move {
        let references = if all_tags {
            match berth_registry::tags(&options, &reference).await {
                Ok(tags) => tags
                    .iter()
                    .filter_map(|t| reference.with_tag(t).ok())
                    .collect(),
                Err(e) => {
                    let _ = tx.send(error_message(&e.to_string()));
                    return;
                }
            }
        } else {
            vec![reference.clone()]
        };
        let mut any_new = false;
        for r in &references {
            match berth_registry::pull(&options, r).await {
                Ok(pulled) => {
                    any_new |= pulled.downloaded;
                    daemon.events.image("pull", &r.familiar(), &r.familiar());
                    if !all_tags {
                        let status = if pulled.downloaded {
                            format!("Status: Downloaded newer image for {}", r.familiar())
                        } else {
                            format!("Status: Image is up to date for {}", r.familiar())
                        };
                        let _ = tx.send(json!({"status": status}));
                    }
                }
                Err(e) => {
                    let _ = tx.send(error_message(&e.to_string()));
                    return;
                }
            }
        }
        if all_tags {
            let status = if any_new {
                format!(
                    "Status: Downloaded newer image for {}",
                    reference.familiar_name()
                )
            } else {
                format!(
                    "Status: Image is up to date for {}",
                    reference.familiar_name()
                )
            };
            let _ = tx.send(json!({"status": status}));
        }
    });
    Ok(stream_response(rx))
}

/// `POST /images/{name}/push?tag=`.
pub async fn push(
    State(daemon): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    params: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let base = Reference::parse_normalized(&name)?;
    let tags: Vec<Reference> = match params.non_empty("tag") {
        Some(tag) => vec![base.with_tag(tag)?],
        None if base.tag().is_some() => vec![base.clone()],
        None => {
            // Every tag of the repository (`push -a`).
            let repo = base.name();
            let mut found: Vec<Reference> = daemon
                .images
                .list()
                .into_iter()
                .flat_map(|v| v.tags)
                .filter(|t| t.name() == repo && t.tag().is_some())
                .collect();
            found.sort();
            found.dedup();
            if found.is_empty() {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "An image does not exist locally with the tag: {}",
                        base.familiar_name()
                    ),
                ));
            }
            found
        }
    };
    // A missing image is the client's 404, before any stream starts.
    for t in &tags {
        if daemon.images.resolve(&t.to_string()).is_err() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "An image does not exist locally with the tag: {}",
                    t.familiar_name()
                ),
            ));
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let options = PushOptions {
        store: daemon.images.clone(),
        config: registry_config(&daemon),
        credentials: credentials(&headers),
        progress: sink(&tx),
    };
    tokio::spawn(async move {
        for t in &tags {
            match berth_registry::push(&options, t).await {
                Ok(pushed) => {
                    daemon.events.image("push", &t.familiar(), &t.familiar());
                    let _ = tx.send(json!({"status": format!("{}: digest: {} size: {}", pushed.tag, pushed.digest, pushed.size)}));
                    let _ = tx.send(json!({"progressDetail": {}, "aux": {"Tag": pushed.tag, "Digest": pushed.digest, "Size": pushed.size}}));
                }
                Err(e) => {
                    let _ = tx.send(error_message(&e.to_string()));
                    return;
                }
            }
        }
    });
    Ok(stream_response(rx))
}

/// `POST /auth`: checks credentials against the registry, as `docker login` does.
pub async fn auth(State(daemon): State<AppState>, request: Request) -> ApiResult<Json<Value>> {
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let server = body["serveraddress"].as_str().unwrap_or("");
    let domain = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("");
    let domain = match domain {
        "" | "index.docker.io" | "registry-1.docker.io" => berth_registry::client::DOCKER_HUB,
        d => d,
    };
    let credentials = Credentials {
        username: body["username"].as_str().unwrap_or("").to_string(),
        password: body["password"].as_str().unwrap_or("").to_string(),
        identity_token: body["identitytoken"].as_str().unwrap_or("").to_string(),
    };
    berth_registry::login(&registry_config(&daemon), domain, credentials).await?;
    Ok(Json(
        json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_like_docker() {
        let bar = progress_bar(12_300_000, 70_000_000);
        assert!(bar.starts_with("[========>"), "{bar}");
        assert!(bar.ends_with(" 12.3MB/70MB"), "{bar}");
        assert_eq!(progress_bar(5, 0).trim(), "5B");
    }

    #[test]
    fn registry_auth_header() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"u","password":"p","serveraddress":"127.0.0.1:5000"}"#);
        headers.insert("x-registry-auth", encoded.parse().unwrap());
        let c = credentials(&headers).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        headers.insert("x-registry-auth", "e30=".parse().unwrap());
        assert!(credentials(&headers).is_none());
    }
}
