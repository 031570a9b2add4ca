//! `cp`: copies between a container and the local filesystem through the archive
//! endpoints, renaming the archive's top entry the way docker's `archive` package
//! does so that `cp a b` means the same as the shell's; and the body writer that
//! `export` shares.

use std::io::{IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::Result;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Response};
use serde_json::Value;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::fail;
use crate::cli::CpArgs;
use crate::client::{self, path_segment, with_query, Client};
use crate::output::human_size;

/// Go's `os.ModeDir` and `os.ModeSymlink` bits, as the path-stat header carries them.
const MODE_DIR: u64 = 1 << 31;
const MODE_SYMLINK: u64 = 1 << 27;

/// docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an absolute path
/// or starts with `.` (a local path that happens to contain a colon).
fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.starts_with('.') => (Some(container), path),
        _ => (None, arg),
    }
}

/// Go's `path.Clean` for slash-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Base`: the last element, trailing slashes ignored.
fn base(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() {
            ".".into()
        } else {
            "/".into()
        };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's `filepath.Dir`.
fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".into(),
    }
}

fn has_trailing_separator(path: &str) -> bool {
    path.ends_with('/')
}

/// A path ending in `/.` means "the directory's contents".
fn specifies_current_dir(path: &str) -> bool {
    base(path) == "."
}

/// docker's `SplitPathDirEntry`: the parent and the entry, keeping a final `.`.
fn split_path_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = clean(path);
    if specifies_current_dir(path) {
        cleaned.push_str("/.");
    }
    (dir(&cleaned), base(&cleaned))
}

/// docker's `PreserveTrailingDotOrSeparator`.
fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if specifies_current_dir(original) && !specifies_current_dir(&out) {
        if !has_trailing_separator(&out) {
            out.push('/');
        }
        out.push('.');
    }
    if has_trailing_separator(original) && !has_trailing_separator(&out) {
        out.push('/');
    }
    out
}

/// docker's `resolveLocalPath`: absolute and clean, keeping a trailing `/` or `/.`.
fn resolve_local_path(path: &str) -> Result<String> {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        let cwd = std::env::current_dir()?;
        format!("{}/{path}", cwd.to_string_lossy())
    };
    Ok(preserve_trailing(&clean(&joined), path))
}

/// docker's `GetRebaseName`: after following a link, the name the archive's top
/// entry must take again.
fn rebase_name(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut resolved = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if has_trailing_separator(path) && !has_trailing_separator(&resolved) {
        resolved.push('/');
    }
    let name = (base(path) != base(&resolved)).then(|| base(path));
    (resolved, name)
}

/// What is known of a copy's source or destination.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CopyInfo {
    path: String,
    exists: bool,
    is_dir: bool,
    rebase_name: Option<String>,
}

/// docker's `PrepareArchiveCopy`: where to extract, and how to rename the archive's
/// top entry (`(old, new)`, `old` being the source's name after any `-L` rename)
/// so that it lands under the destination's name.
fn prepare_archive_copy(
    src: &CopyInfo,
    dst: &CopyInfo,
) -> Result<(String, Option<(String, String)>), String> {
    let (dst_dir, dst_base) = split_path_dir_entry(&dst.path);
    let (_, src_base) = split_path_dir_entry(&src.path);
    let src_base = src.rebase_name.clone().unwrap_or(src_base);
    if dst.exists && dst.is_dir {
        // Extract into the directory, under the source's own name.
        return Ok((dst.path.clone(), None));
    }
    if dst.exists && src.is_dir {
        return Err("cannot copy directory".into());
    }
    if !dst.exists
        && !src.is_dir
        && (has_trailing_separator(&dst.path) || specifies_current_dir(&dst.path))
    {
        return Err("no such directory".into());
    }
    Ok((dst_dir, Some((src_base, dst_base))))
}

/// The path components of an archive entry name, `.` components dropped.
fn entry_components(path: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "archive entry {} escapes the destination",
                    path.display()
                ))
            }
        }
    }
    Ok(out)
}

/// Applies each `(old, new)` rename in turn to an entry name.
fn rebase_all(mut components: Vec<String>, renames: &[(String, String)]) -> Vec<String> {
    for rename in renames {
        components = rebase(components, Some(rename));
    }
    components
}

/// Renames the leading `old` of an entry name to `new` (docker's
/// `RebaseArchiveEntries`); names outside `old` are left alone.
fn rebase(components: Vec<String>, rename: Option<&(String, String)>) -> Vec<String> {
    let Some((old, new)) = rename else {
        return components;
    };
    let old: Vec<&str> = old
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let new: Vec<String> = new
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string)
        .collect();
    if components.len() >= old.len() && components.iter().zip(&old).all(|(a, b)| a == b) {
        let mut out = new;
        out.extend(components.into_iter().skip(old.len()));
        out
    } else {
        components
    }
}

/// Extracts a tar stream under `dest`, renaming entries with `renames`, without
/// letting any entry (through `..` or a symlinked parent) land outside `dest`.
fn extract(reader: impl Read, dest: &Path, renames: &[(String, String)]) -> Result<(), String> {
    let root = dest
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_mtime(true);
    let entries = archive
        .entries()
        .map_err(|e| format!("error reading the archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("error reading the archive: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("error reading the archive: {e}"))?
            .into_owned();
        let parts = rebase_all(entry_components(&name)?, renames);
        let target = parts.iter().fold(root.clone(), |p, part| p.join(part));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
            let real = parent
                .canonicalize()
                .map_err(|e| format!("{}: {e}", parent.display()))?;
            if !real.starts_with(&root) {
                return Err(format!(
                    "archive entry {} escapes the destination",
                    name.display()
                ));
            }
        }
        let kind = entry.header().entry_type();
        // docker's NoOverwriteDirNonDir: never replace a directory with a file or
        // a file with a directory.
        if let Ok(existing) = std::fs::symlink_metadata(&target) {
            if existing.is_dir() != kind.is_dir() && target != root {
                return Err(format!(
                    "cannot overwrite {} {} with {}",
                    if existing.is_dir() {
                        "directory"
                    } else {
                        "non-directory"
                    },
                    target.display(),
                    if kind.is_dir() {
                        "a directory"
                    } else {
                        "a non-directory"
                    }
                ));
            }
        }
        if kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(|e| format!("error reading the archive: {e}"))?
                .ok_or_else(|| format!("hard link {} has no target", name.display()))?;
            let source = rebase_all(entry_components(&link)?, renames)
                .iter()
                .fold(root.clone(), |p, part| p.join(part));
            let _ = std::fs::remove_file(&target);
            std::fs::hard_link(&source, &target)
                .map_err(|e| format!("link {}: {e}", target.display()))?;
            continue;
        }
        entry
            .unpack(&target)
            .map_err(|e| format!("error extracting {}: {e}", target.display()))?;
    }
    Ok(())
}

/// Builds a tar of `source` whose top entry is named `root`, writing it to `out`.
fn archive(source: &Path, root: &str, out: impl Write) -> std::io::Result<()> {
    let mut builder = tar::Builder::new(out);
    // Links inside the tree are copied as links, as docker does.
    builder.follow_symlinks(false);
    let meta = std::fs::symlink_metadata(source)?;
    if meta.is_dir() {
        builder.append_dir_all(root, source)?;
    } else {
        builder.append_path_with_name(source, root)?;
    }
    builder.into_inner()?.flush()
}

/// A writer that counts what passes through (for "Successfully copied").
struct Counting<W> {
    inner: W,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Decodes standard base64 (the path-stat header), padding optional.
fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in input.trim().trim_end_matches('=').as_bytes() {
        acc = (acc << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The `X-Docker-Container-Path-Stat` header of an archive response.
fn path_stat(response: &Response<Incoming>) -> Option<Value> {
    let header = response.headers().get("X-Docker-Container-Path-Stat")?;
    let decoded = base64_decode(header.to_str().ok()?)?;
    serde_json::from_slice(&decoded).ok()
}

/// `HEAD /containers/ID/archive?path=`: the stat of a path in the container.
async fn stat_container_path(
    client: &Client,
    container: &str,
    path: &str,
) -> Result<Value, client::ClientError> {
    let response = client
        .send(
            Method::HEAD,
            &with_query(
                &format!("/containers/{}/archive", path_segment(container)),
                &[("path", path.to_string())],
            ),
            client::empty(),
            None,
        )
        .await?;
    Ok(path_stat(&response).unwrap_or(Value::Null))
}

fn mode_of(stat: &Value) -> u64 {
    stat["mode"].as_u64().unwrap_or(0)
}

/// docker's `CopyInfoDestinationPath`: follows a symlinked destination; a missing
/// one is fine when its parent directory exists.
fn local_destination(path: &str) -> Result<CopyInfo, String> {
    let mut path = path.to_string();
    let mut meta = std::fs::symlink_metadata(&path);
    let mut hops = 0;
    while let Ok(m) = &meta {
        if !m.file_type().is_symlink() {
            break;
        }
        hops += 1;
        if hops > 10 {
            return Err(format!("too many symlinks in {path}"));
        }
        let target = std::fs::read_link(&path).map_err(|e| format!("readlink {path}: {e}"))?;
        let target = target.to_string_lossy().into_owned();
        path = if target.starts_with('/') {
            target
        } else {
            clean(&format!("{}/{target}", split_path_dir_entry(&path).0))
        };
        meta = std::fs::symlink_metadata(&path);
    }
    match meta {
        Ok(m) => Ok(CopyInfo {
            path,
            exists: true,
            is_dir: m.is_dir(),
            rebase_name: None,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (parent, _) = split_path_dir_entry(&path);
            let parent_meta = std::fs::metadata(&parent)
                .map_err(|e| format!("stat {parent}: {}", go_io_error(&e)))?;
            if !parent_meta.is_dir() {
                return Err("not a directory".into());
            }
            Ok(CopyInfo {
                path,
                exists: false,
                is_dir: false,
                rebase_name: None,
            })
        }
        Err(e) => Err(format!("lstat {path}: {}", go_io_error(&e))),
    }
}

/// Go's wording of the common errno values.
fn go_io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// docker's `CopyInfoSourcePath`: with `-L` the whole path is resolved, else only
/// its parent (a symlink is copied as a symlink).
fn local_source(path: &str, follow_link: bool) -> Result<CopyInfo, String> {
    let (resolved, rebase_name) = if follow_link {
        let real = std::fs::canonicalize(path)
            .map_err(|e| format!("lstat {path}: {}", go_io_error(&e)))?;
        rebase_name(path, &real.to_string_lossy())
    } else {
        let (parent, entry) = match path.rfind('/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => ("./", path),
        };
        let real_parent = std::fs::canonicalize(parent)
            .map_err(|e| format!("lstat {parent}: {}", go_io_error(&e)))?;
        let resolved = format!(
            "{}/{entry}",
            real_parent.to_string_lossy().trim_end_matches('/')
        );
        let rebase =
            (has_trailing_separator(path) && base(path) != base(&resolved)).then(|| base(path));
        (resolved, rebase)
    };
    let meta = std::fs::symlink_metadata(&resolved)
        .map_err(|e| format!("lstat {resolved}: {}", go_io_error(&e)))?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: meta.is_dir(),
        rebase_name,
    })
}

pub async fn cp(client: &Client, args: CpArgs) -> Result<()> {
    let (src_container, src_path) = split_cp_arg(&args.source);
    let (dst_container, dst_path) = split_cp_arg(&args.destination);
    let quiet = args.quiet || !std::io::stderr().is_terminal();
    match (src_container, dst_container) {
        (Some(container), None) => {
            copy_from_container(
                client,
                container,
                src_path,
                dst_path,
                args.follow_link,
                quiet,
            )
            .await
        }
        (None, Some(container)) => {
            copy_to_container(client, container, src_path, dst_path, &args, quiet).await
        }
        (Some(_), Some(_)) => Err(fail("copying between containers is not supported")),
        (None, None) => Err(fail("must specify at least one container source")),
    }
}

async fn copy_from_container(
    client: &Client,
    container: &str,
    src_path: &str,
    dst_path: &str,
    follow_link: bool,
    quiet: bool,
) -> Result<()> {
    let dst_path = if dst_path == "-" {
        dst_path.to_string()
    } else {
        let resolved = resolve_local_path(dst_path)?;
        let parent = dir(&clean(&resolved));
        if !Path::new(&parent).exists() {
            return Err(fail(format!(
                "invalid output path: directory {parent:?} does not exist"
            )));
        }
        resolved
    };
    let mut src_path = src_path.to_string();
    let mut rebase_to = None;
    if follow_link {
        if let Ok(stat) = stat_container_path(client, container, &src_path).await {
            if mode_of(&stat) & MODE_SYMLINK != 0 {
                let mut target = stat["linkTarget"].as_str().unwrap_or("").to_string();
                if !target.starts_with('/') {
                    target = clean(&format!("{}/{target}", split_path_dir_entry(&src_path).0));
                }
                let (resolved, name) = rebase_name(&src_path, &target);
                src_path = resolved;
                rebase_to = name;
            }
        }
    }
    let response = client
        .get(&with_query(
            &format!("/containers/{}/archive", path_segment(container)),
            &[("path", src_path.clone())],
        ))
        .await?;
    if dst_path == "-" {
        return crate::output::write_body(response, None, "copy").await;
    }
    let stat = path_stat(&response).unwrap_or(Value::Null);
    let src = CopyInfo {
        path: src_path.clone(),
        exists: true,
        is_dir: mode_of(&stat) & MODE_DIR != 0,
        rebase_name: rebase_to,
    };
    let dst = local_destination(&dst_path).map_err(fail)?;
    let (extract_dir, rename) = prepare_archive_copy(&src, &dst).map_err(fail)?;
    // The archive is named after the link's target: back to the link's name
    // first (with -L), then to the destination's.
    let mut renames = Vec::new();
    if let Some(name) = &src.rebase_name {
        renames.push((split_path_dir_entry(&src.path).1, name.clone()));
    }
    renames.extend(rename);

    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = count.clone();
    let stream = response
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other)
        .inspect_ok(move |chunk| {
            counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        });
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let dest = PathBuf::from(&extract_dir);
    tokio::task::spawn_blocking(move || extract(reader, &dest, &renames))
        .await
        .map_err(|e| anyhow::anyhow!("extraction failed: {e}"))?
        .map_err(fail)?;
    if !quiet {
        eprintln!(
            "Successfully copied {} to {dst_path}",
            human_size(count.load(std::sync::atomic::Ordering::Relaxed) as f64)
        );
    }
    Ok(())
}

async fn copy_to_container(
    client: &Client,
    container: &str,
    src_path: &str,
    dst_path: &str,
    args: &CpArgs,
    quiet: bool,
) -> Result<()> {
    // The destination as the container sees it, following a symlink once.
    let mut dst = CopyInfo {
        path: dst_path.to_string(),
        exists: false,
        is_dir: false,
        rebase_name: None,
    };
    let mut stat = stat_container_path(client, container, dst_path).await;
    if let Ok(s) = &stat {
        if mode_of(s) & MODE_SYMLINK != 0 {
            let mut target = s["linkTarget"].as_str().unwrap_or("").to_string();
            if !target.starts_with('/') {
                target = clean(&format!("{}/{target}", split_path_dir_entry(dst_path).0));
            }
            dst.path = target.clone();
            stat = stat_container_path(client, container, &target).await;
        }
    }
    if let Ok(s) = &stat {
        dst.exists = true;
        dst.is_dir = mode_of(s) & MODE_DIR != 0;
    }
    let put = |dir: &str| {
        let mut query = vec![
            ("path", dir.to_string()),
            ("noOverwriteDirNonDir", "true".to_string()),
        ];
        if args.archive {
            query.push(("copyUIDGID", "true".to_string()));
        }
        with_query(
            &format!("/containers/{}/archive", path_segment(container)),
            &query,
        )
    };
    if src_path == "-" {
        if !dst.is_dir {
            return Err(fail(format!(
                "destination \"{container}:{dst_path}\" must be a directory"
            )));
        }
        client
            .send(
                Method::PUT,
                &put(&dst.path),
                client::reader_body(tokio::io::stdin()),
                Some("application/x-tar"),
            )
            .await?;
        return Ok(());
    }
    let src_path = resolve_local_path(src_path)?;
    let src = local_source(&src_path, args.follow_link).map_err(fail)?;
    let (extract_dir, rename) = prepare_archive_copy(&src, &dst).map_err(fail)?;
    // The archive's top entry: the source's name, renamed as prepared.
    let (_, src_base) = split_path_dir_entry(&src.path);
    let top = src.rebase_name.clone().unwrap_or(src_base);
    let root = match rename {
        Some((_, new)) => new,
        None => top,
    };

    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let source = PathBuf::from(&src.path);
    let counter = count.clone();
    let builder = tokio::task::spawn_blocking(move || {
        let out = Counting {
            inner: SyncIoBridge::new(writer),
            count: counter,
        };
        archive(&source, &root, out)
    });
    let sent = client
        .send(
            Method::PUT,
            &put(&extract_dir),
            client::reader_body(reader),
            Some("application/x-tar"),
        )
        .await;
    // A failure to read the source explains a failed upload better than the
    // daemon's complaint about a truncated archive.
    match builder.await {
        Ok(Err(e)) => return Err(fail(format!("{}: {e}", src.path))),
        Err(e) => return Err(anyhow::anyhow!("archiving failed: {e}")),
        Ok(Ok(())) => {}
    }
    sent?;
    if !quiet {
        eprintln!(
            "Successfully copied {} to {container}:{}",
            human_size(count.load(std::sync::atomic::Ordering::Relaxed) as f64),
            dst.path
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_arguments() {
        assert_eq!(split_cp_arg("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_cp_arg("/abs:path"), (None, "/abs:path"));
        assert_eq!(split_cp_arg("./file:name"), (None, "./file:name"));
        assert_eq!(split_cp_arg("local"), (None, "local"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
    }

    #[test]
    fn go_path_helpers() {
        assert_eq!(clean("/a/b/../c/./"), "/a/c");
        assert_eq!(clean("a//b"), "a/b");
        assert_eq!(clean(""), ".");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("b"), ".");
        assert_eq!(split_path_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_path_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(preserve_trailing("/x/d", "d/."), "/x/d/.");
        assert_eq!(preserve_trailing("/x/d", "d/"), "/x/d/");
        assert_eq!(
            rebase_name("/a/link", "/a/target"),
            ("/a/target".into(), Some("link".into()))
        );
    }

    fn info(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo {
            path: path.into(),
            exists,
            is_dir,
            rebase_name: None,
        }
    }

    #[test]
    fn archive_copy_preparation_like_docker() {
        // Into an existing directory: extracted there, names unchanged.
        assert_eq!(
            prepare_archive_copy(&info("/src/f", true, false), &info("/dst", true, true)),
            Ok(("/dst".into(), None))
        );
        // Onto an existing file, or to a new name: renamed, extracted in the parent.
        assert_eq!(
            prepare_archive_copy(&info("/src/f", true, false), &info("/dst/g", true, false)),
            Ok(("/dst".into(), Some(("f".into(), "g".into()))))
        );
        assert_eq!(
            prepare_archive_copy(&info("/src/d", true, true), &info("/dst/new", false, false)),
            Ok(("/dst".into(), Some(("d".into(), "new".into()))))
        );
        // A directory's contents (`d/.`) into a new directory.
        assert_eq!(
            prepare_archive_copy(
                &info("/src/d/.", true, true),
                &info("/dst/new", false, false)
            ),
            Ok(("/dst".into(), Some((".".into(), "new".into()))))
        );
        assert_eq!(
            prepare_archive_copy(&info("/src/d", true, true), &info("/dst/file", true, false)),
            Err("cannot copy directory".into())
        );
        assert_eq!(
            prepare_archive_copy(
                &info("/src/f", true, false),
                &info("/dst/nodir/", false, false)
            ),
            Err("no such directory".into())
        );
    }

    #[test]
    fn entry_renaming() {
        let rename = ("d".to_string(), "new".to_string());
        let parts = |p: &str| entry_components(Path::new(p)).unwrap();
        assert_eq!(rebase(parts("d/x/y"), Some(&rename)), ["new", "x", "y"]);
        assert_eq!(rebase(parts("d"), Some(&rename)), ["new"]);
        assert_eq!(rebase(parts("dd/x"), Some(&rename)), ["dd", "x"]);
        let dot = (".".to_string(), "new".to_string());
        assert_eq!(rebase(parts("./x"), Some(&dot)), ["new", "x"]);
        assert!(entry_components(Path::new("../evil")).is_err());
        assert!(entry_components(Path::new("/abs")).is_err());
    }

    #[test]
    fn base64_of_path_stat() {
        assert_eq!(base64_decode("eyJhIjoxfQ==").unwrap(), b"{\"a\":1}");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert!(base64_decode("*").is_none());
    }

    #[test]
    fn archive_round_trip_with_rename() {
        let tmp = std::env::temp_dir().join(format!("berth-cp-test-{}", std::process::id()));
        let src = tmp.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/file"), b"data").unwrap();
        std::os::unix::fs::symlink("sub/file", src.join("link")).unwrap();
        let mut tar_bytes = Vec::new();
        archive(&src, "src", &mut tar_bytes).unwrap();
        let dst = tmp.join("dst");
        std::fs::create_dir_all(&dst).unwrap();
        let rename = ("src".to_string(), "copy".to_string());
        extract(&tar_bytes[..], &dst, &[rename]).unwrap();
        assert_eq!(std::fs::read(dst.join("copy/sub/file")).unwrap(), b"data");
        assert_eq!(
            std::fs::read_link(dst.join("copy/link")).unwrap(),
            Path::new("sub/file")
        );
        // A file cannot replace a directory.
        let mut file_tar = Vec::new();
        std::fs::write(tmp.join("copy"), b"x").unwrap();
        archive(&tmp.join("copy"), "copy", &mut file_tar).unwrap();
        assert!(extract(&file_tar[..], &dst, &[])
            .unwrap_err()
            .contains("cannot overwrite"));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
