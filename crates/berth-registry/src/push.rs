//! `docker push`: each layer's blob (skipped when the registry has it), the config,
//! then an OCI manifest under the tag. berth keeps layers as uncompressed tars, which
//! are pushed as they are (`application/vnd.oci.image.layer.v1.tar`): no compression
//! pass, and the same digest every time, so re-pushes skip every layer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use berth_store::{Digest, ImageStore, Reference};
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Method, StatusCode};
use serde_json::json;

use crate::client::{empty, error_message, full, Body, Client, Credentials, RegistryConfig};
use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressSink};
use crate::pull::OCI_MANIFEST;

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

pub struct PushOptions {
    pub store: Arc<ImageStore>,
    pub config: RegistryConfig,
    pub credentials: Option<Credentials>,
    pub progress: ProgressSink,
}

#[derive(Debug, Clone)]
pub struct Pushed {
    pub tag: String,
    pub digest: String,
    pub size: usize,
}

/// Pushes the image `reference` (with a tag) names.
pub async fn push(options: &PushOptions, reference: &Reference) -> Result<Pushed> {
    let tag = reference
        .tag()
        .ok_or_else(|| Error::InvalidArgument("push needs a tag".into()))?
        .to_string();
    let view = options.store.resolve(&reference.to_string()).map_err(|_| {
        Error::NotFound(format!(
            "An image does not exist locally with the tag: {}",
            reference.familiar_name()
        ))
    })?;
    let image = view.image;
    let client = Client::first_answering(
        &options.config,
        reference.domain(),
        reference.path(),
        options.credentials.clone(),
        true,
    )
    .await?;
    let progress = &options.progress;
    progress(Progress::status(
        None,
        format!("The push refers to repository [{}]", reference.name()),
    ));
    let layers = options.store.image_layers(&image)?;
    let mut descriptors = Vec::new();
    for layer in layers.iter().rev() {
        progress(Progress::status(
            Some(layer.blob.hex()[..12].to_string()),
            "Preparing",
        ));
    }
    // Repositories of this registry the image came from: their blobs can be mounted
    // into the target repository instead of uploaded again (Docker's cross-repository
    // mount).
    let mount_sources: Vec<String> = image
        .record
        .repo_digests
        .iter()
        .filter_map(|d| d.split('@').next())
        .filter_map(|repo| {
            let full = Reference::parse_normalized(repo).ok()?;
            (full.domain() == reference.domain() && full.path() != reference.path())
                .then(|| full.path().to_string())
        })
        .collect();
    for layer in layers.iter().rev() {
        let size = options.store.content().size(&layer.blob)?;
        let id = layer.blob.hex()[..12].to_string();
        let path = options.store.content().path(&layer.blob);
        if blob_exists(&client, &layer.blob).await? {
            progress(Progress::status(Some(id), "Layer already exists"));
            continue;
        }
        if let Some(from) = mount_blob(&client, &layer.blob, &mount_sources).await? {
            progress(Progress::status(Some(id), format!("Mounted from {from}")));
            continue;
        }
        if upload_blob(
            &client,
            &layer.blob,
            size,
            BlobSource::File(path),
            &id,
            progress,
        )
        .await?
        {
            progress(Progress::status(Some(id), "Pushed"));
        } else {
            progress(Progress::status(Some(id), "Layer already exists"));
        }
    }
    for layer in &layers {
        let size = options.store.content().size(&layer.blob)?;
        descriptors
            .push(json!({"mediaType": oci_layer_type(&layer.media_type), "digest": layer.blob, "size": size}));
    }
    let config = options.store.content().read(&image.id)?;
    upload_blob(
        &client,
        &image.id,
        config.len() as u64,
        BlobSource::Bytes(config.clone()),
        "config",
        progress,
    )
    .await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": image.id, "size": config.len()},
        "layers": descriptors,
    }))
    .map_err(|e| Error::Protocol(e.to_string()))?;
    let digest = Digest::of(&manifest).to_string();
    let url = client.url(&format!("manifests/{tag}"));
    let bytes = bytes::Bytes::from(manifest.clone());
    let response = client
        .send(
            Method::PUT,
            &url,
            &[("Content-Type", OCI_MANIFEST.to_string())],
            || full(bytes.clone()),
        )
        .await?;
    if !response.status().is_success() {
        let status = response.status();
        let message = error_message(response).await;
        return Err(Error::Protocol(format!(
            "putting the manifest: {status}: {message}"
        )));
    }
    options.store.add_repo_digest(
        &image.id,
        &format!("{}@{digest}", reference.familiar_name()),
    )?;
    Ok(Pushed {
        tag,
        digest,
        size: manifest.len(),
    })
}

/// The OCI name of a layer media type (a pulled Docker gzip layer keeps its bytes).
fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        other => other,
    }
}

enum BlobSource {
    File(std::path::PathBuf),
    Bytes(Vec<u8>),
}

async fn blob_exists(client: &Client, digest: &Digest) -> Result<bool> {
    let url = client.url(&format!("blobs/{digest}"));
    let head = client.send(Method::HEAD, &url, &[], empty).await?;
    Ok(head.status().is_success())
}

/// Tries to mount `digest` from one of `sources` (repositories on the same registry);
/// returns the one it came from. A registry that answers 202 started an upload
/// instead: that session is left to expire and the blob is uploaded normally.
async fn mount_blob(
    client: &Client,
    digest: &Digest,
    sources: &[String],
) -> Result<Option<String>> {
    for from in sources {
        let url = client.url(&format!("blobs/uploads/?mount={digest}&from={from}"));
        let response = client.send(Method::POST, &url, &[], empty).await?;
        if response.status() == StatusCode::CREATED {
            return Ok(Some(from.clone()));
        }
    }
    Ok(None)
}

/// Uploads a blob unless the registry has it; returns whether it was uploaded.
async fn upload_blob(
    client: &Client,
    digest: &Digest,
    size: u64,
    source: BlobSource,
    id: &str,
    progress: &ProgressSink,
) -> Result<bool> {
    let head = client
        .send(
            Method::HEAD,
            &client.url(&format!("blobs/{digest}")),
            &[],
            empty,
        )
        .await?;
    if head.status().is_success() {
        return Ok(false);
    }
    let start = client
        .send(Method::POST, &client.url("blobs/uploads/"), &[], empty)
        .await?;
    if start.status() != StatusCode::ACCEPTED {
        let status = start.status();
        let message = error_message(start).await;
        return Err(
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                Error::Unauthorized(format!("denied: {message}"))
            } else {
                Error::Protocol(format!("starting an upload: {status}: {message}"))
            },
        );
    }
    let location = start
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Protocol("the registry gave no upload location".into()))?;
    let location = client.absolute(location);
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{separator}digest={digest}");
    let sent = Arc::new(AtomicU64::new(0));
    let body = || -> Body {
        match &source {
            BlobSource::Bytes(b) => full(b.clone()),
            BlobSource::File(path) => {
                let sent = sent.clone();
                let progress = progress.clone();
                let id = id.to_string();
                let file = match std::fs::File::open(path) {
                    Ok(f) => tokio::fs::File::from_std(f),
                    Err(e) => {
                        let stream = futures_util::stream::once(async move { Err(e) });
                        return BodyExt::boxed(StreamBody::new(stream));
                    }
                };
                let mut last = std::time::Instant::now();
                let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(
                    move |chunk| {
                        let chunk = chunk?;
                        let done = sent.fetch_add(chunk.len() as u64, Ordering::Relaxed)
                            + chunk.len() as u64;
                        if last.elapsed().as_millis() >= 100 {
                            last = std::time::Instant::now();
                            progress(Progress::bytes(&id, "Pushing", done, size));
                        }
                        Ok(Frame::data(chunk))
                    },
                );
                BodyExt::boxed(StreamBody::new(stream))
            }
        }
    };
    let response = client
        .send(
            Method::PUT,
            &url,
            &[
                ("Content-Type", "application/octet-stream".to_string()),
                ("Content-Length", size.to_string()),
            ],
            body,
        )
        .await?;
    if response.status() != StatusCode::CREATED {
        let status = response.status();
        let message = error_message(response).await;
        return Err(Error::Protocol(format!(
            "uploading {digest}: {status}: {message}"
        )));
    }
    Ok(true)
}
