//! The Docker Engine API over HTTP: routing, version prefixes, and the handlers.
//! Handlers parse the request, call into the stores, and shape the reply; nothing
//! below this module knows about HTTP.

mod body;
mod build;
mod containers;
mod error;
mod filters;
mod hijack;
mod images;
mod networks;
mod params;
mod registry;
mod stream;
mod system;
mod volumes;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Router, ServiceExt};
use tokio_util::sync::CancellationToken;
use tower::Layer;

pub use error::ApiError;

use crate::state::Daemon;

/// The API version berthd advertises and the oldest it serves.
pub const API_VERSION: ApiVersion = ApiVersion(1, 47);
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 24);

/// The API version a request was made with (from its `/vX.Y` prefix, else the newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl ApiVersion {
    fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.split_once('.')?;
        Some(ApiVersion(major.parse().ok()?, minor.parse().ok()?))
    }
}

/// Shared handler state.
pub type AppState = Arc<Daemon>;

/// Every route, unversioned; [`version_prefix`] strips `/vX.Y` before routing.
pub fn router(daemon: AppState) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/system/df", get(system::disk_usage))
        .route("/auth", post(registry::auth))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/prune", post(images::prune))
        .route("/images/get", get(images::save_many))
        .route(
            "/images/{*rest}",
            get(images::get_dispatch)
                .post(images::post_dispatch)
                .delete(images::delete),
        )
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}", delete(containers::remove))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/stats", get(containers::stats))
        .route("/containers/{id}/exec", post(containers::exec_create))
        .route("/containers/{id}/changes", get(containers::changes))
        .route("/containers/{id}/export", get(containers::export))
        .route(
            "/containers/{id}/archive",
            get(containers::archive_get)
                .head(containers::archive_head)
                .put(containers::archive_put),
        )
        .route("/commit", post(containers::commit))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/exec/{id}/start", post(containers::exec_start))
        .route("/exec/{id}/resize", post(containers::exec_resize))
        .route("/exec/{id}/json", get(containers::exec_inspect))
        .fallback(not_found)
        .with_state(daemon)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: {}", uri.path()),
    )
}

/// Strips and checks the `/vX.Y` prefix, and stamps Docker's headers on every reply.
async fn version_prefix(mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let mut version = API_VERSION;
    if let Some(rest) = path.strip_prefix("/v") {
        let (prefix, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if let Some(v) = ApiVersion::parse(prefix) {
            if v > API_VERSION {
                return stamp(
                    ApiError::bad_request(format!(
                        "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                    ))
                    .into_response(),
                );
            }
            if v < MIN_API_VERSION {
                return stamp(
                    ApiError::bad_request(format!(
                        "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                    ))
                    .into_response(),
                );
            }
            version = v;
            let new_path = if tail.is_empty() { "/" } else { tail };
            let new_uri = match request.uri().query() {
                Some(q) => format!("{new_path}?{q}"),
                None => new_path.to_string(),
            };
            if let Ok(uri) = new_uri.parse::<Uri>() {
                *request.uri_mut() = uri;
            }
        }
    }
    request.extensions_mut().insert(version);
    stamp(next.run(request).await)
}

fn stamp(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("Api-Version", HeaderValue::from_static(api_version_str()));
    headers.insert("Ostype", HeaderValue::from_static("linux"));
    headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
    headers.insert(
        "Server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    response
}

/// [`API_VERSION`] as the headers carry it.
pub const API_VERSION_STR: &str = "1.47";

fn api_version_str() -> &'static str {
    API_VERSION_STR
}

/// Serves the API on `listener` (the unix socket, or TCP with the explicit insecure
/// opt-in) until `shutdown` is cancelled.
pub async fn serve<L>(
    listener: L,
    daemon: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let app = axum::middleware::from_fn(version_prefix).layer(router(daemon));
    axum::serve(listener, ServiceExt::<Request>::into_make_service(app))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_string_matches() {
        assert_eq!(ApiVersion::parse(API_VERSION_STR), Some(API_VERSION));
        assert!(ApiVersion(1, 9) < ApiVersion(1, 24));
    }
}
