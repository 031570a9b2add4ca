//! Docker's json-file log driver: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"…"}`, rotated by size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

use berth_shim_proto::LogConfig;
use chrono::{SecondsFormat, Utc};

/// Lines longer than this are split, as Docker does, so one line cannot grow forever.
const MAX_PARTIAL: usize = 16 * 1024;

pub struct JsonLog {
    config: LogConfig,
    file: File,
    size: u64,
    partial: [Vec<u8>; 2],
}

impl JsonLog {
    pub fn open(config: LogConfig) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            config,
            file,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Records output of `stream` (1 stdout, 2 stderr): complete lines now, the rest
    /// when its newline comes or at [`flush`](Self::flush).
    pub fn write(&mut self, stream: u8, data: &[u8]) -> io::Result<()> {
        let slot = if stream == 2 { 1 } else { 0 };
        self.partial[slot].extend_from_slice(data);
        while let Some(pos) = self.partial[slot].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial[slot].drain(..=pos).collect();
            self.entry(stream, &line)?;
        }
        if self.partial[slot].len() >= MAX_PARTIAL {
            let line = std::mem::take(&mut self.partial[slot]);
            self.entry(stream, &line)?;
        }
        Ok(())
    }

    /// Writes out any unterminated line (at EOF).
    pub fn flush(&mut self) -> io::Result<()> {
        for slot in 0..2 {
            if !self.partial[slot].is_empty() {
                let line = std::mem::take(&mut self.partial[slot]);
                self.entry(if slot == 0 { 1 } else { 2 }, &line)?;
            }
        }
        self.file.flush()
    }

    fn entry(&mut self, stream: u8, line: &[u8]) -> io::Result<()> {
        let mut record = serde_json::json!({
            "log": String::from_utf8_lossy(line),
            "stream": if stream == 2 { "stderr" } else { "stdout" },
        });
        if !self.config.attrs.is_empty() {
            record["attrs"] = serde_json::json!(self.config.attrs);
        }
        record["time"] = serde_json::json!(Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true));
        let mut bytes = serde_json::to_vec(&record)?;
        bytes.push(b'\n');
        if self.config.max_size > 0
            && self.size > 0
            && self.size + bytes.len() as u64 > self.config.max_size
        {
            self.rotate()?;
        }
        self.file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// `log` → `log.1` → … → `log.(max_file-1)`; the oldest is dropped.
    fn rotate(&mut self) -> io::Result<()> {
        let base = self.config.path.clone();
        let numbered = |n: u32| -> PathBuf { PathBuf::from(format!("{}.{n}", base.display())) };
        let keep = self.config.max_file.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(numbered(keep - 1));
        for n in (1..keep - 1).rev() {
            let _ = fs::rename(numbered(n), numbered(n + 1));
        }
        fs::rename(&base, numbered(1))?;
        self.file = OpenOptions::new().create(true).append(true).open(&base)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, max_size: u64, max_file: u32) -> LogConfig {
        LogConfig {
            attrs: Default::default(),
            path: dir.join("c-json.log"),
            max_size,
            max_file,
        }
    }

    #[test]
    fn lines_and_partials() {
        let dir = std::env::temp_dir().join(format!("berth-log-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut log = JsonLog::open(config(&dir, 0, 1)).unwrap();
        log.write(1, b"hel").unwrap();
        log.write(2, b"err\n").unwrap();
        log.write(1, b"lo\nwor").unwrap();
        log.flush().unwrap();
        let text = fs::read_to_string(dir.join("c-json.log")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["log"], "err\n");
        assert_eq!(lines[0]["stream"], "stderr");
        assert_eq!(lines[1]["log"], "hello\n");
        assert_eq!(lines[2]["log"], "wor");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotates_by_size() {
        let dir = std::env::temp_dir().join(format!("berth-log-rot-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut log = JsonLog::open(config(&dir, 200, 3)).unwrap();
        for i in 0..20 {
            log.write(1, format!("line number {i}\n").as_bytes())
                .unwrap();
        }
        assert!(dir.join("c-json.log.1").exists());
        assert!(dir.join("c-json.log.2").exists());
        assert!(!dir.join("c-json.log.3").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
