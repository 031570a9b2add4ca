//! A container's files from outside: `diff`, `export`, `cp` (the archive endpoints) and
//! `commit`. A stopped container's rootfs is mounted for the duration of the call.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use berth_store::image::{ConfigChange, History};
use berth_store::pack::{pack_dir, pack_path, Whiteouts};
use berth_store::{fsutil, Digest};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::manager::Runtime;
use crate::record::Container;
use crate::rootfs;

/// One line of `diff`: Docker's kinds are 0 changed, 1 added, 2 deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// `stat` of a path in a container, as the archive endpoints report it.
#[derive(Debug, Clone)]
pub struct PathStat {
    pub name: String,
    pub size: u64,
    /// Go's `os.FileMode` bits, which the docker CLI decodes.
    pub mode: u32,
    pub mtime: String,
    pub link_target: String,
}

/// What `commit` records.
#[derive(Default)]
pub struct CommitOptions {
    pub author: String,
    pub comment: String,
    pub changes: Vec<ConfigChange>,
    pub config: Option<Value>,
    /// The builder's own config for the new image, instead of one derived from the
    /// container (a RUN container's Cmd is the step, not the image's default).
    pub image_config: Option<berth_store::ImageConfig>,
    /// The history line of the new layer (the container's command by default).
    pub created_by: Option<String>,
}

impl Runtime {
    fn lowers(&self, container: &Container) -> Result<Vec<PathBuf>> {
        let image = Digest::parse(&container.record().image)?;
        Ok(self.images().layer_paths(&image)?)
    }

    /// Runs `f` with the container's merged rootfs mounted.
    pub fn with_rootfs<T>(
        &self,
        container: &Container,
        f: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let merged = container.dir.join("merged");
        if container.state().is_running() {
            return f(&merged);
        }
        let lowers = self.lowers(container)?;
        rootfs::mount_overlay(
            &lowers,
            &container.dir.join("upper"),
            &container.dir.join("work"),
            &merged,
            false,
        )?;
        let result = f(&merged);
        let _ = rootfs::unmount_path(&merged);
        result
    }

    /// Files added, changed and deleted relative to the image.
    pub fn changes(&self, name: &str) -> Result<Vec<Change>> {
        let container = self.find(name)?;
        let lowers = self.lowers(&container)?;
        let upper = container.dir.join("upper");
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(upper.join(&rel)) else {
                continue;
            };
            for entry in entries.flatten() {
                let child = rel.join(entry.file_name());
                let Ok(meta) = entry.path().symlink_metadata() else {
                    continue;
                };
                let shown = format!("/{}", child.display());
                let in_lower = lowers
                    .iter()
                    .any(|l| l.join(&child).symlink_metadata().is_ok());
                if meta.file_type().is_char_device() && meta.rdev() == 0 {
                    out.push(Change {
                        path: shown,
                        kind: 2,
                    });
                    continue;
                }
                out.push(Change {
                    path: shown,
                    kind: if in_lower { 0 } else { 1 },
                });
                if meta.is_dir() {
                    stack.push(child);
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The whole filesystem as a tar stream.
    pub fn export<W: Write>(&self, name: &str, out: W) -> Result<W> {
        let container = self.find(name)?;
        self.with_rootfs(&container, |root| {
            Ok(pack_dir(root, Path::new(""), Whiteouts::Keep, out)?)
        })
    }

    /// The path inside the rootfs a container path names; `..` cannot climb out.
    fn host_path(root: &Path, container_path: &str) -> Result<PathBuf> {
        let mut out = root.to_path_buf();
        for c in Path::new(container_path).components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::ParentDir => {
                    if out != root {
                        out.pop();
                    }
                }
                _ => {}
            }
        }
        // Resolve symlinks the way the container would see them.
        let rel = out
            .strip_prefix(root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        if rel.as_os_str().is_empty() {
            return Ok(root.to_path_buf());
        }
        match berth_store::extract::open_beneath(root, &rel.display().to_string()) {
            Ok(file) => {
                // Through /proc, the descriptor names the real file under the root.
                let real = std::fs::read_link(format!(
                    "/proc/self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(&file)
                ))
                .map_err(|e| Error::io("resolving path", e))?;
                // A symlink itself (the last component) stays a symlink.
                if out
                    .symlink_metadata()
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false)
                {
                    return Ok(out);
                }
                Ok(real)
            }
            Err(_) => Ok(out),
        }
    }

    pub fn stat_path(&self, name: &str, path: &str) -> Result<PathStat> {
        let container = self.find(name)?;
        let id = container.id();
        self.with_rootfs(&container, |root| {
            let host = Self::host_path(root, path)?;
            let meta = host.symlink_metadata().map_err(|_| {
                Error::PathNotFound(format!("Could not find the file {path} in container {id}"))
            })?;
            Ok(stat_of(path, &host, &meta))
        })
    }

    /// A tar of `path` (its base name at the top), with its stat.
    pub fn archive_get<W: Write>(&self, name: &str, path: &str, out: W) -> Result<W> {
        let container = self.find(name)?;
        self.with_rootfs(&container, |root| {
            let host = Self::host_path(root, path)?;
            let base = Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into());
            Ok(pack_path(&host, &base, out)?)
        })
    }

    /// Extracts a tar into the directory `path` of the container.
    pub fn archive_put<R: Read>(&self, name: &str, path: &str, tar: R) -> Result<()> {
        let container = self.find(name)?;
        self.sizes.forget_all();
        let id = container.id();
        self.with_rootfs(&container, |root| {
            let host = Self::host_path(root, path)?;
            let meta = host.metadata().map_err(|_| {
                Error::PathNotFound(format!("Could not find the file {path} in container {id}"))
            })?;
            if !meta.is_dir() {
                return Err(Error::InvalidArgument(
                    "extraction point is not a directory".into(),
                ));
            }
            berth_store::extract::extract_layer(tar, &host)?;
            Ok(())
        })
    }

    /// Makes an image of the container's changes on top of its image.
    pub fn commit(&self, name: &str, options: CommitOptions) -> Result<Digest> {
        let container = self.find(name)?;
        let record = container.record();
        let image_id = Digest::parse(&record.image)?;
        let image = self
            .images()
            .get(&image_id)
            .ok_or_else(|| Error::Store(berth_store::Error::ImageNotFound(record.image.clone())))?;
        let scratch = self.images().temp_dir()?;
        let tar_path = scratch.path().join("layer.tar");
        let file = std::fs::File::create(&tar_path).map_err(|e| Error::io("creating layer", e))?;
        pack_dir(
            &container.dir.join("upper"),
            Path::new(""),
            Whiteouts::ToTar,
            file,
        )?;
        let parent_chain = berth_store::digest::chain_ids(&image.config.rootfs.diff_ids)
            .last()
            .cloned();
        let reader = std::fs::File::open(&tar_path).map_err(|e| Error::io("reading layer", e))?;
        let staged = self.images().layers().stage_allow_empty(
            parent_chain.as_ref(),
            reader,
            self.images().content(),
        )?;
        let mut config = match &options.image_config {
            Some(c) => c.clone(),
            None => (*image.config).clone(),
        };
        // The container's own settings become the image's defaults.
        let c = &record.config;
        let strings = |v: &Value| -> Option<Vec<String>> {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
        };
        if options.image_config.is_none() {
            config.config.env = strings(&c["Env"]).or(config.config.env.take());
            config.config.cmd = strings(&c["Cmd"]).or(config.config.cmd.take());
            config.config.entrypoint =
                strings(&c["Entrypoint"]).or(config.config.entrypoint.take());
            if let Some(w) = c["WorkingDir"].as_str() {
                config.config.working_dir = w.to_string();
            }
            if let Some(u) = c["User"].as_str() {
                config.config.user = u.to_string();
            }
        }
        if let Some(overrides) = &options.config {
            if let Some(cmd) = strings(&overrides["Cmd"]) {
                config.config.cmd = Some(cmd);
            }
            if let Some(env) = strings(&overrides["Env"]) {
                config.config.env = Some(env);
            }
        }
        for change in &options.changes {
            config.config.apply(change);
        }
        let now = berth_store::store::now_rfc3339();
        config.created = Some(now.clone());
        config.author = Some(options.author.clone()).filter(|a| !a.is_empty());
        config.comment = Some(options.comment.clone()).filter(|a| !a.is_empty());
        config.rootfs.diff_ids.push(staged.record.diff_id.clone());
        config.history.push(History {
            created: Some(now),
            created_by: Some(
                options
                    .created_by
                    .clone()
                    .unwrap_or_else(|| record.command_line()),
            ),
            author: config.author.clone(),
            comment: config.comment.clone(),
            empty_layer: false,
        });
        let id = self
            .images()
            .create_image(config, vec![staged], Some(image_id))?;
        let _ = fsutil::remove_tree(scratch.path());
        Ok(id)
    }
}

/// Go's `os.FileMode` for a file: permission bits plus the type flags the CLI checks.
fn stat_of(path: &str, host: &Path, meta: &std::fs::Metadata) -> PathStat {
    let ft = meta.file_type();
    let mut mode = meta.permissions().mode() & 0o777;
    if ft.is_dir() {
        mode |= 1 << 31;
    }
    if ft.is_symlink() {
        mode |= 1 << 27;
    }
    let link_target = if ft.is_symlink() {
        std::fs::read_link(host)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    PathStat {
        name: Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into()),
        size: meta.len(),
        mode,
        mtime: chrono::DateTime::from_timestamp(meta.mtime(), 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
        link_target,
    }
}
