//! The content store: immutable blobs under `blobs/sha256/<hex>`, visible only once
//! their digest has been checked (containerd's `Writer.Commit(size, expected)`).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::fsutil;

/// Blobs by digest, as in the OCI image layout.
#[derive(Debug, Clone)]
pub struct ContentStore {
    dir: PathBuf,
}

impl ContentStore {
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("blobs").join("sha256");
        fsutil::ensure_dir(&dir)?;
        fsutil::sweep_temps(&dir)?;
        Ok(ContentStore { dir })
    }

    /// Where the blob lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).exists()
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        File::open(self.path(digest)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(digest.to_string()),
            _ => Error::io("open blob", self.path(digest), e),
        })
    }

    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        fs::read(self.path(digest)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(digest.to_string()),
            _ => Error::io("read blob", self.path(digest), e),
        })
    }

    pub fn size(&self, digest: &Digest) -> Result<u64> {
        fs::metadata(self.path(digest))
            .map(|m| m.len())
            .map_err(|e| Error::io("stat blob", self.path(digest), e))
    }

    /// Stores `data`, returning its digest. Writing an existing blob is a no-op.
    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        let mut writer = self.writer()?;
        writer
            .write_all(data)
            .map_err(|e| Error::io("write blob", &writer.temp, e))?;
        writer.commit(None)
    }

    /// Starts a blob whose digest is known only at the end.
    pub fn writer(&self) -> Result<BlobWriter> {
        let temp = self.dir.join(format!(".tmp-{}", fsutil::random_hex(12)));
        let file = File::create(&temp).map_err(|e| Error::io("create blob", &temp, e))?;
        Ok(BlobWriter {
            inner: Some(HashingWriter::new(file)),
            temp,
            dir: self.dir.clone(),
        })
    }

    pub fn remove(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.path(digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove blob", self.path(digest), e)),
        }
    }

    /// Every blob present.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io("read", &self.dir, e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()).ok())
            .collect())
    }
}

/// A blob being written; dropped without `commit`, it leaves nothing behind.
pub struct BlobWriter {
    inner: Option<HashingWriter<File>>,
    temp: PathBuf,
    dir: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.as_ref().map(|w| w.len()).unwrap_or(0)
    }

    /// Checks the digest (when one is expected), syncs, and makes the blob visible.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Digest> {
        let writer = self.inner.take().expect("commit is called once");
        let (digest, _, file) = writer.finish();
        if let Some(expected) = expected {
            if expected != &digest {
                let _ = fs::remove_file(&self.temp);
                return Err(Error::DigestMismatch {
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        file.sync_all()
            .map_err(|e| Error::io("sync blob", &self.temp, e))?;
        drop(file);
        let dest = self.dir.join(digest.hex());
        if dest.exists() {
            let _ = fs::remove_file(&self.temp);
        } else {
            fs::rename(&self.temp, &dest).map_err(|e| Error::io("commit blob", &dest, e))?;
            fsutil::sync_dir(&self.dir)?;
        }
        Ok(digest)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("blob already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = store.put(b"hello").unwrap();
        assert_eq!(store.read(&d).unwrap(), b"hello");
        let mut w = store.writer().unwrap();
        w.write_all(b"other").unwrap();
        assert!(matches!(
            w.commit(Some(&d)),
            Err(Error::DigestMismatch { .. })
        ));
        assert_eq!(store.list().unwrap(), vec![d]);
        let w = store.writer().unwrap();
        drop(w);
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            1
        );
    }
}
