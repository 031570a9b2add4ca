//! The event hub: every state change is published here, kept in a bounded ring for
//! `--since`, and fanned out to `/events` subscribers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

const RING_CAPACITY: usize = 1024;

/// One event, in the shape `/events` sends.
#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
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

/// Publishes events to live subscribers and remembers the recent ones.
pub struct EventHub {
    sender: broadcast::Sender<Arc<Event>>,
    ring: Mutex<VecDeque<Arc<Event>>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(256);
        EventHub {
            sender,
            ring: Mutex::new(VecDeque::with_capacity(RING_CAPACITY)),
        }
    }

    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            if ring.len() == RING_CAPACITY {
                ring.pop_front();
            }
            ring.push_back(event.clone());
        }
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
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let receiver = self.sender.subscribe();
        let past = ring
            .iter()
            .filter(|e| e.time_nano >= since && e.time_nano <= until)
            .cloned()
            .collect();
        (past, receiver)
    }

    pub fn listeners(&self) -> usize {
        self.sender.receiver_count()
    }
}
