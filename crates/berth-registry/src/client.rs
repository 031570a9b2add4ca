//! One repository on one registry over HTTP: endpoints (mirrors, plain HTTP only for
//! insecure registries), the WWW-Authenticate challenge flow for Basic and Bearer
//! auth, and requests with the Authorization header that flow produced.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::{Error, Result};

pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// What the daemon is configured with (`registry-mirrors`, `insecure-registries`,
/// and where extra CAs live: `<certs_dir>/<host[:port]>/*.crt`, as Docker's
/// /etc/docker/certs.d).
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    pub mirrors: Vec<String>,
    pub insecure: Vec<String>,
    pub certs_dir: Option<PathBuf>,
}

/// One base URL to try, and whether its certificate must verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub verify_tls: bool,
}

/// What a client sent as `X-Registry-Auth` or to `/auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub identity_token: String,
}

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty() && self.identity_token.is_empty()
    }
}

/// The registry that serves images named with `domain`.
pub const DOCKER_HUB: &str = "docker.io";

impl RegistryConfig {
    /// Docker's rule: localhost and loopback are insecure by default; others only when
    /// listed (by `host[:port]` or by a CIDR holding the host's address).
    pub fn is_insecure(&self, domain: &str) -> bool {
        let host = host_of(domain);
        if host == "localhost" {
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if ip.is_loopback() {
                return true;
            }
            for entry in &self.insecure {
                if let Some((net, bits)) = entry.split_once('/') {
                    if let (Ok(IpAddr::V4(net)), Ok(bits), IpAddr::V4(ip)) =
                        (net.parse::<IpAddr>(), bits.parse::<u32>(), ip)
                    {
                        let mask = if bits == 0 {
                            0
                        } else {
                            u32::MAX << (32 - bits.min(32))
                        };
                        if u32::from(net) & mask == u32::from(ip) & mask {
                            return true;
                        }
                    }
                }
            }
        }
        self.insecure
            .iter()
            .any(|e| e.trim_end_matches('/') == domain || e.trim_end_matches('/') == host)
    }

    /// Base URLs to try, in order: mirrors first for Docker Hub; for an insecure
    /// registry HTTPS without verification, then plain HTTP (Docker's order).
    pub fn endpoints(&self, domain: &str) -> Vec<Endpoint> {
        if domain == DOCKER_HUB {
            let mut out: Vec<Endpoint> = self
                .mirrors
                .iter()
                .map(|m| {
                    let url = m.trim_end_matches('/').to_string();
                    let host = url
                        .trim_start_matches("https://")
                        .trim_start_matches("http://")
                        .to_string();
                    Endpoint {
                        verify_tls: !self.is_insecure(&host),
                        url,
                    }
                })
                .collect();
            out.push(Endpoint {
                url: "https://registry-1.docker.io".into(),
                verify_tls: true,
            });
            return out;
        }
        if self.is_insecure(domain) {
            return vec![
                Endpoint {
                    url: format!("https://{domain}"),
                    verify_tls: false,
                },
                Endpoint {
                    url: format!("http://{domain}"),
                    verify_tls: false,
                },
            ];
        }
        vec![Endpoint {
            url: format!("https://{domain}"),
            verify_tls: true,
        }]
    }

    /// TLS settings for `host[:port]`: the system's roots plus the registry's own CAs,
    /// or no verification at all for an insecure registry.
    fn tls(&self, host: &str, verify: bool) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Transport(format!("TLS: {e}")))?;
        if !verify {
            return Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth());
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(dir) = &self.certs_dir {
            if let Ok(entries) = std::fs::read_dir(dir.join(host)) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.extension().and_then(|e| e.to_str()) != Some("crt") {
                        continue;
                    }
                    let data = std::fs::read(&path).map_err(|e| {
                        Error::Transport(format!("reading {}: {e}", path.display()))
                    })?;
                    for cert in rustls_pemfile::certs(&mut data.as_slice()).flatten() {
                        roots
                            .add(cert)
                            .map_err(|e| Error::Transport(format!("{}: {e}", path.display())))?;
                    }
                }
            }
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    }
}

/// The verifier of an insecure registry: any certificate is taken.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    domain.split(':').next().unwrap_or(domain)
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: String,
        scope: String,
    },
}

pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut realm = String::new();
    let mut service = String::new();
    let mut scope = String::new();
    // key="value" pairs; values may hold commas (scopes do), so split on `",`.
    let mut rest = params.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = value.to_string(),
            "service" => service = value.to_string(),
            "scope" => scope = value.to_string(),
            _ => {}
        }
        rest = remainder.trim_start_matches(',').trim();
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm,
            service,
            scope,
        }),
        _ => None,
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// An HTTP client for one repository at one base URL.
pub struct Client {
    http: hyper_util::client::legacy::Client<Connector, Body>,
    pub base: String,
    /// The repository path (`library/busybox`).
    pub repository: String,
    credentials: Option<Credentials>,
    /// `pull` or `pull,push`, for bearer token scopes.
    actions: String,
    authorization: Mutex<Option<String>>,
}

/// A failed request, with the causes hyper keeps out of its own message (a refused
/// certificate, a refused connection).
fn transport(url: &str, e: &(dyn std::error::Error + 'static)) -> Error {
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    Error::Transport(format!("Get \"{url}\": {message}"))
}

impl Client {
    pub fn new(
        config: &RegistryConfig,
        endpoint: &Endpoint,
        repository: &str,
        credentials: Option<Credentials>,
        push: bool,
    ) -> Result<Self> {
        let host = endpoint
            .url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        let tls = config.tls(&host, endpoint.verify_tls)?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Client {
            http: hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .build(connector),
            base: endpoint.url.trim_end_matches('/').to_string(),
            repository: repository.to_string(),
            credentials: credentials.filter(|c| !c.is_empty()),
            actions: if push {
                "pull,push".into()
            } else {
                "pull".into()
            },
            authorization: Mutex::new(None),
        })
    }

    /// A client for the first of `domain`'s endpoints that answers at all (HTTPS
    /// before HTTP for insecure registries).
    pub async fn first_answering(
        config: &RegistryConfig,
        domain: &str,
        repository: &str,
        credentials: Option<Credentials>,
        push: bool,
    ) -> Result<Self> {
        let mut last = None;
        for endpoint in config.endpoints(domain) {
            let client = Client::new(config, &endpoint, repository, credentials.clone(), push)?;
            match client.ping().await {
                Ok(()) => return Ok(client),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Transport(format!("no endpoint for {domain}"))))
    }

    /// `GET /v2/`: any HTTP answer (401 included) means the endpoint speaks the
    /// protocol; used to pick between HTTPS and HTTP for insecure registries.
    pub async fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        self.raw(&Method::GET, &url, &[], empty(), None)
            .await
            .map(|_| ())
    }

    /// `/v2/<repository>/<rest>` on this registry.
    pub fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{}", self.base, self.repository, rest)
    }

    /// A URL the registry gave us (a `Location`), made absolute.
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    async fn raw(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, String)],
        body: Body,
        authorization: Option<&str>,
    ) -> Result<Response<Incoming>> {
        let mut builder = Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, v);
        }
        if let Some(a) = authorization {
            builder = builder.header("Authorization", a);
        }
        let request = builder
            .body(body)
            .map_err(|e| Error::InvalidArgument(format!("{url}: {e}")))?;
        self.http
            .request(request)
            .await
            .map_err(|e| transport(url, &e))
    }

    /// Sends a request, answering one auth challenge if the registry makes it.
    /// `body` is called again for the retry.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: impl Fn() -> Body,
    ) -> Result<Response<Incoming>> {
        let cached = self
            .authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let response = self
            .raw(&method, url, headers, body(), cached.as_deref())
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let Some(challenge) = challenge else {
            return Err(Error::Unauthorized(format!(
                "{}: unauthorized",
                self.repository
            )));
        };
        let authorization = self.authorize(&challenge).await?;
        *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(authorization.clone());
        let response = self
            .raw(&method, url, headers, body(), Some(&authorization))
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let message = error_message(response).await;
            return Err(Error::Unauthorized(if self.credentials.is_some() {
                format!("unauthorized: incorrect username or password ({message})")
            } else {
                format!("unauthorized: authentication required ({message})")
            }));
        }
        Ok(response)
    }

    fn basic(&self) -> Option<String> {
        let c = self.credentials.as_ref()?;
        if c.username.is_empty() {
            return None;
        }
        let raw = format!("{}:{}", c.username, c.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }

    async fn authorize(&self, challenge: &Challenge) -> Result<String> {
        match challenge {
            Challenge::Basic => self
                .basic()
                .ok_or_else(|| Error::Unauthorized("unauthorized: authentication required".into())),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = if scope.is_empty() {
                    format!("repository:{}:{}", self.repository, self.actions)
                } else {
                    scope.clone()
                };
                let url = format!(
                    "{realm}?service={}&scope={}",
                    encode(service),
                    encode(&scope)
                );
                let response = self
                    .raw(&Method::GET, &url, &[], empty(), self.basic().as_deref())
                    .await?;
                let status = response.status();
                let body = read_all(response, 1 << 20).await?;
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(Error::Unauthorized(
                        "unauthorized: incorrect username or password".into(),
                    ));
                }
                if !status.is_success() {
                    return Err(Error::Protocol(format!(
                        "token service {realm} answered {status}"
                    )));
                }
                let value: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|e| Error::Protocol(format!("token service {realm}: {e}")))?;
                let token = value["token"]
                    .as_str()
                    .or_else(|| value["access_token"].as_str())
                    .ok_or_else(|| {
                        Error::Protocol(format!("token service {realm} sent no token"))
                    })?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    /// `GET /v2/`: whether these credentials are good here (`docker login`).
    pub async fn check_login(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let response = self.send(Method::GET, &url, &[], empty).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Error::Protocol(format!(
                "login attempt to {url} failed with status: {}",
                response.status()
            )))
        }
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The body, up to `limit` bytes.
pub async fn read_all(response: Response<Incoming>, limit: usize) -> Result<Vec<u8>> {
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Transport(format!("reading a response: {e}")))?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
            if out.len() > limit {
                return Err(Error::Protocol(format!(
                    "response larger than {limit} bytes"
                )));
            }
        }
    }
    Ok(out)
}

/// The registry's own words for an error response (`errors[0].message`).
pub async fn error_message(response: Response<Incoming>) -> String {
    let status = response.status();
    let body = read_all(response, 1 << 16).await.unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match parsed["errors"][0]["message"].as_str() {
        Some(m) => m.to_string(),
        None => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge("Basic realm=\"Registry Realm\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("Bearer realm=\"http://auth.local/token\",service=\"registry.local\",scope=\"repository:a/b:pull,push\""),
            Some(Challenge::Bearer {
                realm: "http://auth.local/token".into(),
                service: "registry.local".into(),
                scope: "repository:a/b:pull,push".into(),
            })
        );
    }

    #[test]
    fn insecure_rules_and_endpoints() {
        let config = RegistryConfig {
            mirrors: vec!["http://127.0.0.1:5001/".into()],
            insecure: vec!["reg.lan:5000".into(), "10.1.0.0/16".into()],
            certs_dir: None,
        };
        assert!(config.is_insecure("localhost:5000"));
        assert!(config.is_insecure("127.0.0.1:5000"));
        assert!(config.is_insecure("reg.lan:5000"));
        assert!(config.is_insecure("10.1.2.3:443"));
        assert!(!config.is_insecure("quay.io"));
        let urls = |d: &str| -> Vec<(String, bool)> {
            config
                .endpoints(d)
                .into_iter()
                .map(|e| (e.url, e.verify_tls))
                .collect()
        };
        assert_eq!(
            urls("127.0.0.1:5000"),
            vec![
                ("https://127.0.0.1:5000".to_string(), false),
                ("http://127.0.0.1:5000".to_string(), false)
            ]
        );
        assert_eq!(urls("quay.io"), vec![("https://quay.io".to_string(), true)]);
        assert_eq!(
            urls("docker.io"),
            vec![
                ("http://127.0.0.1:5001".to_string(), false),
                ("https://registry-1.docker.io".to_string(), true)
            ]
        );
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
