//! Names for containers: the user's, checked as Docker checks them, or a generated
//! `adjective_noun` pair.

use crate::error::{Error, Result};

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "calm", "daring", "eager", "fearless", "gentle", "happy", "jolly", "keen",
    "lively", "merry", "nimble", "patient", "quiet", "rapid", "steady", "tidy", "upbeat", "vivid",
    "wise", "zealous", "bold", "clever", "dreamy", "frosty", "golden", "humble", "icy", "lucid",
];

const NOUNS: &[&str] = &[
    "anchor",
    "buoy",
    "harbor",
    "jetty",
    "keel",
    "lagoon",
    "mooring",
    "pier",
    "quay",
    "rudder",
    "sail",
    "tide",
    "wharf",
    "breaker",
    "compass",
    "dinghy",
    "estuary",
    "ferry",
    "galley",
    "hull",
    "inlet",
    "lighthouse",
    "mast",
    "oar",
    "port",
    "reef",
    "schooner",
    "tugboat",
    "voyage",
    "windlass",
];

/// A fresh `adjective_noun` name; `taken` says whether a candidate is in use.
pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    for attempt in 0..100 {
        let a = ADJECTIVES[rand::random_range(0..ADJECTIVES.len())];
        let n = NOUNS[rand::random_range(0..NOUNS.len())];
        let name = if attempt < 10 {
            format!("{a}_{n}")
        } else {
            format!("{a}_{n}{}", rand::random_range(0..1000))
        };
        if !taken(&name) {
            return name;
        }
    }
    format!("berth_{}", rand::random::<u32>())
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, an optional leading `/` aside.
pub fn validate(name: &str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok =
        bare.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok {
        return Err(Error::InvalidArgument(format!(
            "Invalid container name ({bare}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate("/web-1").unwrap(), "web-1");
        assert!(validate("a").is_err());
        assert!(validate("-x").is_err());
        assert!(validate("a b").is_err());
        let n = generate(|_| false);
        assert!(n.contains('_'));
        assert!(validate(&n).is_ok());
    }
}
