//! Unpacking a layer tar into a directory without letting any entry reach outside it.
//!
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT)` against the layer's root, so
//! absolute symlinks, `..` in link targets and symlinked parent directories all stay
//! inside the layer, however the archive is crafted. Entries whose own names contain `..`
//! are refused outright. Whiteouts (`.wh.NAME`, `.wh..wh..opq`) are written in the form
//! overlayfs reads them: a 0/0 character device and the `trusted.overlay.opaque` xattr.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
    XattrFlags,
};
use rustix::io::Errno;

use crate::error::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// What extraction found, for the layer's record.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExtractStats {
    /// Bytes of regular file content written.
    pub size: u64,
    /// Entries processed.
    pub entries: u64,
}

/// Extracts the tar stream `reader` into the existing directory `root`.
pub fn extract_layer<R: Read>(reader: R, root: &Path) -> Result<ExtractStats> {
    let root_fd = rfs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open layer root", root, e.into()))?;
    let mut archive = tar::Archive::new(reader);
    let mut stats = ExtractStats::default();
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| Error::archive(format!("reading archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::archive(format!("reading archive: {e}")))?;
        let raw_path = entry
            .path()
            .map_err(|e| Error::archive(format!("bad entry name: {e}")))?
            .into_owned();
        let Some(rel) = sanitize(&raw_path)? else {
            continue; // "." or "/" itself: the root directory's own metadata is ours
        };
        stats.entries += 1;
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let parent = mkdir_all(&root_fd, &parent_rel)?;

        if name == OPAQUE_WHITEOUT {
            let dir = open_in_root(&root_fd, &parent_rel, OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(|e| Error::io("open", &parent_rel, e.into()))?;
            rfs::fsetxattr(&dir, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                .map_err(|e| Error::io("mark opaque", &parent_rel, e.into()))?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            remove_existing(&parent, hidden, &rel)?;
            rfs::mknodat(
                &parent,
                hidden,
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(|e| Error::io("create whiteout", &rel, e.into()))?;
            continue;
        }

        let header = entry.header().clone();
        let mode = Mode::from_raw_mode(header.mode().unwrap_or(0o644) & 0o7777);
        let entry_type = header.entry_type();
        if entry_type.is_dir() {
            match rfs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) => {}
                Err(Errno::EXIST) if is_dir_at(&parent, &name) => {}
                Err(Errno::EXIST) => {
                    remove_existing(&parent, &name, &rel)?;
                    rfs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o755))
                        .map_err(|e| Error::io("create directory", &rel, e.into()))?;
                }
                Err(e) => return Err(Error::io("create directory", &rel, e.into())),
            }
            dir_times.push((rel.clone(), header.mtime().unwrap_or(0) as i64));
        } else {
            remove_existing(&parent, &name, &rel)?;
            if entry_type.is_file() || entry_type == tar::EntryType::Continuous {
                let fd = rfs::openat(
                    &parent,
                    name.as_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| Error::io("create file", &rel, e.into()))?;
                let mut file = File::from(fd);
                let written = io::copy(&mut entry, &mut file)
                    .map_err(|e| Error::archive(format!("reading {}: {e}", rel.display())))?;
                stats.size += written;
                apply_xattrs(&mut entry, &file, &rel)?;
            } else if entry_type.is_symlink() {
                let target = entry
                    .link_name()
                    .map_err(|e| Error::archive(format!("bad link name: {e}")))?
                    .ok_or_else(|| {
                        Error::archive(format!("symlink {} has no target", rel.display()))
                    })?
                    .into_owned();
                rfs::symlinkat(target.as_path(), &parent, name.as_str())
                    .map_err(|e| Error::io("create symlink", &rel, e.into()))?;
            } else if entry_type.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(|e| Error::archive(format!("bad link name: {e}")))?
                    .ok_or_else(|| {
                        Error::archive(format!("hardlink {} has no target", rel.display()))
                    })?
                    .into_owned();
                let target_rel = sanitize(&target)?.ok_or_else(|| Error::UnsafeEntry {
                    entry: target.display().to_string(),
                })?;
                let source =
                    open_in_root(&root_fd, &target_rel, OFlags::PATH | OFlags::NOFOLLOW)
                        .map_err(|e| Error::io("open hardlink target", &target_rel, e.into()))?;
                rfs::linkat(&source, "", &parent, name.as_str(), AtFlags::EMPTY_PATH)
                    .map_err(|e| Error::io("create hardlink", &rel, e.into()))?;
                continue; // a hard link shares its target's metadata
            } else if entry_type.is_character_special()
                || entry_type.is_block_special()
                || entry_type.is_fifo()
            {
                let file_type = if entry_type.is_character_special() {
                    FileType::CharacterDevice
                } else if entry_type.is_block_special() {
                    FileType::BlockDevice
                } else {
                    FileType::Fifo
                };
                let dev = rfs::makedev(
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                );
                rfs::mknodat(&parent, name.as_str(), file_type, mode, dev)
                    .map_err(|e| Error::io("create device node", &rel, e.into()))?;
            } else {
                // PAX globals, GNU sparse and the like carry no file of their own here.
                continue;
            }
        }

        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        rfs::chownat(
            &parent,
            name.as_str(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::io("chown", &rel, e.into()))?;
        if !entry_type.is_symlink() {
            // After chown, which clears set-id bits.
            rfs::chmodat(&parent, name.as_str(), mode, AtFlags::empty())
                .map_err(|e| Error::io("chmod", &rel, e.into()))?;
        }
        if !entry_type.is_dir() {
            set_mtime(&parent, &name, header.mtime().unwrap_or(0) as i64)
                .map_err(|e| Error::io("set times", &rel, e.into()))?;
        }
    }
    // Directory times last: creating entries inside them changed them.
    for (rel, mtime) in dir_times.into_iter().rev() {
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        if let (Ok(parent), Some(name)) = (
            open_in_root(&root_fd, parent_rel, OFlags::PATH | OFlags::DIRECTORY),
            rel.file_name(),
        ) {
            let _ = set_mtime(&parent, &name.to_string_lossy(), mtime);
        }
    }
    Ok(stats)
}

/// Opens the file `rel` inside `root` for reading, resolving every symlink as if `root`
/// were `/`: names that come from an archive's own metadata cannot reach outside it.
pub fn open_beneath(root: &Path, rel: &str) -> Result<File> {
    let rel_path = sanitize(Path::new(rel))?.ok_or_else(|| Error::UnsafeEntry {
        entry: rel.to_string(),
    })?;
    let root_fd = rfs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open", root, e.into()))?;
    let fd = open_in_root(&root_fd, &rel_path, OFlags::RDONLY)
        .map_err(|e| Error::io("open", &rel_path, e.into()))?;
    Ok(File::from(fd))
}

/// Turns an archive path into a relative path with no `..`; `None` for the root itself.
fn sanitize(path: &Path) -> Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::UnsafeEntry {
                    entry: path.display().to_string(),
                })
            }
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

fn open_in_root(root: &OwnedFd, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rfs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Opens (creating as needed, mode 0755) the directory `rel` inside the root.
fn mkdir_all(root: &OwnedFd, rel: &Path) -> Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY;
    match open_in_root(root, rel, flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(Error::io("open directory", rel, e.into())),
    }
    let mut current = open_in_root(root, Path::new(""), flags)
        .map_err(|e| Error::io("open layer root", rel, e.into()))?;
    let mut prefix = PathBuf::new();
    for component in rel.components() {
        prefix.push(component);
        current = match open_in_root(root, &prefix, flags) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                rfs::mkdirat(&current, component.as_os_str(), Mode::from_raw_mode(0o755))
                    .map_err(|e| Error::io("create directory", &prefix, e.into()))?;
                open_in_root(root, &prefix, flags)
                    .map_err(|e| Error::io("open directory", &prefix, e.into()))?
            }
            Err(e) => return Err(Error::io("open directory", &prefix, e.into())),
        };
    }
    Ok(current)
}

fn is_dir_at(parent: &OwnedFd, name: &str) -> bool {
    rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        .unwrap_or(false)
}

/// Clears the way for a new entry: a later archive entry replaces an earlier one.
fn remove_existing(parent: &OwnedFd, name: &str, rel: &Path) -> Result<()> {
    match rfs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => {
            let fd = rfs::openat(
                parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io("open", rel, e.into()))?;
            remove_dir_contents(&fd, rel)?;
            rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
                .map_err(|e| Error::io("remove directory", rel, e.into()))
        }
        Err(e) => Err(Error::io("remove", rel, e.into())),
    }
}

fn remove_dir_contents(dir: &OwnedFd, rel: &Path) -> Result<()> {
    let mut names = Vec::new();
    let mut reader =
        rfs::Dir::read_from(dir).map_err(|e| Error::io("read directory", rel, e.into()))?;
    while let Some(entry) = reader.next() {
        let entry = entry.map_err(|e| Error::io("read directory", rel, e.into()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    for name in names {
        remove_existing(dir, &name, &rel.join(&name))?;
    }
    Ok(())
}

fn set_mtime(parent: &impl AsFd, name: &str, mtime: i64) -> rustix::io::Result<()> {
    let ts = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rfs::utimensat(
        parent,
        name,
        &Timestamps {
            last_access: ts,
            last_modification: ts,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
}

/// Applies PAX `SCHILY.xattr.*` records (file capabilities, for instance).
fn apply_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>, file: &File, rel: &Path) -> Result<()> {
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return Ok(());
    };
    for ext in extensions.flatten() {
        if let Ok(key) = ext.key() {
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                rfs::fsetxattr(file, name, ext.value_bytes(), XattrFlags::empty())
                    .map_err(|e| Error::io("set xattr", rel, e.into()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h
    }

    /// Writes raw names straight into the header so that hostile paths survive.
    fn raw_entry(
        b: &mut tar::Builder<Vec<u8>>,
        kind: tar::EntryType,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) {
        let mut h = header(kind, data.len() as u64);
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(link) = link {
                gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn build(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        f(&mut b);
        b.into_inner().unwrap()
    }

    fn sandbox() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        (dir, root, outside)
    }

    #[test]
    fn extracts_files_dirs_links() {
        let (_d, root, _) = sandbox();
        let tar = build(|b| {
            raw_entry(b, tar::EntryType::Directory, "etc/", None, b"");
            raw_entry(
                b,
                tar::EntryType::Regular,
                "etc/passwd",
                None,
                b"root:x:0:0",
            );
            raw_entry(b, tar::EntryType::Symlink, "bin", Some("usr/bin"), b"");
            raw_entry(
                b,
                tar::EntryType::Link,
                "etc/passwd2",
                Some("etc/passwd"),
                b"",
            );
            raw_entry(b, tar::EntryType::Regular, "deep/a/b/file", None, b"x");
        });
        let stats = extract_layer(&tar[..], &root).unwrap();
        assert_eq!(fs::read(root.join("etc/passwd")).unwrap(), b"root:x:0:0");
        assert_eq!(
            fs::read_link(root.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        assert_eq!(fs::read(root.join("etc/passwd2")).unwrap(), b"root:x:0:0");
        assert_eq!(fs::read(root.join("deep/a/b/file")).unwrap(), b"x");
        assert_eq!(stats.size, 11);
    }

    #[test]
    fn dotdot_names_are_refused() {
        let (_d, root, outside) = sandbox();
        let tar = build(|b| raw_entry(b, tar::EntryType::Regular, "../outside/evil", None, b"x"));
        let err = extract_layer(&tar[..], &root).unwrap_err();
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
        assert!(!outside.join("evil").exists());
    }

    #[test]
    fn absolute_names_stay_inside() {
        let (_d, root, outside) = sandbox();
        let name = format!("{}/evil", outside.display());
        let tar = build(|b| raw_entry(b, tar::EntryType::Regular, &name, None, b"x"));
        extract_layer(&tar[..], &root).unwrap();
        assert!(!outside.join("evil").exists());
        assert!(root.join(name.trim_start_matches('/')).exists());
    }

    #[test]
    fn symlink_then_file_through_it_stays_inside() {
        let (_d, root, outside) = sandbox();
        let abs = outside.display().to_string();
        // The absolute symlink resolves inside the root, where no such directory exists:
        // the archive is refused rather than the directory created outside.
        let tar = build(|b| {
            raw_entry(b, tar::EntryType::Symlink, "link", Some(&abs), b"");
            raw_entry(b, tar::EntryType::Regular, "link/evil", None, b"x");
        });
        assert!(extract_layer(&tar[..], &root).is_err());
        // A relative symlink climbing past the top lands at the root itself.
        let tar = build(|b| {
            raw_entry(
                b,
                tar::EntryType::Symlink,
                "up",
                Some("../../../../.."),
                b"",
            );
            raw_entry(b, tar::EntryType::Regular, "up/evil2", None, b"x");
            raw_entry(b, tar::EntryType::Directory, "etc/", None, b"");
            raw_entry(b, tar::EntryType::Symlink, "abs", Some("/etc"), b"");
            raw_entry(b, tar::EntryType::Regular, "abs/evil3", None, b"x");
        });
        extract_layer(&tar[..], &root).unwrap();
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        assert!(root.join("evil2").exists());
        assert!(root.join("etc/evil3").exists());
    }

    #[test]
    fn hardlink_to_outside_is_refused() {
        let (_d, root, outside) = sandbox();
        fs::write(outside.join("secret"), b"s").unwrap();
        let abs = format!("{}/secret", outside.display());
        let tar = build(|b| raw_entry(b, tar::EntryType::Link, "steal", Some(&abs), b""));
        assert!(extract_layer(&tar[..], &root).is_err());
        let tar = build(|b| {
            raw_entry(
                b,
                tar::EntryType::Link,
                "steal",
                Some("../outside/secret"),
                b"",
            )
        });
        assert!(extract_layer(&tar[..], &root).is_err());
        assert!(!root.join("steal").exists());
        // Through a symlink that points outside: resolved inside the root, where nothing is.
        let tar = build(|b| {
            raw_entry(
                b,
                tar::EntryType::Symlink,
                "out",
                Some(&outside.display().to_string()),
                b"",
            );
            raw_entry(b, tar::EntryType::Link, "steal2", Some("out/secret"), b"");
        });
        assert!(extract_layer(&tar[..], &root).is_err());
        assert!(!root.join("steal2").exists());
    }

    #[test]
    fn whiteouts_become_overlay_markers() {
        let (_d, root, _) = sandbox();
        let tar = build(|b| {
            raw_entry(b, tar::EntryType::Directory, "dir/", None, b"");
            raw_entry(b, tar::EntryType::Regular, "dir/.wh..wh..opq", None, b"");
            raw_entry(b, tar::EntryType::Regular, ".wh.gone", None, b"");
        });
        extract_layer(&tar[..], &root).unwrap();
        let meta = fs::symlink_metadata(root.join("gone")).unwrap();
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.rdev(), 0);
        assert!(!root.join(".wh.gone").exists());
        let v = rfs::getxattr(
            root.join("dir").as_path(),
            "trusted.overlay.opaque",
            &mut [0u8; 4],
        );
        // trusted.* xattrs need CAP_SYS_ADMIN: checked only when running as root.
        if rustix::process::geteuid().is_root() {
            assert_eq!(v.unwrap(), 1);
        }
    }

    #[test]
    fn truncated_archive_is_an_error() {
        let (_d, root, _) = sandbox();
        let tar = build(|b| raw_entry(b, tar::EntryType::Regular, "big", None, &[7u8; 4096]));
        let cut = &tar[..1024];
        assert!(extract_layer(cut, &root).is_err());
    }
}
