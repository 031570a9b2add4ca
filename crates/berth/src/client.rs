//! The HTTP client to the daemon: one connection per request over the unix socket
//! (or TCP), JSON helpers, and Docker's error message shape.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The API version this CLI speaks.
pub const API_VERSION: &str = "1.47";
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

pub type Body = BoxBody<Bytes, std::io::Error>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Cannot connect to the berth daemon at {host}. Is the berth daemon running?")]
    Connect { host: String },
    #[error("Error response from daemon: {message}")]
    Daemon { status: StatusCode, message: String },
    #[error("error talking to the daemon: {0}")]
    Transport(String),
    #[error("invalid host {0:?}: expected unix:///path or tcp://host:port")]
    InvalidHost(String),
}

impl ClientError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Daemon { status, .. } if *status == StatusCode::NOT_FOUND)
    }

    /// A 401: the registry wants credentials (docker then asks for them on a terminal).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ClientError::Daemon { status, .. } if *status == StatusCode::UNAUTHORIZED)
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

#[derive(Debug, Clone)]
enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

/// A handle on one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
    host: String,
}

impl Client {
    /// `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default socket.
    pub fn from_host(flag: Option<&str>) -> Result<Self> {
        let host = flag
            .map(str::to_string)
            .or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let endpoint = if let Some(path) = host.strip_prefix("unix://") {
            Endpoint::Unix(PathBuf::from(path))
        } else if let Some(addr) = host.strip_prefix("tcp://") {
            Endpoint::Tcp(addr.to_string())
        } else if host.starts_with('/') {
            Endpoint::Unix(PathBuf::from(&host))
        } else {
            return Err(ClientError::InvalidHost(host));
        };
        Ok(Client { endpoint, host })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends a request to `/v{API}/{path}` and returns the response, turning error
    /// statuses into [`ClientError::Daemon`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        content_type: Option<&str>,
    ) -> Result<Response<Incoming>> {
        self.send_with_headers(method, path, body, content_type, &[])
            .await
    }

    /// [`Client::send`] with extra request headers (`X-Registry-Auth`).
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Body,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let uri = format!("/v{API_VERSION}{path}");
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "berth");
        if let Some(ct) = content_type {
            builder = builder.header("Content-Type", ct);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(body)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let response = match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(|_| {
                    ClientError::Connect {
                        host: self.host.clone(),
                    }
                })?;
                self.exchange(TokioIo::new(stream), request).await?
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr).await.map_err(|_| {
                    ClientError::Connect {
                        host: self.host.clone(),
                    }
                })?;
                self.exchange(TokioIo::new(stream), request).await?
            }
        };
        if response.status().is_client_error() || response.status().is_server_error() {
            return Err(daemon_error(response).await);
        }
        Ok(response)
    }

    async fn exchange<IO>(&self, io: IO, request: Request<Body>) -> Result<Response<Incoming>>
    where
        IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        sender
            .send_request(request)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    pub async fn get(&self, path: &str) -> Result<Response<Incoming>> {
        self.send(Method::GET, path, empty(), None).await
    }

    pub async fn get_json(&self, path: &str) -> Result<Value> {
        read_json(self.get(path).await?).await
    }

    pub async fn post_json(&self, path: &str, body: Option<&Value>) -> Result<Value> {
        let (body, ct) = match body {
            Some(v) => (
                full(serde_json::to_vec(v).unwrap_or_default()),
                Some("application/json"),
            ),
            None => (empty(), None),
        };
        let response = self.send(Method::POST, path, body, ct).await?;
        read_json(response).await
    }

    pub async fn delete_json(&self, path: &str) -> Result<Value> {
        read_json(self.send(Method::DELETE, path, empty(), None).await?).await
    }
}

/// Reads a whole response as JSON (`null` for an empty body).
pub async fn read_json(response: Response<Incoming>) -> Result<Value> {
    let bytes = read_all(response).await?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ClientError::Transport(format!("invalid JSON from daemon: {e}")))
}

pub async fn read_all(response: Response<Incoming>) -> Result<Bytes> {
    response
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ClientError::Transport(e.to_string()))
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A body streamed from an async reader (a file or stdin).
pub fn reader_body<R: tokio::io::AsyncRead + Send + Sync + 'static>(reader: R) -> Body {
    let stream =
        tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).map_ok(Frame::data);
    BodyExt::boxed(StreamBody::new(stream))
}

/// Like [`reader_body`], drawing a progress line on stderr while the bytes go out, when
/// stderr is a terminal (large imports and loads take a while; a pipe stays clean).
pub fn reader_body_with_progress<R: tokio::io::AsyncRead + Send + Sync + 'static>(
    reader: R,
    label: &'static str,
    total: Option<u64>,
) -> Body {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return reader_body(reader);
    }
    let mut sent: u64 = 0;
    let mut last = std::time::Instant::now();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).map_ok(move |chunk| {
            sent += chunk.len() as u64;
            let done = total.is_some_and(|t| sent >= t);
            if last.elapsed() >= std::time::Duration::from_millis(100) || done {
                last = std::time::Instant::now();
                let line = match total {
                    Some(t) => format!(
                        "{label} {}/{}",
                        crate::output::human_size(sent as f64),
                        crate::output::human_size(t as f64)
                    ),
                    None => format!("{label} {}", crate::output::human_size(sent as f64)),
                };
                eprint!("\r{line}\x1b[K");
                if done {
                    eprintln!();
                }
            }
            Frame::data(chunk)
        });
    BodyExt::boxed(StreamBody::new(stream))
}

/// Builds `path?k=v&...` with proper encoding, skipping empty values.
pub fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            serializer.append_pair(k, v);
        }
    }
    let query = serializer.finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// Encodes a filters map as the daemon expects: `{"key":["v1","v2"]}`.
pub fn filters_json(filters: &[String]) -> std::result::Result<String, String> {
    let mut map: serde_json::Map<String, Value> = serde_json::Map::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("bad format of filter (expected name=value): {f}"))?;
        map.entry(k.to_string())
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .map(|a| a.push(Value::String(v.to_string())));
    }
    Ok(if map.is_empty() {
        String::new()
    } else {
        Value::Object(map).to_string()
    })
}

/// Encodes `key=value` filters as docker's CLI sends them (`filters.ToJSON`):
/// `{"key":{"value":true}}`, each value once; nothing at all when there are none, so
/// the parameter is left out.
pub fn filter_args_json(filters: &[String]) -> std::result::Result<String, String> {
    let mut map: serde_json::Map<String, Value> = serde_json::Map::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("bad format of filter (expected name=value): {f}"))?;
        if let Value::Object(values) = map
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(serde_json::Map::new()))
        {
            values.insert(v.to_string(), Value::Bool(true));
        }
    }
    Ok(if map.is_empty() {
        String::new()
    } else {
        Value::Object(map).to_string()
    })
}

/// Percent-encodes a path segment (image names contain `/` and `:`, which stay).
pub fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b':'
            | b'@' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The answer to a hijacking request (`attach`, `exec start`).
pub enum Hijacked {
    /// The daemon switched protocols (`101`): a raw two-way byte stream.
    Upgraded(TokioIo<hyper::upgrade::Upgraded>),
    /// The daemon answered `200` without upgrading: the output comes as the body,
    /// and there is no way to send input.
    Plain(Response<Incoming>),
}

impl Client {
    /// Sends a request asking for `Connection: Upgrade` / `Upgrade: tcp`, as docker's
    /// CLI does for attach and exec, and hands back the raw connection once the
    /// daemon has switched protocols. Error statuses become [`ClientError::Daemon`].
    pub async fn hijack(&self, path: &str, body: Option<&Value>) -> Result<Hijacked> {
        let uri = format!("/v{API_VERSION}{path}");
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("Host", "berth")
            .header("Connection", "Upgrade")
            .header("Upgrade", "tcp");
        let body = match body {
            Some(v) => {
                builder = builder.header("Content-Type", "application/json");
                full(serde_json::to_vec(v).unwrap_or_default())
            }
            None => empty(),
        };
        let request = builder
            .body(body)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let connect_error = |_| ClientError::Connect {
            host: self.host.clone(),
        };
        let response = match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_error)?;
                exchange_with_upgrades(TokioIo::new(stream), request).await?
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect_error)?;
                exchange_with_upgrades(TokioIo::new(stream), request).await?
            }
        };
        let status = response.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            let upgraded = hyper::upgrade::on(response).await.map_err(|e| {
                ClientError::Transport(format!("cannot hijack the connection: {e}"))
            })?;
            return Ok(Hijacked::Upgraded(TokioIo::new(upgraded)));
        }
        if status.is_client_error() || status.is_server_error() {
            return Err(daemon_error(response).await);
        }
        Ok(Hijacked::Plain(response))
    }
}

async fn exchange_with_upgrades<IO>(io: IO, request: Request<Body>) -> Result<Response<Incoming>>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    // `with_upgrades` keeps the connection alive past the 101 so the stream can be taken.
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))
}

/// Turns an error response into [`ClientError::Daemon`] with the daemon's message.
pub async fn daemon_error(response: Response<Incoming>) -> ClientError {
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
    ClientError::Daemon { status, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_args_like_docker() {
        let filters = [
            "driver=bridge".to_string(),
            "label=a=b".into(),
            "driver=macvlan".into(),
            "driver=bridge".into(),
        ];
        assert_eq!(
            filter_args_json(&filters).unwrap(),
            r#"{"driver":{"bridge":true,"macvlan":true},"label":{"a=b":true}}"#
        );
        assert_eq!(filter_args_json(&[]).unwrap(), "");
        assert!(filter_args_json(&["nope".into()]).is_err());
        assert_eq!(
            with_query(
                "/networks",
                &[("filters", filter_args_json(&["name=x".into()]).unwrap())]
            ),
            "/networks?filters=%7B%22name%22%3A%7B%22x%22%3Atrue%7D%7D"
        );
    }
}
