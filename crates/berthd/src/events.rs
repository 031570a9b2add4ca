//! The event hub: every state change is published here, appended to a bounded ring
//! on disk (so `events --since` reaches back across a daemon restart), and fanned out
//! to `/events` subscribers.
//!
//! The ring is two segments of JSON lines: when the current one is full it replaces
//! the previous one. Each event is one `write(2)` to an `O_APPEND` file, so a daemon
//! killed at any point leaves whole lines behind (a torn last line is skipped).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Events per segment; the ring holds between one and two segments' worth.
const SEGMENT_EVENTS: usize = 5000;
const CURRENT: &str = "events.jsonl";
const PREVIOUS: &str = "events.1.jsonl";

/// One event, in the shape `/events` sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "status", skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "id", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "from", skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Self {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        // The legacy top-level fields exist for containers and images only.
        let legacy = matches!(kind, "container" | "image");
        Event {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: (kind == "container")
                .then(|| attributes.get("image").cloned())
                .flatten(),
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: now.timestamp(),
            time_nano: nanos,
        }
    }
}

/// Publishes events to live subscribers and keeps the recent ones on disk.
pub struct EventHub {
    sender: broadcast::Sender<Arc<Event>>,
    log: Mutex<EventLog>,
}

/// The on-disk ring.
struct EventLog {
    dir: PathBuf,
    file: Option<File>,
    lines: usize,
}

impl EventLog {
    fn append(&mut self, event: &Event) {
        let dir = &self.dir;
        if self.lines >= SEGMENT_EVENTS {
            let _ = std::fs::rename(dir.join(CURRENT), dir.join(PREVIOUS));
            self.file = None;
            self.lines = 0;
        }
        if self.file.is_none() {
            self.file = open_append(&dir.join(CURRENT));
        }
        let Some(file) = &mut self.file else { return };
        let mut line = serde_json::to_vec(event).unwrap_or_default();
        line.push(b'\n');
        match file.write_all(&line) {
            Ok(()) => self.lines += 1,
            Err(e) => tracing::warn!("recording event: {e}"),
        }
    }

    /// Kept events with `since <= timeNano <= until`, oldest first.
    fn read(&self, since: i64, until: i64) -> Vec<Arc<Event>> {
        let dir = &self.dir;
        let mut out = Vec::new();
        for name in [PREVIOUS, CURRENT] {
            let Ok(file) = File::open(dir.join(name)) else {
                continue;
            };
            for line in BufReader::new(file).lines().map_while(|l| l.ok()) {
                if let Ok(event) = serde_json::from_str::<Event>(&line) {
                    if event.time_nano >= since && event.time_nano <= until {
                        out.push(Arc::new(event));
                    }
                }
            }
        }
        out
    }
}

fn open_append(path: &Path) -> Option<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| tracing::warn!("opening {}: {e}", path.display()))
        .ok()
}

impl EventHub {
    /// A hub that keeps its ring under `dir` (created if missing).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let current = dir.join(CURRENT);
        let lines = File::open(&current)
            .map(|f| BufReader::new(f).lines().count())
            .unwrap_or(0);
        // A line torn by a crash is ended, so the next event starts a line of its own.
        if let Ok(bytes) = std::fs::read(&current) {
            if bytes.last().is_some_and(|b| *b != b'\n') {
                if let Some(mut file) = open_append(&current) {
                    file.write_all(b"\n")?;
                }
            }
        }
        Ok(Self::with_log(EventLog {
            dir: dir.to_path_buf(),
            file: None,
            lines,
        }))
    }

    fn with_log(log: EventLog) -> Self {
        let (sender, _) = broadcast::channel(1024);
        EventHub {
            sender,
            log: Mutex::new(log),
        }
    }

    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        // Appending and sending under one lock keeps the file and the live stream in
        // the same order, and lets `subscribe` take both without a gap.
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.append(&event);
        let _ = self.sender.send(event);
    }

    /// Shorthand for an image event with the image's name as attribute.
    pub fn image(&self, action: &str, id: &str, name: &str) {
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_string(), name.to_string());
        self.publish(Event::new("image", action, id, attributes));
    }

    /// Past events in `[since, until]` (nanoseconds) and a receiver for what follows,
    /// taken together so that nothing falls between them.
    pub fn subscribe(
        &self,
        since: i64,
        until: i64,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let receiver = self.sender.subscribe();
        let past = if since == i64::MAX {
            Vec::new()
        } else {
            log.read(since, until)
        };
        (past, receiver)
    }

    pub fn listeners(&self) -> usize {
        self.sender.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> Event {
        Event::new("container", action, "abc", BTreeMap::new())
    }

    #[test]
    fn ring_survives_reopen_and_stays_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let hub = EventHub::open(dir.path()).expect("open");
            hub.publish(event("create"));
            hub.publish(event("start"));
        }
        let hub = EventHub::open(dir.path()).expect("reopen");
        let (past, _) = hub.subscribe(0, i64::MAX);
        let actions: Vec<_> = past.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["create", "start"]);
        for _ in 0..(2 * SEGMENT_EVENTS + 10) {
            hub.publish(event("exec_start"));
        }
        let (past, _) = hub.subscribe(0, i64::MAX);
        assert!(past.len() <= 2 * SEGMENT_EVENTS);
        assert!(past.len() >= SEGMENT_EVENTS);
        assert!(past.iter().all(|e| e.action == "exec_start"));
    }

    #[test]
    fn torn_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = EventHub::open(dir.path()).expect("open");
        hub.publish(event("create"));
        OpenOptions::new()
            .append(true)
            .open(dir.path().join(CURRENT))
            .and_then(|mut f| f.write_all(b"{\"Type\":\"cont"))
            .expect("tear");
        let hub = EventHub::open(dir.path()).expect("reopen");
        hub.publish(event("start"));
        let (past, _) = hub.subscribe(0, i64::MAX);
        let actions: Vec<_> = past.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["create", "start"]);
    }
}
