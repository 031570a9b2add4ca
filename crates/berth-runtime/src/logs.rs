//! Reading the json-file log for `logs`: every rotated file oldest first, filtered by
//! stream, time and tail, and new lines as they are written for `--follow`.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use berth_shim_proto::frame_header;
use serde::Deserialize;

/// One log line.
#[derive(Debug, Clone)]
pub struct Entry {
    pub stream: u8,
    pub log: String,
    pub time: String,
    pub time_nanos: i64,
    /// Extra attributes the log driver recorded (`--log-opt labels=…,env=…`), shown
    /// by `logs --details`.
    pub attrs: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawEntry {
    log: String,
    stream: String,
    time: String,
    #[serde(default)]
    attrs: std::collections::BTreeMap<String, String>,
}

fn parse_line(line: &str) -> Option<Entry> {
    let raw: RawEntry = serde_json::from_str(line).ok()?;
    let time_nanos = chrono::DateTime::parse_from_rfc3339(&raw.time)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0);
    Some(Entry {
        stream: if raw.stream == "stderr" { 2 } else { 1 },
        log: raw.log,
        time: raw.time,
        time_nanos,
        attrs: raw.attrs,
    })
}

/// Which lines to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub stdout: bool,
    pub stderr: bool,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub tail: Option<usize>,
}

impl Filter {
    pub fn accepts(&self, e: &Entry) -> bool {
        ((e.stream == 1 && self.stdout) || (e.stream == 2 && self.stderr))
            && self.since.is_none_or(|s| e.time_nanos >= s)
            && self.until.is_none_or(|u| e.time_nanos <= u)
    }
}

/// The log files of a container, oldest first.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    for n in 1..100 {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
        if !p.exists() {
            break;
        }
        rotated.push((n, p));
    }
    rotated.sort_by(|a, b| b.0.cmp(&a.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

/// Everything logged so far that passes `filter`, and the offset reached in the
/// current file (to follow from).
pub fn read_all(path: &Path, filter: &Filter) -> (Vec<Entry>, u64) {
    let mut entries = Vec::new();
    let mut offset = 0;
    for file in files(path) {
        let Ok(f) = File::open(&file) else { continue };
        let mut reader = BufReader::new(f);
        let mut line = String::new();
        let mut consumed = 0u64;
        while let Ok(n) = reader.read_line(&mut line) {
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            consumed += n as u64;
            if let Some(e) = parse_line(line.trim_end()) {
                if filter.accepts(&e) {
                    entries.push(e);
                }
            }
            line.clear();
        }
        if file == path {
            offset = consumed;
        }
    }
    if let Some(tail) = filter.tail {
        let skip = entries.len().saturating_sub(tail);
        entries.drain(..skip);
    }
    (entries, offset)
}

/// Follows the current log file. It holds the file open, so that lines written just
/// before a container is removed (and its log unlinked) are still delivered, and
/// moves to the new file when the log rotates.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
}

impl Follower {
    /// Opens the current file; call before [`read_all`] so nothing can slip away.
    pub fn open(path: &Path) -> Self {
        Follower {
            path: path.to_path_buf(),
            file: File::open(path).ok(),
            offset: 0,
        }
    }

    /// Continues from `offset` (what [`read_all`] returned).
    pub fn seek(&mut self, offset: u64) {
        self.offset = offset;
    }

    /// Complete lines appended since the last call.
    pub fn read_new(&mut self, filter: &Filter) -> Vec<Entry> {
        use std::os::unix::fs::MetadataExt;
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
            self.offset = 0;
        }
        let Some(file) = self.file.as_mut() else {
            return Vec::new();
        };
        let mut out = read_lines(file, &mut self.offset, filter);
        let current = file.metadata().map(|m| m.ino()).ok();
        let on_disk = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if on_disk.is_some() && on_disk != current {
            // Rotated: the old file is read to its end above; start the new one.
            self.file = File::open(&self.path).ok();
            self.offset = 0;
            if let Some(file) = self.file.as_mut() {
                out.extend(read_lines(file, &mut self.offset, filter));
            }
        }
        out
    }
}

fn read_lines(file: &mut File, offset: &mut u64, filter: &Filter) -> Vec<Entry> {
    if file.seek(SeekFrom::Start(*offset)).is_err() {
        return Vec::new();
    }
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut line = String::new();
    while let Ok(n) = reader.read_line(&mut line) {
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        *offset += n as u64;
        if let Some(e) = parse_line(line.trim_end()) {
            if filter.accepts(&e) {
                out.push(e);
            }
        }
        line.clear();
    }
    out
}

/// One entry as the API sends it: multiplexed frames without a TTY, raw with one;
/// with `timestamps`, each line starts with its time, and with `details` then with its
/// attributes (`k=v,k2=v2`, empty when it has none) and a space, as Docker shows them.
pub fn encode(entry: &Entry, tty: bool, timestamps: bool, details: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(entry.log.len() + 40);
    if timestamps {
        payload.extend_from_slice(entry.time.as_bytes());
        payload.push(b' ');
    }
    if details {
        let attrs: Vec<String> = entry
            .attrs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        payload.extend_from_slice(attrs.join(",").as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(entry.log.as_bytes());
    if tty {
        return payload;
    }
    let mut out = frame_header(entry.stream, payload.len()).to_vec();
    out.extend_from_slice(&payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_and_streams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut text = String::new();
        for i in 0..5 {
            let stream = if i % 2 == 0 { "stdout" } else { "stderr" };
            text.push_str(&format!(
                "{{\"log\":\"line {i}\\n\",\"stream\":\"{stream}\",\"time\":\"2024-01-01T00:00:0{i}Z\"}}\n"
            ));
        }
        std::fs::write(&path, &text).unwrap();
        let all = Filter {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let (entries, offset) = read_all(&path, &all);
        assert_eq!(entries.len(), 5);
        assert_eq!(offset, text.len() as u64);
        let only_out = Filter {
            stdout: true,
            tail: Some(2),
            ..Default::default()
        };
        let (entries, _) = read_all(&path, &only_out);
        assert_eq!(
            entries.iter().map(|e| e.log.as_str()).collect::<Vec<_>>(),
            ["line 2\n", "line 4\n"]
        );
        let framed = encode(&entries[0], false, false, false);
        assert_eq!(&framed[..8], &[1, 0, 0, 0, 0, 0, 0, 7]);
        let mut follower = Follower::open(&path);
        follower.seek(offset);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(
            &mut file,
            b"{\"log\":\"more\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:01:00Z\"}\n",
        )
        .unwrap();
        // Removed with its container: what was written is still read.
        std::fs::remove_file(&path).unwrap();
        let new = follower.read_new(&all);
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].log, "more\n");
    }
}
