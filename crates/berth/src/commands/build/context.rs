//! The build context as docker's CLI sends it: a directory walked in lexical order
//! with `.dockerignore` applied (`archive.TarWithOptions`), entries owned by root,
//! and a Dockerfile from outside the directory (or stdin) added under a random
//! name; or a tar (or a bare Dockerfile) read from stdin.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use super::dockerignore::{read_patterns, Matcher};

/// docker's `DefaultDockerfileName`.
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";

/// One file or directory of the context, found by the walk.
#[derive(Debug)]
pub struct Entry {
    /// The name in the tar, relative, `/`-separated (no trailing `/`).
    pub name: String,
    pub path: PathBuf,
    pub meta: std::fs::Metadata,
}

/// A directory context, ready to be written as a tar.
#[derive(Debug)]
pub struct DirContext {
    pub entries: Vec<Entry>,
    /// A Dockerfile from outside the directory or from stdin: the random name it is
    /// sent under, and its text.
    pub extra_dockerfile: Option<(String, Vec<u8>)>,
    /// What the daemon is told to read (`dockerfile=`).
    pub dockerfile: String,
}

/// Where the Dockerfile comes from, for [`DirContext::prepare`].
pub enum DockerfileSource<'a> {
    /// No `-f`: `PATH/Dockerfile` (or `PATH/dockerfile` when only that exists).
    Default,
    /// `-f PATH`, relative to the current directory.
    Path(&'a str),
    /// `-f -`: the text read from stdin.
    Stdin(Vec<u8>),
}

/// Go's wording of a failed system call (`no such file or directory`).
fn go_io_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::NotADirectory => "not a directory".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_lowercase(),
                None => text,
            }
        }
    }
}

/// `filepath.Abs` + `filepath.Clean`, without touching the file system.
fn absolute(path: &str) -> PathBuf {
    let joined = if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    PathBuf::from(super::dockerignore::clean(&joined.to_string_lossy()))
}

/// `filepath.Rel` between two absolute, clean paths, `/`-separated.
fn relative(base: &Path, target: &Path) -> String {
    let base: Vec<Component> = base.components().collect();
    let target: Vec<Component> = target.components().collect();
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); base.len() - common];
    parts.extend(
        target[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// A random name for a Dockerfile added to the context: `.dockerfile.` and 20 hex
/// digits, as docker's `AddDockerfileToBuildContext`.
pub fn random_dockerfile_name() -> String {
    let mut bytes = [0u8; 10];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if filled.is_err() {
        // Not secret, only unlikely to clash with a file of the context.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = now.as_nanos() ^ (u128::from(std::process::id()) << 64);
        bytes.copy_from_slice(&seed.to_le_bytes()[..10]);
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(".dockerfile.{hex}")
}

impl DirContext {
    /// docker's `GetContextFromLocalDir`, `ReadDockerignore`,
    /// `TrimBuildFilesFromExcludes` and `ValidateContextDirectory`: resolves the
    /// directory and the Dockerfile, reads `.dockerignore` and walks the tree.
    /// Errors are docker's messages, `unable to prepare context: …` included.
    pub fn prepare(dir: &str, dockerfile: DockerfileSource) -> Result<DirContext, String> {
        let root = std::fs::canonicalize(absolute(dir)).map_err(|e| {
            format!(
                "unable to prepare context: unable to evaluate symlinks in context path: lstat {}: {}",
                absolute(dir).display(),
                go_io_error(&e)
            )
        })?;
        if !root.is_dir() {
            return Err(format!(
                "unable to prepare context: context must be a directory: {}",
                root.display()
            ));
        }
        let (rel_dockerfile, mut extra) = match dockerfile {
            DockerfileSource::Stdin(text) => ("-".to_string(), Some(text)),
            DockerfileSource::Default | DockerfileSource::Path(_) => {
                let given = match &dockerfile {
                    DockerfileSource::Path(p) => absolute(p),
                    _ => {
                        let default = root.join(DEFAULT_DOCKERFILE);
                        let lower = root.join(DEFAULT_DOCKERFILE.to_lowercase());
                        if std::fs::symlink_metadata(&default).is_err()
                            && std::fs::symlink_metadata(&lower).is_ok()
                        {
                            lower
                        } else {
                            default
                        }
                    }
                };
                let resolved = std::fs::canonicalize(&given).map_err(|e| {
                    format!(
                        "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: {}",
                        given.display(),
                        go_io_error(&e)
                    )
                })?;
                let rel = relative(&root, &resolved);
                if rel.starts_with("../") {
                    // Outside the context: sent as an extra file, read where -f said.
                    let text = std::fs::read(&given).map_err(|e| {
                        format!(
                            "unable to open Dockerfile: open {}: {}",
                            given.display(),
                            go_io_error(&e)
                        )
                    })?;
                    (rel, Some(text))
                } else {
                    (rel, None)
                }
            }
        };
        let from_stdin = rel_dockerfile == "-";

        let ignore_path = root.join(".dockerignore");
        let mut excludes = match std::fs::read(&ignore_path) {
            Ok(text) => read_patterns(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(format!(
                    "open {}: {}",
                    ignore_path.display(),
                    go_io_error(&e)
                ))
            }
        };
        let checking = |e: String| format!("error checking context: {e}");
        // The Dockerfile and .dockerignore are always sent.
        let matcher = Matcher::new(&excludes).map_err(checking)?;
        if matcher.matches(".dockerignore") {
            excludes.push("!.dockerignore".into());
        }
        if !from_stdin && matcher.matches(&rel_dockerfile) {
            excludes.push(format!("!{rel_dockerfile}"));
        }
        let matcher = Matcher::new(&excludes).map_err(checking)?;

        let mut entries = Vec::new();
        walk(&root, "", None, &matcher, &mut entries).map_err(checking)?;
        let extra_dockerfile = extra.take().map(|text| (random_dockerfile_name(), text));
        let dockerfile = match &extra_dockerfile {
            Some((name, _)) => name.clone(),
            None => rel_dockerfile,
        };
        Ok(DirContext {
            entries,
            extra_dockerfile,
            dockerfile,
        })
    }

    /// Writes the context as a tar to `out` and returns it.
    pub fn write_tar<W: Write>(&self, out: W) -> io::Result<W> {
        let mut builder = tar::Builder::new(out);
        // Inode → first name, for hard links (as docker's `SeenFiles`).
        let mut seen: HashMap<(u64, u64), String> = HashMap::new();
        for entry in &self.entries {
            let meta = &entry.meta;
            let kind = meta.file_type();
            let mut header = tar::Header::new_gnu();
            header.set_mode(meta.mode() & 0o7777);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(meta.mtime().max(0) as u64);
            header.set_size(0);
            if kind.is_dir() {
                header.set_entry_type(tar::EntryType::Directory);
                builder.append_data(&mut header, format!("{}/", entry.name), io::empty())?;
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&entry.path)?;
                header.set_entry_type(tar::EntryType::Symlink);
                builder.append_link(&mut header, &entry.name, target)?;
            } else if kind.is_file() {
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = seen.get(&key) {
                        header.set_entry_type(tar::EntryType::Link);
                        builder.append_link(&mut header, &entry.name, first)?;
                        continue;
                    }
                    seen.insert(key, entry.name.clone());
                }
                header.set_entry_type(tar::EntryType::Regular);
                if self.extra_dockerfile.is_some() && entry.name == ".dockerignore" {
                    let text = self.dockerignore_with_extra(Some(std::fs::read(&entry.path)?));
                    header.set_size(text.len() as u64);
                    builder.append_data(&mut header, &entry.name, &text[..])?;
                    continue;
                }
                let size = meta.len();
                header.set_size(size);
                let file = std::fs::File::open(&entry.path)?;
                // A file that shrank since the walk is padded, one that grew cut:
                // the archive stays well-formed.
                let data = file.take(size).chain(io::repeat(0)).take(size);
                builder.append_data(&mut header, &entry.name, data)?;
            } else {
                header.set_entry_type(if kind.is_fifo() {
                    tar::EntryType::Fifo
                } else if kind.is_char_device() {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                let rdev = meta.rdev();
                header.set_device_major(libc::major(rdev))?;
                header.set_device_minor(libc::minor(rdev))?;
                builder.append_data(&mut header, &entry.name, io::empty())?;
            }
        }
        if let Some((name, text)) = &self.extra_dockerfile {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o600);
            header.set_mtime(now);
            header.set_uid(0);
            header.set_gid(0);
            header.set_size(text.len() as u64);
            builder.append_data(&mut header, name, &text[..])?;
            if !self.entries.iter().any(|e| e.name == ".dockerignore") {
                let text = self.dockerignore_with_extra(None);
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o600);
                header.set_uid(0);
                header.set_gid(0);
                header.set_size(text.len() as u64);
                builder.append_data(&mut header, ".dockerignore", &text[..])?;
            }
        }
        builder.into_inner()
    }

    /// `.dockerignore` with the added Dockerfile listed, so that no `COPY .` takes
    /// it into the image (a new file lists itself as well).
    fn dockerignore_with_extra(&self, existing: Option<Vec<u8>>) -> Vec<u8> {
        let mut text = existing.unwrap_or_else(|| b".dockerignore".to_vec());
        if let Some((name, _)) = &self.extra_dockerfile {
            text.extend_from_slice(format!("\n{name}\n").as_bytes());
        }
        text
    }
}

/// Walks `root/rel_dir` in lexical order as docker's archiver does: an excluded
/// directory is left out with its contents unless an exception names something
/// inside it, in which case only the matching contents are sent.
fn walk(
    root: &Path,
    rel_dir: &str,
    parent: Option<&[bool]>,
    matcher: &Matcher,
    entries: &mut Vec<Entry>,
) -> Result<(), String> {
    let dir = if rel_dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel_dir)
    };
    let listing = std::fs::read_dir(&dir).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => format!("can't stat '{}'", dir.display()),
        _ => format!("lstat {}: {}", dir.display(), go_io_error(&e)),
    })?;
    let mut names = Vec::new();
    for item in listing {
        let item = item.map_err(|e| format!("{}: {}", dir.display(), go_io_error(&e)))?;
        names.push(item.file_name());
    }
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        let path = dir.join(&name);
        let name = name.to_string_lossy();
        let rel = if rel_dir.is_empty() {
            name.into_owned()
        } else {
            format!("{rel_dir}/{name}")
        };
        let meta = std::fs::symlink_metadata(&path).map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => format!("can't stat '{}'", path.display()),
            io::ErrorKind::NotFound => format!(
                "file ('{}') not found or excluded by .dockerignore",
                path.display()
            ),
            _ => format!("lstat {}: {}", path.display(), go_io_error(&e)),
        })?;
        let (skip, info) = matcher.matches_in(&rel, parent);
        if skip {
            if meta.is_dir() && matcher.has_exclusions() && matcher.has_exception_under(&rel) {
                walk(root, &rel, Some(&info), matcher, entries)?;
            }
            continue;
        }
        if meta.file_type().is_socket() {
            continue;
        }
        if meta.is_file() {
            if let Err(e) = std::fs::File::open(&path) {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    return Err(format!("no permission to read from '{}'", path.display()));
                }
            }
        }
        let is_dir = meta.is_dir();
        entries.push(Entry {
            name: rel.clone(),
            path,
            meta,
        });
        if is_dir {
            walk(root, &rel, Some(&info), matcher, entries)?;
        }
    }
    Ok(())
}

/// The size of a tar header block, which docker peeks at on stdin.
pub const ARCHIVE_HEADER_SIZE: usize = 512;

/// docker's `build.IsArchive`: compressed data, or a block that reads as a tar
/// header (its checksum holds).
pub fn is_archive(header: &[u8]) -> bool {
    const MAGICS: &[&[u8]] = &[
        b"\x1f\x8b\x08",             // gzip
        b"BZh",                      // bzip2
        b"\xfd\x37\x7a\x58\x5a\x00", // xz
        b"\x28\xb5\x2f\xfd",         // zstd
    ];
    if MAGICS.iter().any(|m| header.starts_with(m)) {
        return true;
    }
    if header.len() < ARCHIVE_HEADER_SIZE || header[..ARCHIVE_HEADER_SIZE].iter().all(|&b| b == 0) {
        return false;
    }
    let field = &header[148..156];
    let text: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| !matches!(c, '\0' | ' '))
        .collect();
    let Ok(stored) = i64::from_str_radix(&text, 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in header[..ARCHIVE_HEADER_SIZE].iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored == signed
}

/// The context docker makes of a Dockerfile given on stdin without a context: a
/// tar holding it alone as `Dockerfile`.
pub fn tar_of_dockerfile(text: &[u8]) -> io::Result<Vec<u8>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_mtime(now);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(text.len() as u64);
    builder.append_data(&mut header, DEFAULT_DOCKERFILE, text)?;
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names and contents (files only) of a tar.
    fn listing(tar: &[u8]) -> Vec<(String, Option<String>)> {
        let mut archive = tar::Archive::new(tar);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let content = if entry.header().entry_type().is_file() {
                let mut s = String::new();
                entry.read_to_string(&mut s).unwrap();
                Some(s)
            } else {
                None
            };
            out.push((name, content));
        }
        out
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A scratch directory removed when dropped (no tempfile crate here).
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "berth-build-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tree() -> TempDir {
        let dir = TempDir::new();
        let ctx = dir.path().join("ctx");
        write(&ctx, "Dockerfile", "FROM busybox\n");
        write(
            &ctx,
            ".dockerignore",
            "# secrets\n*.key\n**/*.log\nbuild\n!build/keep.txt\ndocs/\n",
        );
        write(&ctx, "a.txt", "a");
        write(&ctx, "id.key", "secret");
        write(&ctx, "src/main.rs", "fn main() {}");
        write(&ctx, "src/deep/x.log", "log");
        write(&ctx, "build/out.o", "obj");
        write(&ctx, "build/keep.txt", "keep");
        write(&ctx, "docs/readme.md", "docs");
        std::os::unix::fs::symlink("a.txt", ctx.join("link")).unwrap();
        write(dir.path(), "elsewhere/Dockerfile.dev", "FROM scratch\n");
        dir
    }

    #[test]
    fn context_tar_honours_dockerignore() {
        let dir = tree();
        let ctx = dir.path().join("ctx");
        let context =
            DirContext::prepare(ctx.to_str().unwrap(), DockerfileSource::Default).unwrap();
        assert_eq!(context.dockerfile, "Dockerfile");
        let tar = context.write_tar(Vec::new()).unwrap();
        let names: Vec<String> = listing(&tar).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "a.txt",
                "build/keep.txt",
                "link",
                "src/",
                "src/deep/",
                "src/main.rs",
            ]
        );
        let mut archive = tar::Archive::new(&tar[..]);
        let link = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("link"))
            .unwrap();
        assert!(link.header().entry_type().is_symlink());
        assert_eq!(link.link_name().unwrap().unwrap().to_str(), Some("a.txt"));
    }

    #[test]
    fn dockerfile_and_dockerignore_are_always_sent() {
        let dir = tree();
        let ctx = dir.path().join("ctx");
        write(
            &ctx,
            ".dockerignore",
            ".dockerignore\nDockerfile\nsub\n*.txt\n",
        );
        write(&ctx, "sub/Dockerfile", "FROM busybox\n");
        let context = DirContext::prepare(
            ctx.to_str().unwrap(),
            DockerfileSource::Path(ctx.join("sub/Dockerfile").to_str().unwrap()),
        )
        .unwrap();
        assert_eq!(context.dockerfile, "sub/Dockerfile");
        let tar = context.write_tar(Vec::new()).unwrap();
        let names: Vec<String> = listing(&tar).into_iter().map(|(n, _)| n).collect();
        // `sub` itself stays out; the Dockerfile inside it goes.
        assert!(names.contains(&".dockerignore".to_string()), "{names:?}");
        assert!(names.contains(&"sub/Dockerfile".to_string()), "{names:?}");
        assert!(!names.contains(&"sub/".to_string()), "{names:?}");
        assert!(!names.contains(&"Dockerfile".to_string()), "{names:?}");
        assert!(!names.contains(&"a.txt".to_string()), "{names:?}");
    }

    #[test]
    fn dockerfile_outside_the_context_is_added() {
        let dir = tree();
        let ctx = dir.path().join("ctx");
        let outside = dir.path().join("elsewhere/Dockerfile.dev");
        let context = DirContext::prepare(
            ctx.to_str().unwrap(),
            DockerfileSource::Path(outside.to_str().unwrap()),
        )
        .unwrap();
        let name = context.dockerfile.clone();
        assert!(name.starts_with(".dockerfile."), "{name}");
        assert_eq!(name.len(), ".dockerfile.".len() + 20);
        assert!(name[12..].bytes().all(|b| b.is_ascii_hexdigit()));
        let files = listing(&context.write_tar(Vec::new()).unwrap());
        let dockerfile = files.iter().find(|(n, _)| *n == name).unwrap();
        assert_eq!(dockerfile.1.as_deref(), Some("FROM scratch\n"));
        // The context's own Dockerfile is still sent, as any other file.
        assert!(files.iter().any(|(n, _)| n == "Dockerfile"));
        // .dockerignore lists the added file.
        let ignore = files.iter().find(|(n, _)| n == ".dockerignore").unwrap();
        assert_eq!(
            ignore.1.clone().unwrap(),
            format!("# secrets\n*.key\n**/*.log\nbuild\n!build/keep.txt\ndocs/\n\n{name}\n")
        );
        assert_eq!(files.last().unwrap().0, name);

        // Without a .dockerignore one is made, naming itself too.
        std::fs::remove_file(ctx.join(".dockerignore")).unwrap();
        let context = DirContext::prepare(
            ctx.to_str().unwrap(),
            DockerfileSource::Stdin(b"FROM x\n".to_vec()),
        )
        .unwrap();
        let name = context.dockerfile.clone();
        let files = listing(&context.write_tar(Vec::new()).unwrap());
        let n = files.len();
        assert_eq!(files[n - 2], (name.clone(), Some("FROM x\n".to_string())));
        assert_eq!(
            files[n - 1],
            (
                ".dockerignore".to_string(),
                Some(format!(".dockerignore\n{name}\n"))
            )
        );
        assert!(files.iter().any(|(n, _)| n == "id.key"));
    }

    #[test]
    fn prepare_errors_are_dockers() {
        let dir = tree();
        let ctx = dir.path().join("ctx");
        std::fs::remove_file(ctx.join("Dockerfile")).unwrap();
        let err =
            DirContext::prepare(ctx.to_str().unwrap(), DockerfileSource::Default).unwrap_err();
        let ctx = std::fs::canonicalize(&ctx).unwrap();
        assert_eq!(
            err,
            format!(
                "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}/Dockerfile: no such file or directory",
                ctx.display()
            )
        );
        // A lower-case dockerfile is taken when there is no Dockerfile.
        write(&ctx, "dockerfile", "FROM busybox\n");
        let context =
            DirContext::prepare(ctx.to_str().unwrap(), DockerfileSource::Default).unwrap();
        assert_eq!(context.dockerfile, "dockerfile");
        let err = DirContext::prepare(
            ctx.join("a.txt").to_str().unwrap(),
            DockerfileSource::Default,
        )
        .unwrap_err();
        assert_eq!(
            err,
            format!(
                "unable to prepare context: context must be a directory: {}/a.txt",
                ctx.display()
            )
        );
        write(&ctx, ".dockerignore", "a[\n");
        let err =
            DirContext::prepare(ctx.to_str().unwrap(), DockerfileSource::Default).unwrap_err();
        assert_eq!(err, "error checking context: syntax error in pattern");
    }

    #[test]
    fn hard_links_are_links() {
        let dir = TempDir::new();
        write(dir.path(), "Dockerfile", "FROM x\n");
        write(dir.path(), "a", "same");
        std::fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        let context =
            DirContext::prepare(dir.path().to_str().unwrap(), DockerfileSource::Default).unwrap();
        let tar = context.write_tar(Vec::new()).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let b = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("b"))
            .unwrap();
        assert_eq!(b.header().entry_type(), tar::EntryType::Link);
        assert_eq!(b.link_name().unwrap().unwrap().to_str(), Some("a"));
    }

    #[test]
    fn stdin_is_told_apart() {
        let tar = tar_of_dockerfile(b"FROM busybox\n").unwrap();
        assert!(is_archive(&tar[..ARCHIVE_HEADER_SIZE]));
        assert_eq!(
            listing(&tar),
            [("Dockerfile".to_string(), Some("FROM busybox\n".to_string()))]
        );
        assert!(!is_archive(b"FROM busybox\nRUN true\n"));
        assert!(!is_archive(&[b'F'; 600]));
        assert!(!is_archive(&[0; 1024]));
        assert!(is_archive(b"\x1f\x8b\x08\x00rest"));
        let mut broken = tar.clone();
        broken[0] ^= 1;
        assert!(!is_archive(&broken[..ARCHIVE_HEADER_SIZE]));
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/c/d")), "../c/d");
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/b/D")), "D");
    }
}
