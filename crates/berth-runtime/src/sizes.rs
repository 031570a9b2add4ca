//! Disk usage of containers' writable layers and of volumes, remembered between
//! `system df` calls. Walking a tree is the only way to size it, so a size is walked
//! again only when it may have changed: a running container (or a volume a running
//! container mounts) is walked every time; a stopped one is walked once per run, and
//! again after `cp` into it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use berth_store::fsutil;

/// Sizes keyed by what they were measured for, with the stamp they are valid under.
#[derive(Default)]
pub struct SizeCache {
    entries: Mutex<HashMap<String, (String, u64)>>,
}

impl SizeCache {
    /// The size of `dir`, walked unless a size was measured under the same `stamp`.
    /// `stamp: None` means the tree may be changing: walk and keep nothing.
    pub fn size(&self, key: &str, stamp: Option<&str>, dir: &Path) -> u64 {
        let Some(stamp) = stamp else {
            return fsutil::tree_size(dir);
        };
        if let Some((kept, size)) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            if kept == stamp {
                return *size;
            }
        }
        let size = fsutil::tree_size(dir);
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), (stamp.to_string(), size));
        size
    }

    /// Forgets every size: something wrote where no stamp shows it (`cp` into a
    /// container may write to its layer or to any volume it mounts).
    pub fn forget_all(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_decide_when_to_walk_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), vec![0u8; 100]).expect("write");
        let cache = SizeCache::default();
        let first = cache.size("c1", Some("run-1"), dir.path());
        std::fs::write(dir.path().join("b"), vec![0u8; 5000]).expect("write");
        assert_eq!(cache.size("c1", Some("run-1"), dir.path()), first, "kept");
        assert!(
            cache.size("c1", Some("run-2"), dir.path()) > first,
            "walked again"
        );
        std::fs::write(dir.path().join("c"), vec![0u8; 5000]).expect("write");
        let live = cache.size("c1", None, dir.path());
        assert!(live > first);
        cache.forget_all();
        assert_eq!(cache.size("c1", Some("run-2"), dir.path()), live);
    }
}
