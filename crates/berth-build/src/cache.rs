//! The classic builder's cache: each step's result image, found again by (parent
//! image, step text, build args). Kept in `builder/cache.json` under the data root.
//!
//! For `system df` and `builder prune` a cache entry is one build-cache record. Its
//! image is *shared* while an image the user sees builds on it (it is tagged, or it is
//! the parent of another image); otherwise it is a leftover of a build whose result is
//! gone, which `builder prune` removes without `-a`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use berth_store::{fsutil, Digest, ImageStore, ImageUsage};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    image: String,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    last_used_at: Option<String>,
    #[serde(default)]
    usage_count: u64,
}

/// One record as `GET /system/df` reports it under `BuildCache`.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheRecord {
    pub id: String,
    pub image: Digest,
    pub description: String,
    /// Bytes this step added over its parent image.
    pub size: u64,
    pub shared: bool,
    pub in_use: bool,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub usage_count: u64,
    /// The labels of the step's image (those of its Dockerfile so far).
    pub labels: std::collections::BTreeMap<String, String>,
}

/// What `builder prune` removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub deleted: Vec<String>,
    pub reclaimed: u64,
    /// Intermediate images removed with their records.
    pub images_deleted: Vec<Digest>,
}

pub struct BuildCache {
    path: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

impl BuildCache {
    pub fn open(path: PathBuf) -> Self {
        let raw: HashMap<String, Value> =
            fsutil::read_json(&path).ok().flatten().unwrap_or_default();
        let entries = raw
            .into_iter()
            .filter_map(|(key, value)| {
                let entry = match value {
                    // The first format kept only the image id.
                    Value::String(image) => Entry {
                        image,
                        created_at: String::new(),
                        last_used_at: None,
                        usage_count: 0,
                    },
                    other => serde_json::from_value(other).ok()?,
                };
                Some((key, entry))
            })
            .collect();
        BuildCache {
            path,
            entries: Mutex::new(entries),
        }
    }

    fn save(&self, entries: &HashMap<String, Entry>) {
        if let Some(dir) = self.path.parent() {
            let _ = fsutil::ensure_dir(dir);
        }
        if let Err(e) = fsutil::write_json_atomic(&self.path, entries) {
            tracing::warn!("saving the build cache: {e}");
        }
    }

    /// The cached result of a step, if its image still exists; counts the use in
    /// memory ([`persist`](Self::persist) writes the counts once per build).
    pub fn lookup(&self, key: &str, images: &ImageStore) -> Option<Digest> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get_mut(key)?;
        let digest = Digest::parse(&entry.image).ok()?;
        images.get(&digest)?;
        entry.usage_count += 1;
        entry.last_used_at = Some(now());
        Some(digest)
    }

    /// Writes the records out, with the use counts of the lookups since.
    pub fn persist(&self) {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        self.save(&entries);
    }

    pub fn remember(&self, key: String, image: &Digest) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(
            key,
            Entry {
                image: image.to_string(),
                created_at: now(),
                last_used_at: None,
                usage_count: 0,
            },
        );
        self.save(&entries);
    }

    /// Every record whose image still exists.
    pub fn records(
        &self,
        images: &ImageStore,
        usage: &dyn Fn(&Digest) -> ImageUsage,
    ) -> Vec<CacheRecord> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let views: HashMap<Digest, berth_store::ImageView> = images
            .list()
            .into_iter()
            .map(|v| (v.image.id.clone(), v))
            .collect();
        let mut out: Vec<CacheRecord> = entries
            .iter()
            .filter_map(|(key, entry)| {
                let digest = Digest::parse(&entry.image).ok()?;
                let view = views.get(&digest)?;
                let parent_size = view
                    .image
                    .record
                    .parent
                    .as_ref()
                    .and_then(|p| views.get(p))
                    .map(|p| p.image.record.size)
                    .unwrap_or(0);
                let users = usage(&digest);
                Some(CacheRecord {
                    id: key.chars().take(25).collect(),
                    description: view
                        .image
                        .config
                        .history
                        .last()
                        .and_then(|h| h.created_by.clone())
                        .unwrap_or_default(),
                    size: view.image.record.size.saturating_sub(parent_size),
                    shared: !view.tags.is_empty() || view.children > 0,
                    in_use: users.running_container.is_some(),
                    created_at: if entry.created_at.is_empty() {
                        view.image
                            .created()
                            .map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true))
                            .unwrap_or_default()
                    } else {
                        entry.created_at.clone()
                    },
                    last_used_at: entry.last_used_at.clone(),
                    usage_count: entry.usage_count,
                    labels: view.image.config.labels(),
                    image: digest,
                })
            })
            .collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        out
    }

    /// Removes records (all with `all`, else the unshared ones) that `selected`
    /// accepts, last used before `until` when given, and the intermediate images
    /// nothing else needs any more.
    pub fn prune(
        &self,
        images: &ImageStore,
        usage: &dyn Fn(&Digest) -> ImageUsage,
        all: bool,
        until: Option<DateTime<Utc>>,
        selected: &dyn Fn(&CacheRecord) -> bool,
    ) -> PruneReport {
        let mut report = PruneReport::default();
        let old_enough = |r: &CacheRecord| {
            let used = r.last_used_at.as_deref().unwrap_or(&r.created_at);
            until.is_none_or(|u| {
                DateTime::parse_from_rfc3339(used).is_ok_and(|t| t.with_timezone(&Utc) < u)
            })
        };
        // Removing a leaf can leave its parent unshared: go again until nothing moves,
        // at most once per record.
        let bound = self.entries.lock().unwrap_or_else(|p| p.into_inner()).len() + 1;
        for _ in 0..bound {
            // Newest first, so that a step goes before the step it built on.
            let chosen: Vec<CacheRecord> = self
                .records(images, usage)
                .into_iter()
                .rev()
                .filter(|r| (all || !r.shared) && !r.in_use && old_enough(r) && selected(r))
                .collect();
            if chosen.is_empty() {
                break;
            }
            let mut moved = false;
            for record in chosen {
                let keys: Vec<String> = {
                    let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                    let keys: Vec<String> = entries
                        .iter()
                        .filter(|(k, e)| {
                            k.starts_with(&record.id) && e.image == record.image.as_str()
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in &keys {
                        entries.remove(k);
                    }
                    self.save(&entries);
                    keys
                };
                if keys.is_empty() {
                    continue;
                }
                moved = true;
                report.deleted.push(record.id.clone());
                let view = images
                    .list()
                    .into_iter()
                    .find(|v| v.image.id == record.image);
                let removable = view.is_some_and(|v| v.tags.is_empty() && v.children == 0);
                let users = usage(&record.image);
                if removable
                    && users.running_container.is_none()
                    && users.stopped_container.is_none()
                    && images
                        .delete(record.image.as_str(), false, false, usage)
                        .is_ok()
                {
                    report.reclaimed += record.size;
                    report.images_deleted.push(record.image.clone());
                }
            }
            if !moved {
                break;
            }
        }
        report
    }
}
