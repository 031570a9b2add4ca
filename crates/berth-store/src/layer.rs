//! Unpacked layers: `layers/<chain-id hex>/diff` holds one layer's files in overlayfs
//! form, shared by every image whose stack starts with the same layers.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::content::ContentStore;
use crate::digest::{chain_id, Digest};
use crate::error::{Error, Result};
use crate::extract::extract_layer;
use crate::fsutil;

/// Media type of the uncompressed layer tars the store keeps for `save` and `push`.
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// What the store remembers of a layer (`layers/<hex>/layer.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of file content in this layer alone.
    pub size: u64,
    /// The blob holding this layer's tar, and how it is encoded.
    pub blob: Digest,
    pub media_type: String,
}

/// The set of unpacked layers.
#[derive(Debug, Clone)]
pub struct LayerStore {
    dir: PathBuf,
}

/// A layer unpacked into a temp directory, not yet visible under its chain id.
pub struct StagedLayer {
    temp: PathBuf,
    pub record: LayerRecord,
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        let _ = fsutil::remove_tree(&self.temp);
    }
}

impl LayerStore {
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("layers");
        fsutil::ensure_dir(&dir)?;
        fsutil::sweep_temps(&dir)?;
        Ok(LayerStore { dir })
    }

    fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex())
    }

    /// The directory overlayfs uses as this layer's lowerdir.
    pub fn diff_path(&self, chain_id: &Digest) -> PathBuf {
        self.layer_dir(chain_id).join("diff")
    }

    pub fn get(&self, chain_id: &Digest) -> Result<Option<LayerRecord>> {
        fsutil::read_json(&self.layer_dir(chain_id).join("layer.json"))
    }

    /// Unpacks the uncompressed tar `reader` on top of `parent`, keeping a copy of the tar
    /// in the content store. Nothing is visible until [`commit`](Self::commit).
    pub fn stage<R: Read>(
        &self,
        parent: Option<&Digest>,
        reader: R,
        content: &ContentStore,
    ) -> Result<StagedLayer> {
        self.stage_inner(parent, reader, content, false)
    }

    /// As [`stage`](Self::stage), accepting an archive with no entries (the layer of a
    /// commit that changed nothing).
    pub fn stage_allow_empty<R: Read>(
        &self,
        parent: Option<&Digest>,
        reader: R,
        content: &ContentStore,
    ) -> Result<StagedLayer> {
        self.stage_inner(parent, reader, content, true)
    }

    /// Unpacks a layer blob as a registry serves it (gzip, zstd or plain tar), keeping
    /// that blob, not an uncompressed copy, in the content store: fewer bytes written,
    /// and a push back to a registry sends the same bytes under the same digest. The
    /// blob must have digest `expected`; nothing is kept otherwise.
    pub fn stage_blob<R: Read>(
        &self,
        parent: Option<&Digest>,
        reader: R,
        content: &ContentStore,
        expected: &Digest,
        media_type: &str,
    ) -> Result<StagedLayer> {
        self.stage_with(parent, |diff| {
            let mut blob = content.writer()?;
            let mut tee = TeeReader {
                inner: reader,
                copy: &mut blob,
            };
            let (diff_id, stats) = {
                let (_, tar) = crate::compression::decompress(&mut tee)
                    .map_err(|e| Error::archive(format!("reading layer {expected}: {e}")))?;
                let mut hashing = crate::digest::HashingReader::new(tar);
                let stats = extract_layer(&mut hashing, diff)?;
                io::copy(&mut hashing, &mut io::sink())
                    .map_err(|e| Error::archive(format!("reading layer {expected}: {e}")))?;
                (hashing.finish().0, stats)
            };
            // What follows the compressed stream (padding) is part of the blob too.
            io::copy(&mut tee, &mut io::sink())
                .map_err(|e| Error::archive(format!("reading layer {expected}: {e}")))?;
            let blob_digest = blob.commit(Some(expected))?;
            Ok((diff_id, stats.size, blob_digest, media_type.to_string()))
        })
    }

    fn stage_inner<R: Read>(
        &self,
        parent: Option<&Digest>,
        reader: R,
        content: &ContentStore,
        allow_empty: bool,
    ) -> Result<StagedLayer> {
        self.stage_with(parent, |diff| {
            let mut blob = content.writer()?;
            let mut tee = TeeReader {
                inner: reader,
                copy: &mut blob,
            };
            let stats = extract_layer(&mut tee, diff)?;
            if stats.entries == 0 && !allow_empty {
                return Err(Error::archive("no entries found: not a tar archive"));
            }
            // The tar's trailing blocks belong to the blob too: the diff id covers every
            // byte.
            io::copy(&mut tee, &mut io::sink())
                .map_err(|e| Error::archive(format!("reading archive: {e}")))?;
            let diff_id = blob.commit(None)?;
            Ok((
                diff_id.clone(),
                stats.size,
                diff_id,
                MEDIA_TYPE_LAYER_TAR.to_string(),
            ))
        })
    }

    /// A staging directory for `unpack`, which fills `<temp>/diff` and returns the
    /// layer's diff id, content size, blob and media type; removed if it fails.
    fn stage_with(
        &self,
        parent: Option<&Digest>,
        unpack: impl FnOnce(&Path) -> Result<(Digest, u64, Digest, String)>,
    ) -> Result<StagedLayer> {
        let temp = self.dir.join(format!(".tmp-{}", fsutil::random_hex(12)));
        let diff = temp.join("diff");
        fsutil::ensure_dir(&diff)?;
        let staged_cleanup = TempGuard(&temp);
        let (diff_id, size, blob, media_type) = unpack(&diff)?;
        std::mem::forget(staged_cleanup);
        Ok(StagedLayer {
            record: LayerRecord {
                chain_id: chain_id(parent, &diff_id),
                diff_id,
                parent: parent.cloned(),
                size,
                blob,
                media_type,
            },
            temp,
        })
    }

    /// Makes a staged layer visible. If the same chain id exists already, the staged copy
    /// is dropped and the existing one kept.
    pub fn commit(&self, staged: StagedLayer) -> Result<LayerRecord> {
        let dest = self.layer_dir(&staged.record.chain_id);
        if dest.join("layer.json").exists() {
            return Ok(staged.record.clone());
        }
        fsutil::remove_tree(&dest)?; // a half-made dir from an interrupted commit
        fsutil::write_json_atomic(&staged.temp.join("layer.json"), &staged.record)?;
        fs::rename(&staged.temp, &dest).map_err(|e| Error::io("commit layer", &dest, e))?;
        fsutil::sync_dir(&self.dir)?;
        Ok(staged.record.clone())
    }

    pub fn remove(&self, chain_id: &Digest) -> Result<()> {
        let dir = self.layer_dir(chain_id);
        // Hide it first so a crash mid-delete leaves a temp to sweep, not a broken layer.
        let doomed = self.dir.join(format!(".tmp-rm-{}", fsutil::random_hex(6)));
        match fs::rename(&dir, &doomed) {
            Ok(()) => fsutil::remove_tree(&doomed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove layer", &dir, e)),
        }
    }

    /// Chain ids of every committed layer.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io("read", &self.dir, e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()).ok())
            .collect())
    }
}

struct TempGuard<'a>(&'a Path);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        let _ = fsutil::remove_tree(self.0);
    }
}

/// Copies every byte read from `inner` into `copy`.
struct TeeReader<'a, R, W> {
    inner: R,
    copy: &'a mut W,
}

impl<R: Read, W: Write> Read for TeeReader<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}
