//! `docker pull`: manifest (or index, resolved to one platform), config, then the
//! layers, three at a time, each streamed through digest verification, decompression
//! and extraction with no temp copy of the compressed blob. A layer is kept as soon as
//! it is verified, so a pull that breaks off resumes from there; the image appears
//! only when every layer is in.

use std::io::Read;
use std::sync::Arc;

use berth_store::digest::chain_ids;
use berth_store::{Digest, ImageConfig, ImageStore, Reference};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};

use crate::client::{empty, error_message, read_all, Client, Credentials, RegistryConfig};
use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressSink};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MAX_MANIFEST: usize = 4 << 20;
const PARALLEL_DOWNLOADS: usize = 3;

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn host() -> Self {
        Platform {
            os: "linux".into(),
            architecture: berth_store::store::host_architecture().into(),
            variant: None,
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(Error::InvalidArgument(format!(
                "\"{text}\": unknown operating system or architecture: invalid argument"
            ))),
        }
    }

    fn matches(&self, entry: &Value) -> bool {
        entry["os"].as_str() == Some(self.os.as_str())
            && entry["architecture"].as_str() == Some(self.architecture.as_str())
            && self
                .variant
                .as_deref()
                .is_none_or(|v| entry["variant"].as_str() == Some(v))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What a pull needs besides the reference.
pub struct PullOptions {
    pub store: Arc<ImageStore>,
    pub config: RegistryConfig,
    pub credentials: Option<Credentials>,
    pub platform: Option<Platform>,
    pub progress: ProgressSink,
}

/// What a pull made.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: Digest,
    /// The manifest's digest (`RepoDigests`).
    pub digest: String,
    /// False when the image was already in the store.
    pub downloaded: bool,
}

/// Pulls `reference` (tag or digest) and tags it.
pub async fn pull(options: &PullOptions, reference: &Reference) -> Result<Pulled> {
    let mut last_error = None;
    for endpoint in options.config.endpoints(reference.domain()) {
        let client = match Client::new(
            &options.config,
            &endpoint,
            reference.path(),
            options.credentials.clone(),
            false,
        ) {
            Ok(c) => c,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        match pull_from(&client, options, reference).await {
            Ok(p) => return Ok(p),
            Err(Error::Unauthorized(message)) => {
                return Err(Error::Unauthorized(format!(
                    "pull access denied for {}, repository does not exist or may require 'docker login': {message}",
                    reference.familiar_name()
                )))
            }
            // A mirror that fails is skipped; auth and content errors are final.
            Err(e @ Error::Transport(_)) => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| Error::Transport("no registry endpoint".into())))
}

/// Every tag of the repository (`pull -a`).
pub async fn tags(options: &PullOptions, reference: &Reference) -> Result<Vec<String>> {
    let client = Client::first_answering(
        &options.config,
        reference.domain(),
        reference.path(),
        options.credentials.clone(),
        false,
    )
    .await?;
    let url = client.url("tags/list");
    let response = client.send(Method::GET, &url, &[], empty).await?;
    if !response.status().is_success() {
        let status = response.status();
        let message = error_message(response).await;
        return Err(status_error(status, &message, reference));
    }
    let body = read_all(response, MAX_MANIFEST).await?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("tags list: {e}")))?;
    Ok(value["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect())
}

fn status_error(status: StatusCode, message: &str, reference: &Reference) -> Error {
    match status {
        StatusCode::NOT_FOUND => Error::NotFound(format!(
            "manifest for {} not found: manifest unknown: {message}",
            reference.familiar()
        )),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {message}",
            reference.familiar_name()
        )),
        _ => Error::Protocol(format!("{}: {status}: {message}", reference.familiar())),
    }
}

async fn get_manifest(
    client: &Client,
    reference: &Reference,
    what: &str,
) -> Result<(String, Vec<u8>, String)> {
    let url = client.url(&format!("manifests/{what}"));
    let accept = [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX].join(", ");
    let response = client
        .send(Method::GET, &url, &[("Accept", accept)], empty)
        .await?;
    let status = response.status();
    if !status.is_success() {
        let message = error_message(response).await;
        return Err(status_error(status, &message, reference));
    }
    let media_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let body = read_all(response, MAX_MANIFEST).await?;
    let digest = Digest::of(&body).to_string();
    if what.starts_with("sha256:") && what != digest {
        return Err(Error::Protocol(format!(
            "manifest verification failed for digest {what}"
        )));
    }
    let media_type = if media_type.is_empty() || media_type == "application/json" {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(String::from))
            .unwrap_or_default()
    } else {
        media_type
    };
    Ok((media_type, body, digest))
}

async fn pull_from(
    client: &Client,
    options: &PullOptions,
    reference: &Reference,
) -> Result<Pulled> {
    let progress = &options.progress;
    let what = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    progress(Progress::status(
        Some(reference.tag().unwrap_or(&what).to_string()),
        format!("Pulling from {}", reference.familiar_name()),
    ));
    let (mut media_type, mut body, top_digest) = get_manifest(client, reference, &what).await?;
    let mut digest = top_digest.clone();
    if media_type == DOCKER_LIST || media_type == OCI_INDEX {
        let index: Value = serde_json::from_slice(&body)
            .map_err(|e| Error::Protocol(format!("manifest list: {e}")))?;
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let entry = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| platform.matches(&m["platform"]))
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no matching manifest for {platform} in the manifest list entries"
                ))
            })?;
        let child = entry["digest"]
            .as_str()
            .ok_or_else(|| Error::Protocol("manifest list entry without a digest".into()))?
            .to_string();
        let (t, b, d) = get_manifest(client, reference, &child).await?;
        media_type = t;
        body = b;
        digest = d;
    }
    if media_type != DOCKER_MANIFEST && media_type != OCI_MANIFEST {
        return Err(Error::Protocol(format!(
            "unsupported manifest media type {media_type:?}"
        )));
    }
    let manifest: Value =
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("manifest: {e}")))?;

    // The config: the image id is its digest.
    let config_digest = Digest::parse(manifest["config"]["digest"].as_str().unwrap_or(""))
        .map_err(|_| Error::Protocol("manifest without a valid config digest".into()))?;
    let config_bytes = fetch_small_blob(client, &config_digest).await?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::Protocol(format!("image config {config_digest}: {e}")))?;
    if let Some(wanted) = &options.platform {
        if config.os != wanted.os || config.architecture != wanted.architecture {
            return Err(Error::NotFound(format!(
                "image with reference {} was found but does not match the specified platform: wanted {wanted}, actual: {}/{}",
                reference.familiar(),
                config.os,
                config.architecture
            )));
        }
    }
    let layers: Vec<Value> = manifest["layers"].as_array().cloned().unwrap_or_default();
    let diff_ids = config.rootfs.diff_ids.clone();
    if layers.len() != diff_ids.len() {
        return Err(Error::Protocol(format!(
            "the manifest has {} layers and the config {}",
            layers.len(),
            diff_ids.len()
        )));
    }
    let chains = chain_ids(&diff_ids);
    let store = options.store.clone();
    let existed = store.get(&config_digest).is_some();

    let semaphore = Arc::new(Semaphore::new(PARALLEL_DOWNLOADS));
    let mut tasks = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let blob = Digest::parse(layer["digest"].as_str().unwrap_or(""))
            .map_err(|_| Error::Protocol("manifest layer without a valid digest".into()))?;
        let id = blob.hex()[..12].to_string();
        if store.layers().get(&chains[i])?.is_some() {
            progress(Progress::status(Some(id), "Already exists"));
            continue;
        }
        progress(Progress::status(Some(id.clone()), "Pulling fs layer"));
        let size = layer["size"].as_u64().unwrap_or(0);
        let parent = if i == 0 {
            None
        } else {
            Some(chains[i - 1].clone())
        };
        let job = LayerJob {
            media_type: layer["mediaType"]
                .as_str()
                .unwrap_or("application/vnd.oci.image.layer.v1.tar+gzip")
                .to_string(),
            blob,
            size,
            id,
            parent,
            chain: chains[i].clone(),
            diff_id: diff_ids[i].clone(),
        };
        let semaphore = semaphore.clone();
        let url = client.url(&format!("blobs/{}", job.blob));
        let store = store.clone();
        let progress = progress.clone();
        tasks.push(async move {
            let _permit = semaphore
                .acquire()
                .await
                .map_err(|_| Error::Protocol("download queue closed".into()))?;
            download_layer(client, &url, job, store, progress).await
        });
    }
    let results = futures_util::future::join_all(tasks).await;
    for r in results {
        r?;
    }
    let id = store.create_image_with_bytes(config, config_bytes, Vec::new(), None)?;
    if let Some(tag) = reference.tag() {
        store.tag(&id, &reference.with_tag(tag)?)?;
    }
    store.add_repo_digest(&id, &format!("{}@{digest}", reference.familiar_name()))?;
    progress(Progress::status(None, format!("Digest: {digest}")));
    Ok(Pulled {
        id,
        digest,
        downloaded: !existed,
    })
}

async fn fetch_small_blob(client: &Client, digest: &Digest) -> Result<Vec<u8>> {
    let mut url = client.url(&format!("blobs/{digest}"));
    for _ in 0..3 {
        let response = client.send(Method::GET, &url, &[], empty).await?;
        if response.status().is_redirection() {
            if let Some(location) = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
            {
                url = client.absolute(location);
                continue;
            }
        }
        if !response.status().is_success() {
            let status = response.status();
            let message = error_message(response).await;
            return Err(Error::Protocol(format!(
                "fetching {digest}: {status}: {message}"
            )));
        }
        let body = read_all(response, 64 << 20).await?;
        if Digest::of(&body) != *digest {
            return Err(Error::Protocol(format!(
                "blob {digest} failed verification: its content has another digest"
            )));
        }
        return Ok(body);
    }
    Err(Error::Protocol(format!(
        "fetching {digest}: too many redirects"
    )))
}

struct LayerJob {
    blob: Digest,
    media_type: String,
    size: u64,
    id: String,
    parent: Option<Digest>,
    chain: Digest,
    diff_id: Digest,
}

/// A blocking `Read` over chunks that an async task sends.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

async fn download_layer(
    client: &Client,
    url: &str,
    job: LayerJob,
    store: Arc<ImageStore>,
    progress: ProgressSink,
) -> Result<()> {
    let mut url = url.to_string();
    let mut response = client.send(Method::GET, &url, &[], empty).await?;
    for _ in 0..3 {
        if !response.status().is_redirection() {
            break;
        }
        let Some(location) = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
        else {
            break;
        };
        url = client.absolute(location);
        response = client.send(Method::GET, &url, &[], empty).await?;
    }
    if !response.status().is_success() {
        let status = response.status();
        let message = error_message(response).await;
        return Err(Error::Protocol(format!(
            "fetching layer {}: {status}: {message}",
            job.blob
        )));
    }
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let expected = job.blob.clone();
    let diff_id = job.diff_id.clone();
    let chain = job.chain.clone();
    let parent = job.parent.clone();
    let media_type = job.media_type.clone();
    let unpack = tokio::task::spawn_blocking(move || -> Result<()> {
        let reader = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        let staged = store
            .layers()
            .stage_blob(
                parent.as_ref(),
                reader,
                store.content(),
                &expected,
                &media_type,
            )
            .map_err(|e| match e {
                berth_store::Error::DigestMismatch { .. } => Error::Protocol(format!(
                    "filesystem layer verification failed for digest {expected}"
                )),
                e => Error::Store(e),
            })?;
        if staged.record.diff_id != diff_id || staged.record.chain_id != chain {
            return Err(Error::Protocol(format!(
                "layer {expected} does not match the image config (diff id {} instead of {diff_id})",
                staged.record.diff_id
            )));
        }
        store.layers().commit(staged)?;
        Ok(())
    });

    let mut body = response.into_body();
    let mut current: u64 = 0;
    let mut last_report = std::time::Instant::now();
    let mut failure = None;
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                let message = format!("layer {}: the registry connection broke: {e}", job.blob);
                let _ = tx
                    .send(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        message.clone(),
                    )))
                    .await;
                failure = Some(Error::Transport(message));
                break;
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    current += data.len() as u64;
                    if tx.send(Ok(data)).await.is_err() {
                        break; // the unpacker failed; its error tells why
                    }
                    if last_report.elapsed().as_millis() >= 100 {
                        last_report = std::time::Instant::now();
                        progress(Progress::bytes(&job.id, "Downloading", current, job.size));
                    }
                }
            }
        }
    }
    drop(tx);
    let unpacked = unpack
        .await
        .map_err(|e| Error::Protocol(format!("unpacking layer {}: {e}", job.blob)))?;
    if let Some(e) = failure {
        return Err(e);
    }
    unpacked?;
    progress(Progress::status(Some(job.id.clone()), "Verifying Checksum"));
    progress(Progress::status(Some(job.id.clone()), "Download complete"));
    progress(Progress::status(Some(job.id), "Pull complete"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert!(p.matches(&json!({"os": "linux", "architecture": "arm64", "variant": "v8"})));
        assert!(!p.matches(&json!({"os": "linux", "architecture": "amd64"})));
        let amd = Platform::parse("linux/amd64").unwrap();
        assert!(amd.matches(&json!({"os": "linux", "architecture": "amd64"})));
        assert!(Platform::parse("linux").is_err());
    }
}
