//! Image references as Docker parses and normalizes them:
//! `busybox` is `docker.io/library/busybox:latest`, shown back as `busybox`.

use std::fmt;

use crate::digest::{is_sha256_hex, Digest};
use crate::error::{Error, Result};

/// The registry that names without a domain belong to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag a reference without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A fully normalized reference: domain, path, and an optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a user-supplied reference, normalizing the domain and `library/`.
    /// A bare 64-hex string is refused, as Docker does, because it would read as an id.
    pub fn parse_normalized(input: &str) -> Result<Self> {
        let invalid = || Error::InvalidReference {
            input: input.to_string(),
        };
        if is_sha256_hex(input) {
            return Err(Error::invalid(format!(
                "invalid repository name ({input}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest).map_err(|_| invalid())?)),
            None => (input, None),
        };
        // A tag is whatever follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let split = last_slash + i;
                (&rest[..split], Some(rest[split + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            if !valid_tag(tag) {
                return Err(invalid());
            }
        }
        let (domain, mut path) = split_domain(name);
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("{OFFICIAL_REPO_PREFIX}{path}");
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(Error::UppercaseReference {
                name: path.to_string(),
            });
        }
        if !valid_domain(&domain) || !valid_path(&path) {
            return Err(invalid());
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(Error::invalid(format!(
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Like [`parse_normalized`](Self::parse_normalized), adding `:latest` when there is
    /// neither tag nor digest.
    pub fn parse_with_default_tag(input: &str) -> Result<Self> {
        let mut r = Self::parse_normalized(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// A tagged reference from a repository name and a tag (as `docker tag`, `import REPO:TAG`).
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        if !valid_tag(tag) {
            return Err(Error::InvalidReference {
                input: tag.to_string(),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The repository without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as users see it: `busybox`, `user/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The whole reference in familiar form: `busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest.as_str());
        }
        s
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The path inside the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository with no tag and no digest.
    pub fn repository(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Splits `name` into its registry domain and path the way Docker decides: the first
/// component is a domain only if it has a `.` or `:`, or is `localhost`, or has uppercase.
fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            let domain = if first == LEGACY_DEFAULT_DOMAIN {
                DEFAULT_DOMAIN
            } else {
                first
            };
            (domain.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    }
}

fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) if !domain.starts_with('[') || h.ends_with(']') => (h, Some(p)),
        _ => (domain, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// Path components: `[a-z0-9]+` joined by `.`, `_`, `__` or any run of `-`.
fn valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(valid_path_component)
}

fn valid_path_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse_with_default_tag(s).unwrap().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("user/app:1.0"), "docker.io/user/app:1.0");
        assert_eq!(norm("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("example.com/a/b/c:v"), "example.com/a/b/c:v");
    }

    #[test]
    fn familiar_forms() {
        let r = Reference::parse_with_default_tag("docker.io/library/busybox").unwrap();
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.familiar_name(), "busybox");
        let r = Reference::parse_with_default_tag("docker.io/user/app:2").unwrap();
        assert_eq!(r.familiar(), "user/app:2");
        let r = Reference::parse_with_default_tag("127.0.0.1:5000/x").unwrap();
        assert_eq!(r.familiar(), "127.0.0.1:5000/x:latest");
    }

    #[test]
    fn digests() {
        let d = Digest::of(b"x");
        let r = Reference::parse_normalized(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.digest(), Some(&d));
        assert_eq!(r.tag(), None);
        assert!(Reference::parse_normalized("busybox@sha256:123").is_err());
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            ":",
            "a:",
            "UPPER",
            "a//b",
            "-a",
            "a-",
            "a:b:c",
            "a b",
            "a/b:t@",
            "a..b",
            "a:tag with space",
            &"a".repeat(300),
        ] {
            assert!(
                Reference::parse_normalized(bad).is_err(),
                "{bad:?} accepted"
            );
        }
        let err = Reference::parse_normalized("Busybox")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be lowercase"), "{err}");
        let hex = "a".repeat(64);
        assert!(Reference::parse_normalized(&hex).is_err());
    }

    #[test]
    fn separators() {
        for ok in ["a_b", "a__b", "a.b", "a---b", "a-b/c.d_e"] {
            assert!(Reference::parse_normalized(ok).is_ok(), "{ok:?} refused");
        }
        assert!(Reference::parse_normalized("a___b").is_err());
    }
}
