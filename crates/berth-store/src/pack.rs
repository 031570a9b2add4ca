//! Writing directories as tar streams: a container's filesystem for `export` and
//! `cp`, and its upper directory as an image layer for `commit`, where overlayfs
//! whiteouts become `.wh.` entries again.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How overlayfs marks what a layer removed, turned back into tar entries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Plain tree: device nodes are written as they are.
    Keep,
    /// An overlay upper dir: 0/0 character devices become `.wh.NAME` files, opaque
    /// directories get a `.wh..wh..opq` entry.
    ToTar,
}

/// Writes `root` (its contents, named relative to it, under `prefix`) as a tar stream.
pub fn pack_dir<W: Write>(root: &Path, prefix: &Path, whiteouts: Whiteouts, out: W) -> Result<W> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    append_tree(&mut builder, root, prefix, whiteouts)?;
    builder
        .into_inner()
        .map_err(|e| Error::io("finish archive", root, e))
}

/// Writes one path (file, link or directory tree) as a tar whose top entry is `name`.
pub fn pack_path<W: Write>(path: &Path, name: &str, out: W) -> Result<W> {
    let meta = fs::symlink_metadata(path).map_err(|e| Error::io("stat", path, e))?;
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    builder
        .append_path_with_name(path, name)
        .map_err(|e| Error::io("archive", path, e))?;
    if meta.is_dir() {
        append_tree(&mut builder, path, Path::new(name), Whiteouts::Keep)?;
    }
    builder
        .into_inner()
        .map_err(|e| Error::io("finish archive", path, e))
}

fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    prefix: &Path,
    whiteouts: Whiteouts,
) -> Result<()> {
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(&dir)
            .map_err(|e| Error::io("read directory", &dir, e))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        if whiteouts == Whiteouts::ToTar && is_opaque(&dir) && !rel.as_os_str().is_empty() {
            append_empty(builder, &prefix.join(&rel).join(".wh..wh..opq"))?;
        }
        for entry in entries {
            let name = entry.file_name();
            let child_rel = rel.join(&name);
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(|e| Error::io("stat", &path, e))?;
            let ft = meta.file_type();
            if whiteouts == Whiteouts::ToTar && ft.is_char_device() && meta.rdev() == 0 {
                let wh = prefix
                    .join(&rel)
                    .join(format!(".wh.{}", name.to_string_lossy()));
                append_empty(builder, &wh)?;
                continue;
            }
            if ft.is_socket() {
                continue; // not representable in tar
            }
            builder
                .append_path_with_name(&path, prefix.join(&child_rel))
                .map_err(|e| Error::io("archive", &path, e))?;
            if ft.is_dir() {
                stack.push(child_rel);
            }
        }
    }
    Ok(())
}

fn append_empty<W: Write>(builder: &mut tar::Builder<W>, name: &Path) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, name, io::empty())
        .map_err(|e| Error::io("archive", name, e))
}

fn is_opaque(dir: &Path) -> bool {
    let mut buf = [0u8; 4];
    matches!(
        rustix::fs::getxattr(dir, "trusted.overlay.opaque", &mut buf),
        Ok(1) if buf[0] == b'y'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(data: &[u8]) -> Vec<String> {
        tar::Archive::new(data)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn tree_and_single_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/nowhere", dir.path().join("a/link")).unwrap();
        let all = pack_dir(dir.path(), Path::new(""), Whiteouts::Keep, Vec::new()).unwrap();
        let n = names(&all);
        assert!(n.contains(&"a/b/f".to_string()) && n.contains(&"a/link".to_string()));
        let one = pack_path(&dir.path().join("a"), "a", Vec::new()).unwrap();
        let n = names(&one);
        assert_eq!(n[0], "a");
        assert!(n.contains(&"a/b/f".to_string()));
    }

    #[test]
    fn whiteouts_become_wh_entries() {
        if !rustix::process::geteuid().is_root() {
            return; // mknod of a whiteout needs root
        }
        let dir = tempfile::tempdir().unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &dir.path().join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .unwrap();
        let out = pack_dir(dir.path(), Path::new(""), Whiteouts::ToTar, Vec::new()).unwrap();
        assert_eq!(names(&out), vec![".wh.gone"]);
    }
}
