//! `save` and `load`: the docker-archive format (`manifest.json` + `repositories`) written
//! together with an OCI image layout (`oci-layout`, `index.json`, `blobs/`) in one tar,
//! as Docker 25+ does, and read back from either form.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::compression::decompress;
use crate::digest::{chain_ids, Digest};
use crate::error::{Error, Result};
use crate::extract::{extract_layer, open_beneath};
use crate::image::ImageConfig;
use crate::layer::MEDIA_TYPE_LAYER_TAR;
use crate::reference::Reference;
use crate::store::{Image, ImageStore};

const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// One image to save, with the names to record for it.
pub struct SaveItem {
    pub image: Image,
    pub tags: Vec<Reference>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Writes `items` as one archive to `out`.
pub fn save<W: Write>(store: &ImageStore, items: &[SaveItem], out: W) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut written: HashSet<String> = HashSet::new();
    let mut manifest_json = Vec::new();
    let mut index_manifests = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let io_err = |e: io::Error| Error::io("write archive", "<stream>", e);
    append_dir(&mut tar, "blobs/").map_err(io_err)?;
    append_dir(&mut tar, "blobs/sha256/").map_err(io_err)?;
    for item in items {
        let image = &item.image;
        let config_bytes = store.content().read(&image.id)?;
        let config_path = format!("blobs/sha256/{}", image.id.hex());
        if written.insert(config_path.clone()) {
            append_bytes(&mut tar, &config_path, &config_bytes).map_err(io_err)?;
        }
        let mut layer_paths = Vec::new();
        let mut layer_descriptors = Vec::new();
        for layer in store.image_layers(image)? {
            let path = format!("blobs/sha256/{}", layer.diff_id.hex());
            // Archives carry uncompressed layers; a pulled layer is kept as the registry
            // served it, so it is decompressed into a temp file first (its size goes
            // in the tar header before its bytes).
            let (blob, size): (File, u64) = if layer.media_type == MEDIA_TYPE_LAYER_TAR {
                (
                    store.content().open_blob(&layer.blob)?,
                    store.content().size(&layer.blob)?,
                )
            } else {
                let scratch = store.temp_dir()?;
                let mut tmp = tempfile_in(scratch.path())?;
                let source = store.content().open_blob(&layer.blob)?;
                let (_, mut plain) = decompress(source).map_err(io_err)?;
                let size = io::copy(&mut plain, &mut tmp).map_err(io_err)?;
                io::Seek::seek(&mut tmp, io::SeekFrom::Start(0)).map_err(io_err)?;
                (tmp, size)
            };
            if written.insert(path.clone()) {
                let mut header = file_header(size, 0o644);
                tar.append_data(&mut header, &path, blob).map_err(io_err)?;
            }
            layer_descriptors.push(json!({
                "mediaType": MEDIA_TYPE_LAYER_TAR,
                "digest": layer.diff_id,
                "size": size,
            }));
            layer_paths.push(path);
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": {"mediaType": MEDIA_TYPE_CONFIG, "digest": image.id, "size": config_bytes.len()},
            "layers": layer_descriptors,
        });
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        let manifest_digest = Digest::of(&manifest_bytes);
        let manifest_path = format!("blobs/sha256/{}", manifest_digest.hex());
        if written.insert(manifest_path.clone()) {
            append_bytes(&mut tar, &manifest_path, &manifest_bytes).map_err(io_err)?;
        }
        let descriptor = |annotations: Value| {
            json!({
                "mediaType": MEDIA_TYPE_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_bytes.len(),
                "annotations": annotations,
            })
        };
        if item.tags.is_empty() {
            index_manifests.push(descriptor(json!({})));
        }
        for tag in &item.tags {
            index_manifests.push(descriptor(json!({
                "io.containerd.image.name": tag.to_string(),
                "org.opencontainers.image.ref.name": tag.tag().unwrap_or("latest"),
            })));
            if let (Some(t), Some(top)) = (tag.tag(), layer_paths.last()) {
                repositories.entry(tag.familiar_name()).or_default().insert(
                    t.to_string(),
                    top.trim_start_matches("blobs/sha256/").to_string(),
                );
            }
        }
        manifest_json.push(json!({
            "Config": config_path,
            "RepoTags": if item.tags.is_empty() { Value::Null } else {
                json!(item.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>())
            },
            "Layers": layer_paths,
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": index_manifests,
    });
    let to_bytes = |v: &Value| serde_json::to_vec(v).map_err(|e| Error::Internal(e.to_string()));
    append_bytes(&mut tar, "index.json", &to_bytes(&index)?).map_err(io_err)?;
    append_bytes(&mut tar, "manifest.json", &to_bytes(&json!(manifest_json))?).map_err(io_err)?;
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err)?;
    if !repositories.is_empty() {
        append_bytes(&mut tar, "repositories", &to_bytes(&json!(repositories))?).map_err(io_err)?;
    }
    tar.into_inner().map_err(io_err)?.flush().map_err(io_err)?;
    Ok(())
}

fn file_header(size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mtime(0);
    header
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut header = file_header(data.len() as u64, 0o644);
    tar.append_data(&mut header, path, data)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    header.set_mtime(0);
    tar.append_data(&mut header, path, io::empty())
}

/// What `load` brought in: the names tagged, or the ids of untagged images.
#[derive(Debug, Default)]
pub struct LoadResult {
    pub images: Vec<LoadedImage>,
}

#[derive(Debug)]
pub struct LoadedImage {
    pub id: Digest,
    pub tags: Vec<Reference>,
    /// Tags that pointed at another image before, with that image's id.
    pub moved: Vec<(Reference, Digest)>,
}

/// Reads a docker-archive or OCI-layout tar (plain or compressed) into the store.
pub fn load<R: Read>(store: &ImageStore, reader: R) -> Result<LoadResult> {
    let scratch = store.temp_dir()?;
    let (_, tar) =
        decompress(reader).map_err(|e| Error::archive(format!("reading archive: {e}")))?;
    let stats = extract_layer(tar, scratch.path())?;
    if stats.entries == 0 {
        return Err(Error::archive("no entries found: not a tar archive"));
    }
    let root = scratch.path();
    let entries: Vec<(Vec<u8>, Vec<String>, Vec<String>)> =
        if let Ok(mut f) = open_beneath(root, "manifest.json") {
            let manifest: Vec<ManifestEntry> = read_json_from(&mut f, "manifest.json")?;
            let mut out = Vec::new();
            for entry in manifest {
                let config = read_all(root, &entry.config)?;
                out.push((config, entry.repo_tags.unwrap_or_default(), entry.layers));
            }
            out
        } else if let Ok(mut f) = open_beneath(root, "index.json") {
            let index: Value = read_json_from(&mut f, "index.json")?;
            oci_entries(root, &index)?
        } else {
            return Err(Error::archive(
                "neither manifest.json nor index.json found: not an image archive",
            ));
        };
    let mut result = LoadResult::default();
    for (config_bytes, tags, layer_paths) in entries {
        result
            .images
            .push(load_one(store, root, &config_bytes, &tags, &layer_paths)?);
    }
    Ok(result)
}

fn load_one(
    store: &ImageStore,
    root: &Path,
    config_bytes: &[u8],
    tags: &[String],
    layer_paths: &[String],
) -> Result<LoadedImage> {
    let config: ImageConfig = serde_json::from_slice(config_bytes)
        .map_err(|e| Error::archive(format!("invalid image config: {e}")))?;
    if config.rootfs.diff_ids.len() != layer_paths.len() {
        return Err(Error::archive(format!(
            "image config lists {} layers but the manifest has {}",
            config.rootfs.diff_ids.len(),
            layer_paths.len()
        )));
    }
    let references = tags
        .iter()
        .map(|t| Reference::parse_with_default_tag(t))
        .collect::<Result<Vec<_>>>()?;
    let chains = chain_ids(&config.rootfs.diff_ids);
    let mut staged = Vec::new();
    for (i, path) in layer_paths.iter().enumerate() {
        if store.layers().get(&chains[i])?.is_some() {
            continue;
        }
        let file = open_beneath(root, path)?;
        let (_, tar) =
            decompress(file).map_err(|e| Error::archive(format!("reading layer {path}: {e}")))?;
        let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
        let layer = store.layers().stage(parent, tar, store.content())?;
        if layer.record.diff_id != config.rootfs.diff_ids[i] {
            return Err(Error::DigestMismatch {
                expected: config.rootfs.diff_ids[i].to_string(),
                actual: layer.record.diff_id.to_string(),
            });
        }
        staged.push(layer);
    }
    // The config is stored as given: its digest is the image id the archive promised.
    let id = Digest::of(config_bytes);
    let created = store.create_image_with_bytes(config, config_bytes.to_vec(), staged, None)?;
    debug_assert_eq!(created, id);
    let mut moved = Vec::new();
    for reference in &references {
        if let Some(previous) = store.tag(&id, reference)? {
            moved.push((reference.clone(), previous));
        }
    }
    Ok(LoadedImage {
        id,
        tags: references,
        moved,
    })
}

/// Entries of an OCI layout: each manifest in `index.json` (nested indexes resolved to
/// this host's platform) with the name its annotations give.
/// An unnamed temp file under `dir` (gone when closed).
fn tempfile_in(dir: &Path) -> Result<File> {
    let path = dir.join(format!("layer-{}", crate::fsutil::random_hex(8)));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io("create temp file", &path, e))?;
    let _ = std::fs::remove_file(&path);
    Ok(file)
}

fn oci_entries(root: &Path, index: &Value) -> Result<Vec<(Vec<u8>, Vec<String>, Vec<String>)>> {
    let mut out = Vec::new();
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    for descriptor in manifests {
        let name = descriptor["annotations"]["io.containerd.image.name"]
            .as_str()
            .map(str::to_string);
        let mut manifest = read_blob_json(root, &descriptor)?;
        if manifest["manifests"].is_array() {
            let arch = crate::store::host_architecture();
            let chosen = manifest["manifests"]
                .as_array()
                .and_then(|m| {
                    m.iter()
                        .find(|d| {
                            d["platform"]["architecture"] == arch && d["platform"]["os"] == "linux"
                        })
                        .cloned()
                })
                .ok_or_else(|| {
                    Error::archive(format!("no manifest for linux/{arch} in the archive"))
                })?;
            manifest = read_blob_json(root, &chosen)?;
        }
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| Error::archive("manifest without config"))?;
        let config = read_all(root, &blob_path(config_digest)?)?;
        let layers = manifest["layers"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|d| blob_path(d["digest"].as_str().unwrap_or("")))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        out.push((config, name.into_iter().collect(), layers));
    }
    Ok(out)
}

fn blob_path(digest: &str) -> Result<String> {
    let d =
        Digest::parse(digest).map_err(|_| Error::archive(format!("invalid digest {digest:?}")))?;
    Ok(format!("blobs/sha256/{}", d.hex()))
}

/// Reads the blob a descriptor points at, checking its digest.
fn read_blob_json(root: &Path, descriptor: &Value) -> Result<Value> {
    let digest = descriptor["digest"].as_str().unwrap_or("");
    let bytes = read_all(root, &blob_path(digest)?)?;
    let actual = Digest::of(&bytes);
    if actual.as_str() != digest {
        return Err(Error::DigestMismatch {
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::archive(format!("invalid JSON in {digest}: {e}")))
}

fn read_all(root: &Path, path: &str) -> Result<Vec<u8>> {
    let mut file = open_beneath(root, path)?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)
        .map_err(|e| Error::archive(format!("reading {path}: {e}")))?;
    Ok(out)
}

fn read_json_from<T: serde::de::DeserializeOwned>(file: &mut File, name: &str) -> Result<T> {
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| Error::archive(format!("reading {name}: {e}")))?;
    serde_json::from_slice(&data).map_err(|e| Error::archive(format!("invalid {name}: {e}")))
}
