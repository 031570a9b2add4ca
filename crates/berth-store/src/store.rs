//! The image store: ties blobs, layers, image records and references together.
//!
//! # Layout under the data root
//! - `blobs/sha256/<hex>`: configs, manifests and layer tars ([`ContentStore`])
//! - `layers/<chain hex>/{diff/,layer.json}`: unpacked layers ([`LayerStore`])
//! - `images/<id hex>.json`: one [`ImageRecord`] per image; the image exists iff it does
//! - `refs/<sha256 of name>.json`: one [`RefRecord`] per tag or digest reference
//!
//! Writes go blobs, then layers, then the image record, then references, so a crash
//! leaves at worst unreferenced blobs and layers, which [`ImageStore::open`] collects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::content::ContentStore;
use crate::digest::{chain_ids, is_sha256_hex, Digest};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::image::{ConfigChange, ContainerConfig, History, ImageConfig, RootFs};
use crate::layer::{LayerRecord, LayerStore, StagedLayer};
use crate::reference::Reference;

/// What the store keeps about an image beyond its config blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    #[serde(default)]
    pub parent: Option<Digest>,
    /// Sum of the sizes of the image's layers.
    pub size: u64,
    /// When this image arrived in the store.
    pub added: DateTime<Utc>,
    #[serde(default)]
    pub repo_digests: Vec<String>,
    #[serde(default)]
    pub last_tag_time: Option<DateTime<Utc>>,
}

/// One reference (`refs/<hash>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefRecord {
    reference: String,
    target: Digest,
}

/// An image as the store knows it.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: Digest,
    pub config: Arc<ImageConfig>,
    pub record: ImageRecord,
}

impl Image {
    /// `created` from the config, as a time.
    pub fn created(&self) -> Option<DateTime<Utc>> {
        self.config
            .created
            .as_deref()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.with_timezone(&Utc))
    }
}

/// An image with its references, as listings and inspect show it.
#[derive(Debug, Clone)]
pub struct ImageView {
    pub image: Image,
    pub tags: Vec<Reference>,
    /// Images whose parent is this one.
    pub children: usize,
}

/// Who uses an image, so that deletion can refuse as Docker does.
#[derive(Debug, Default, Clone)]
pub struct ImageUsage {
    pub running_container: Option<String>,
    pub stopped_container: Option<String>,
}

/// One line of a deletion's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

/// Options for [`ImageStore::import`].
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    pub reference: Option<Reference>,
    pub message: Option<String>,
    pub changes: Vec<ConfigChange>,
    /// Shown in history as `Imported from <source>`.
    pub source: String,
}

#[derive(Default)]
struct Index {
    images: HashMap<Digest, Image>,
    refs: BTreeMap<Reference, Digest>,
}

impl Index {
    fn tags_of(&self, id: &Digest) -> Vec<Reference> {
        self.refs
            .iter()
            .filter(|(_, target)| *target == id)
            .map(|(r, _)| r.clone())
            .collect()
    }

    fn children_of(&self, id: &Digest) -> usize {
        self.images
            .values()
            .filter(|i| i.record.parent.as_ref() == Some(id))
            .count()
    }

    fn view(&self, image: &Image) -> ImageView {
        ImageView {
            image: image.clone(),
            tags: self.tags_of(&image.id),
            children: self.children_of(&image.id),
        }
    }
}

/// The store. Reads take a shared lock on the in-memory index; every change is made under
/// one mutation lock, written through to disk before the index is updated.
pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    layers: LayerStore,
    images_dir: PathBuf,
    refs_dir: PathBuf,
    index: RwLock<Index>,
    mutation: Mutex<()>,
}

impl ImageStore {
    /// Opens (creating) the store under `root`, reloads the index, sweeps what an
    /// interrupted write left, and collects blobs and layers no image refers to.
    pub fn open(root: &Path) -> Result<Self> {
        let content = ContentStore::open(root)?;
        let layers = LayerStore::open(root)?;
        let images_dir = root.join("images");
        let refs_dir = root.join("refs");
        for dir in [&images_dir, &refs_dir, &root.join("tmp")] {
            fsutil::ensure_dir(dir)?;
            fsutil::sweep_temps(dir)?;
        }
        let store = ImageStore {
            root: root.to_path_buf(),
            content,
            layers,
            images_dir,
            refs_dir,
            index: RwLock::new(Index::default()),
            mutation: Mutex::new(()),
        };
        store.reload()?;
        store.collect_garbage()?;
        Ok(store)
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    /// A scratch directory on the same filesystem, swept at start-up.
    pub fn temp_dir(&self) -> Result<tempdir::TempDir> {
        tempdir::TempDir::new(&self.root.join("tmp"))
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.mutation.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    fn reload(&self) -> Result<()> {
        let mut index = Index::default();
        for path in json_files(&self.images_dir)? {
            let record: ImageRecord = match fsutil::read_json(&path) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    quarantine(&path, &e);
                    continue;
                }
            };
            let config = match self.content.read(&record.id).and_then(|b| {
                serde_json::from_slice::<ImageConfig>(&b)
                    .map_err(|e| Error::Internal(e.to_string()))
            }) {
                Ok(c) => c,
                Err(e) => {
                    quarantine(&path, &e);
                    continue;
                }
            };
            index.images.insert(
                record.id.clone(),
                Image {
                    id: record.id.clone(),
                    config: Arc::new(config),
                    record,
                },
            );
        }
        for path in json_files(&self.refs_dir)? {
            match fsutil::read_json::<RefRecord>(&path) {
                Ok(Some(r)) => match Reference::parse_normalized(&r.reference) {
                    Ok(reference) if index.images.contains_key(&r.target) => {
                        index.refs.insert(reference, r.target);
                    }
                    _ => {
                        let _ = fs::remove_file(&path); // points at nothing: a crash mid-delete
                    }
                },
                Ok(None) => {}
                Err(e) => quarantine(&path, &e),
            }
        }
        *self.write_index() = index;
        Ok(())
    }

    /// Removes layers and blobs that no image refers to. Returns the bytes freed.
    pub fn collect_garbage(&self) -> Result<u64> {
        let _guard = self.lock();
        let (live_layers, live_blobs) = {
            let index = self.read_index();
            let mut layers = HashSet::new();
            let mut blobs = HashSet::new();
            for image in index.images.values() {
                blobs.insert(image.id.clone());
                for chain in chain_ids(&image.config.rootfs.diff_ids) {
                    layers.insert(chain);
                }
            }
            (layers, blobs)
        };
        let mut live_blobs = live_blobs;
        let mut freed = 0;
        for chain in self.layers.list()? {
            match self.layers.get(&chain) {
                Ok(Some(record)) if live_layers.contains(&chain) => {
                    live_blobs.insert(record.blob);
                }
                Ok(record) => {
                    freed += record.map(|r| r.size).unwrap_or(0);
                    self.layers.remove(&chain)?;
                }
                Err(_) => self.layers.remove(&chain)?,
            }
        }
        for blob in self.content.list()? {
            if !live_blobs.contains(&blob) {
                freed += self.content.size(&blob).unwrap_or(0);
                self.content.remove(&blob)?;
            }
        }
        Ok(freed)
    }

    /// Every image with its tags.
    pub fn list(&self) -> Vec<ImageView> {
        let index = self.read_index();
        index.images.values().map(|i| index.view(i)).collect()
    }

    pub fn count(&self) -> usize {
        self.read_index().images.len()
    }

    /// Finds an image by id, id prefix, `sha256:` id, or reference.
    pub fn resolve(&self, input: &str) -> Result<ImageView> {
        let index = self.read_index();
        let id = lookup(&index, input)?;
        let image = index
            .images
            .get(&id)
            .ok_or_else(|| Error::ImageNotFound(input.to_string()))?;
        Ok(index.view(image))
    }

    pub fn get(&self, id: &Digest) -> Option<Image> {
        self.read_index().images.get(id).cloned()
    }

    /// The layer directories of an image, bottom first: the overlay lowerdirs.
    pub fn layer_paths(&self, id: &Digest) -> Result<Vec<PathBuf>> {
        let image = self
            .get(id)
            .ok_or_else(|| Error::ImageNotFound(id.to_string()))?;
        Ok(chain_ids(&image.config.rootfs.diff_ids)
            .iter()
            .map(|c| self.layers.diff_path(c))
            .collect())
    }

    /// The layer records of an image, bottom first.
    pub fn image_layers(&self, image: &Image) -> Result<Vec<LayerRecord>> {
        chain_ids(&image.config.rootfs.diff_ids)
            .iter()
            .map(|c| {
                self.layers
                    .get(c)?
                    .ok_or_else(|| Error::LayerNotFound(c.to_string()))
            })
            .collect()
    }

    /// Imports a root filesystem tar (plain or compressed) as a one-layer image.
    pub fn import<R: Read>(&self, reader: R, options: ImportOptions) -> Result<Digest> {
        let (_, tar) = crate::compression::decompress(reader)
            .map_err(|e| Error::archive(format!("reading archive: {e}")))?;
        let staged = self.layers.stage(None, tar, &self.content)?;
        let now = now_rfc3339();
        let mut config = ContainerConfig::default();
        for change in &options.changes {
            config.apply(change);
        }
        let image = ImageConfig {
            architecture: host_architecture().to_string(),
            os: "linux".into(),
            created: Some(now.clone()),
            comment: options.message.clone().filter(|m| !m.is_empty()),
            config,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![staged.record.diff_id.clone()],
            },
            history: vec![History {
                created: Some(now),
                created_by: None,
                comment: Some(match options.message.as_deref() {
                    Some(m) if !m.is_empty() => m.to_string(),
                    _ => format!("Imported from {}", options.source),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let id = self.create_image(image, vec![staged], None)?;
        if let Some(reference) = options.reference {
            self.tag(&id, &reference)?;
        }
        Ok(id)
    }

    /// Commits staged layers (in order, bottom first, on top of the config's earlier
    /// layers) and the config, and records the image. Returns the image id.
    pub fn create_image(
        &self,
        config: ImageConfig,
        staged: Vec<StagedLayer>,
        parent: Option<Digest>,
    ) -> Result<Digest> {
        let bytes = config.to_bytes();
        self.create_image_with_bytes(config, bytes, staged, parent)
    }

    /// As [`create_image`](Self::create_image), keeping the config exactly as `bytes`
    /// (a loaded or pulled image's id is the digest of the bytes it came with).
    pub fn create_image_with_bytes(
        &self,
        config: ImageConfig,
        bytes: Vec<u8>,
        staged: Vec<StagedLayer>,
        parent: Option<Digest>,
    ) -> Result<Digest> {
        let _guard = self.lock();
        for layer in staged {
            self.layers.commit(layer)?;
        }
        let mut size = 0;
        for chain in chain_ids(&config.rootfs.diff_ids) {
            let record = self
                .layers
                .get(&chain)?
                .ok_or_else(|| Error::LayerNotFound(chain.to_string()))?;
            size += record.size;
        }
        let id = self.content.put(&bytes)?;
        if let Some(existing) = self.read_index().images.get(&id) {
            return Ok(existing.id.clone());
        }
        let record = ImageRecord {
            id: id.clone(),
            parent,
            size,
            added: Utc::now(),
            repo_digests: Vec::new(),
            last_tag_time: None,
        };
        fsutil::write_json_atomic(&self.images_dir.join(format!("{}.json", id.hex())), &record)?;
        self.write_index().images.insert(
            id.clone(),
            Image {
                id: id.clone(),
                config: Arc::new(config),
                record,
            },
        );
        Ok(id)
    }

    /// Points `reference` (tagged) at image `id`, moving it from any other image.
    /// Returns the image the tag was taken from, if any.
    pub fn tag(&self, id: &Digest, reference: &Reference) -> Result<Option<Digest>> {
        let _guard = self.lock();
        if !self.read_index().images.contains_key(id) {
            return Err(Error::ImageNotFound(id.to_string()));
        }
        let path = self.ref_path(reference);
        fsutil::write_json_atomic(
            &path,
            &RefRecord {
                reference: reference.to_string(),
                target: id.clone(),
            },
        )?;
        let mut index = self.write_index();
        let previous = index.refs.insert(reference.clone(), id.clone());
        if let Some(image) = index.images.get_mut(id) {
            image.record.last_tag_time = Some(Utc::now());
        }
        Ok(previous.filter(|p| p != id))
    }

    /// Records `repo@sha256:…` (the manifest a registry knows the image by), replacing
    /// an older digest for the same repository as Docker does.
    pub fn add_repo_digest(&self, id: &Digest, repo_digest: &str) -> Result<()> {
        let _guard = self.lock();
        let repo = repo_digest.split('@').next().unwrap_or("");
        let mut index = self.write_index();
        let image = index
            .images
            .get_mut(id)
            .ok_or_else(|| Error::ImageNotFound(id.to_string()))?;
        let mut record = image.record.clone();
        record
            .repo_digests
            .retain(|d| d.split('@').next().unwrap_or("") != repo);
        record.repo_digests.push(repo_digest.to_string());
        fsutil::write_json_atomic(&self.images_dir.join(format!("{}.json", id.hex())), &record)?;
        image.record = record;
        Ok(())
    }

    fn ref_path(&self, reference: &Reference) -> PathBuf {
        self.refs_dir.join(format!(
            "{}.json",
            Digest::of(reference.to_string().as_bytes()).hex()
        ))
    }

    fn remove_ref(&self, reference: &Reference) -> Result<()> {
        let path = self.ref_path(reference);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove reference", &path, e)),
        }
        self.write_index().refs.remove(reference);
        Ok(())
    }

    /// Deletes or untags as `docker rmi` does. `usage` tells which containers use an image.
    pub fn delete(
        &self,
        input: &str,
        force: bool,
        prune_parents: bool,
        usage: &dyn Fn(&Digest) -> ImageUsage,
    ) -> Result<Vec<DeleteItem>> {
        let _guard = self.lock();
        let (id, named) = {
            let index = self.read_index();
            let id = lookup(&index, input)?;
            let named = Reference::parse_with_default_tag(input)
                .ok()
                .filter(|r| index.refs.get(r) == Some(&id));
            (id, named)
        };
        let mut items = Vec::new();
        let repo_refs = self.read_index().tags_of(&id);
        let users = usage(&id);
        if let Some(reference) = named {
            if let Some(container) = users
                .running_container
                .as_ref()
                .or(users.stopped_container.as_ref())
            {
                if !force && repo_refs.len() == 1 {
                    return Err(Error::conflict(format!(
                        "conflict: unable to remove repository reference \"{input}\" (must force) - container {} is using its referenced image {}",
                        short(container),
                        id.short()
                    )));
                }
            }
            self.remove_ref(&reference)?;
            items.push(DeleteItem::Untagged(reference.familiar()));
            if !self.read_index().tags_of(&id).is_empty() || users.running_container.is_some() {
                return Ok(items);
            }
        } else if is_single_reference(&repo_refs) {
            self.check_conflicts(&id, force, false, &users)?;
            for r in &repo_refs {
                self.remove_ref(r)?;
                items.push(DeleteItem::Untagged(r.familiar()));
            }
        }
        self.delete_image(&id, force, prune_parents, usage, &mut items, false)?;
        Ok(items)
    }

    fn check_conflicts(
        &self,
        id: &Digest,
        force: bool,
        check_refs: bool,
        users: &ImageUsage,
    ) -> Result<()> {
        let index = self.read_index();
        if index.children_of(id) > 0 {
            return Err(Error::conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                id.short()
            )));
        }
        if let Some(c) = &users.running_container {
            return Err(Error::conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                id.short(),
                short(c)
            )));
        }
        if force {
            return Ok(());
        }
        if check_refs && !index.tags_of(id).is_empty() {
            return Err(Error::conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                id.short()
            )));
        }
        if let Some(c) = &users.stopped_container {
            return Err(Error::conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                id.short(),
                short(c)
            )));
        }
        Ok(())
    }

    fn delete_image(
        &self,
        id: &Digest,
        force: bool,
        prune_parents: bool,
        usage: &dyn Fn(&Digest) -> ImageUsage,
        items: &mut Vec<DeleteItem>,
        quiet: bool,
    ) -> Result<()> {
        let users = usage(id);
        if let Err(e) = self.check_conflicts(id, force, true, &users) {
            return if quiet { Ok(()) } else { Err(e) };
        }
        if quiet && !self.read_index().tags_of(id).is_empty() {
            return Ok(());
        }
        let tags = self.read_index().tags_of(id);
        for r in tags {
            self.remove_ref(&r)?;
            items.push(DeleteItem::Untagged(r.familiar()));
        }
        let Some(image) = self.get(id) else {
            return Ok(());
        };
        let record_path = self.images_dir.join(format!("{}.json", id.hex()));
        fs::remove_file(&record_path)
            .map_err(|e| Error::io("remove image record", &record_path, e))?;
        self.write_index().images.remove(id);
        items.push(DeleteItem::Deleted(id.to_string()));
        for chain in self.release_layers(&image)? {
            items.push(DeleteItem::Deleted(chain.to_string()));
        }
        self.content.remove(id)?;
        if prune_parents {
            if let Some(parent) = &image.record.parent {
                self.delete_image(parent, false, true, usage, items, true)?;
            }
        }
        Ok(())
    }

    /// Removes the image's layers that no remaining image uses, top first.
    fn release_layers(&self, image: &Image) -> Result<Vec<Digest>> {
        let live: HashSet<Digest> = self
            .read_index()
            .images
            .values()
            .flat_map(|i| chain_ids(&i.config.rootfs.diff_ids))
            .collect();
        let mut removed = Vec::new();
        for chain in chain_ids(&image.config.rootfs.diff_ids).into_iter().rev() {
            if live.contains(&chain) {
                break; // everything below is shared too
            }
            if let Some(record) = self.layers.get(&chain)? {
                self.layers.remove(&chain)?;
                if !self.blob_in_use(&record.blob) {
                    self.content.remove(&record.blob)?;
                }
                removed.push(chain);
            }
        }
        Ok(removed)
    }

    fn blob_in_use(&self, blob: &Digest) -> bool {
        self.layers.list().unwrap_or_default().iter().any(|c| {
            self.layers
                .get(c)
                .ok()
                .flatten()
                .is_some_and(|r| &r.blob == blob)
        })
    }

    /// Removes dangling images (or, with `all`, every image no container uses) that pass
    /// `keep_out`'s test. Returns what was done and the bytes reclaimed.
    pub fn prune(
        &self,
        all: bool,
        selected: &dyn Fn(&ImageView) -> bool,
        usage: &dyn Fn(&Digest) -> ImageUsage,
    ) -> Result<(Vec<DeleteItem>, u64)> {
        let candidates: Vec<ImageView> = self
            .list()
            .into_iter()
            .filter(|v| {
                if all {
                    true
                } else {
                    v.tags.is_empty() && v.children == 0
                }
            })
            .filter(|v| selected(v))
            .collect();
        let mut items = Vec::new();
        let mut reclaimed = 0;
        let _guard = self.lock();
        for view in candidates {
            let users = usage(&view.image.id);
            if users.running_container.is_some() || users.stopped_container.is_some() {
                continue;
            }
            if self.read_index().children_of(&view.image.id) > 0 {
                continue;
            }
            // Space reclaimed is what the layers released took, as Docker counts it:
            // layers another image still uses stay and count for nothing.
            let layer_sizes: HashMap<String, u64> = self
                .image_layers(&view.image)
                .unwrap_or_default()
                .into_iter()
                .map(|l| (l.chain_id.to_string(), l.size))
                .collect();
            let before = items.len();
            if self
                .delete_image(&view.image.id, true, false, usage, &mut items, false)
                .is_ok()
            {
                for item in &items[before..] {
                    if let DeleteItem::Deleted(id) = item {
                        reclaimed += layer_sizes.get(id).copied().unwrap_or(0);
                    }
                }
            }
        }
        Ok((items, reclaimed))
    }

    /// The image's history, newest first, with layer sizes where a step made a layer.
    pub fn history(&self, input: &str) -> Result<Vec<HistoryItem>> {
        let view = self.resolve(input)?;
        let image = &view.image;
        let layers = self.image_layers(image)?;
        let mut out = Vec::new();
        let mut layer_iter = layers.iter();
        let history: Vec<History> = if image.config.history.is_empty() {
            layers.iter().map(|_| History::default()).collect()
        } else {
            image.config.history.clone()
        };
        for h in &history {
            let size = if h.empty_layer {
                0
            } else {
                layer_iter.next().map(|l| l.size).unwrap_or(0)
            };
            out.push(HistoryItem {
                id: "<missing>".into(),
                created: h
                    .created
                    .as_deref()
                    .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
                    .map(|t| t.timestamp())
                    .unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        out.reverse();
        if let Some(top) = out.first_mut() {
            top.id = image.id.to_string();
            top.tags = view.tags.iter().map(|t| t.familiar()).collect();
        }
        Ok(out)
    }
}

/// One row of `history`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub comment: String,
}

fn lookup(index: &Index, input: &str) -> Result<Digest> {
    let not_found = || {
        Error::ImageNotFound(match Reference::parse_with_default_tag(input) {
            Ok(r) => r.familiar(),
            Err(_) => input.to_string(),
        })
    };
    let hex_part = input.strip_prefix("sha256:");
    if let Some(hex) = hex_part.or(Some(input)).filter(|h| is_sha256_hex(h)) {
        let id = Digest::from_hex(hex)?;
        if index.images.contains_key(&id) {
            return Ok(id);
        }
        return Err(not_found());
    }
    if hex_part.is_none() {
        if let Ok(reference) = Reference::parse_with_default_tag(input) {
            if let Some(id) = index.refs.get(&reference) {
                return Ok(id.clone());
            }
            if let Some(digest) = reference.digest() {
                let wanted = format!("{}@{}", reference.name(), digest);
                if let Some(image) = index
                    .images
                    .values()
                    .find(|i| i.record.repo_digests.iter().any(|d| d == &wanted))
                {
                    return Ok(image.id.clone());
                }
            }
        }
    }
    let prefix = hex_part.unwrap_or(input);
    if !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        let mut matches = index
            .images
            .keys()
            .filter(|id| id.hex().starts_with(prefix));
        if let Some(first) = matches.next() {
            if matches.next().is_none() {
                return Ok(first.clone());
            }
        }
    }
    Err(not_found())
}

/// Docker's rule for `rmi <id>`: at most one tag, and digests only of that repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    let tags: Vec<&Reference> = refs.iter().filter(|r| r.digest().is_none()).collect();
    match tags.len() {
        0 => {
            let names: HashSet<String> = refs.iter().map(|r| r.name()).collect();
            names.len() == 1
        }
        1 => refs
            .iter()
            .filter(|r| r.digest().is_some())
            .all(|r| r.name() == tags[0].name()),
        _ => false,
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
    Ok(entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect())
}

/// Moves a record that cannot be read aside, so one bad file never stops the daemon.
fn quarantine(path: &Path, error: &Error) {
    let dest = path.with_extension("corrupt");
    tracing::warn!(path = %path.display(), %error, "quarantining unreadable record");
    let _ = fs::rename(path, dest);
}

/// RFC 3339 with nanoseconds, as Docker writes `created`.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The architecture name in OCI terms (`amd64`, `arm64`).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// A directory removed when dropped.
pub mod tempdir {
    use std::path::{Path, PathBuf};

    use crate::error::Result;
    use crate::fsutil;

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(parent: &Path) -> Result<Self> {
            let path = parent.join(format!(".tmp-{}", fsutil::random_hex(12)));
            fsutil::ensure_dir(&path)?;
            Ok(TempDir(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fsutil::remove_tree(&self.0);
        }
    }
}
