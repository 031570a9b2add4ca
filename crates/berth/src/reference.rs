//! Image references as docker's CLI reads them (`distribution/reference`'s
//! `ParseNormalizedNamed`): `busybox` is `docker.io/library/busybox`, a first
//! component with a `.` or `:` (or `localhost`) names a registry, and malformed
//! references are refused with docker's wording before any request.

use std::fmt;

/// The registry of unqualified names.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The old name of Docker Hub's registry, read as [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// `NameTotalLengthMax`.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A named reference: a repository, with an optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry (`docker.io`, `localhost:5000`).
    pub domain: String,
    /// The repository path within it (`library/busybox`).
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// `ParseNormalizedNamed`: the reference as typed on the command line, made fully
    /// qualified. Errors carry docker's message.
    pub fn parse_normalized(s: &str) -> Result<Reference, String> {
        if is_hex64(s) {
            return Err(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            ));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = remainder.split(':').next().unwrap_or(&remainder);
        if remote_name.to_lowercase() != remote_name {
            return Err(format!(
                "invalid reference format: repository name ({remote_name}) must be lowercase"
            ));
        }
        parse(&domain, &remainder)
    }

    /// The fully qualified repository (`docker.io/library/busybox`), docker's
    /// `Name()`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Neither tag nor digest: `IsNameOnly`.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// `TagNameOnly`: `latest` for a bare name.
    pub fn with_default_tag(mut self) -> Reference {
        if self.is_name_only() {
            self.tag = Some("latest".into());
        }
        self
    }

    /// What the pull endpoint takes as `tag`: the digest when there is one, else the
    /// tag (`latest` by default), as the docker client's `getAPITagFromNamedRef`.
    pub fn api_tag(&self) -> String {
        self.digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_else(|| "latest".into())
    }

    /// The short form docker prints (`busybox`, `user/app`, `localhost:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// `FamiliarString`: the short name with its tag and digest.
    pub fn familiar_string(&self) -> String {
        self.suffixed(self.familiar_name())
    }

    fn suffixed(&self, mut name: String) -> String {
        if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            name.push('@');
            name.push_str(digest);
        }
        name
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form (`docker.io/library/busybox:latest`), docker's
    /// `String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.suffixed(self.name()))
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `splitDockerDomain`: the first component names a registry when it has a `.` or
/// a `:`, is `localhost`, or has upper-case letters (which a path may not).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// `reference.Parse` of `domain/remainder`, split beforehand: the grammar of
/// `ReferenceRegexp`, then the digest's own checks.
fn parse(domain: &str, remainder: &str) -> Result<Reference, String> {
    const INVALID: &str = "invalid reference format";
    let (name_tag, digest) = match remainder.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (remainder, None),
    };
    let (path, tag) = match name_tag.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (name_tag, None),
    };
    if !valid_domain(domain) || !path.split('/').all(valid_path_component) {
        return Err(INVALID.into());
    }
    if tag.is_some_and(|t| !valid_tag(t)) || digest.is_some_and(|d| !digest_shape(d)) {
        return Err(INVALID.into());
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err("repository name must not be more than 255 characters".into());
    }
    if let Some(d) = digest {
        validate_digest(d)?;
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// `pathComponent`: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep);
    }
}

/// `domainAndPort`: dot-separated host labels (or a bracketed IPv6 address), then
/// an optional `:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        };
        if !host.split('.').all(label_ok) {
            return false;
        }
    }
    port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `tag`: `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `digestPat`: `algorithm:hex` with at least 32 hex digits.
fn digest_shape(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    let component_ok = |c: &str| {
        let mut chars = c.chars();
        chars.next().is_some_and(|f| f.is_ascii_alphabetic())
            && chars.all(|x| x.is_ascii_alphanumeric())
    };
    algorithm.split(['-', '_', '+', '.']).all(component_ok)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// go-digest's `Validate`, with its messages.
fn validate_digest(d: &str) -> Result<(), String> {
    let (algorithm, hex) = d.split_once(':').unwrap_or((d, ""));
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm".into()),
    };
    if hex.len() != length {
        return Err("invalid checksum digest length".into());
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("invalid checksum digest format".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:2e863c44b718727c860746568e1d54afd13b2fa71b160f5cd9058fc436217b30";

    #[test]
    fn normalizes_like_docker() {
        let r = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert!(r.is_name_only());
        assert_eq!(
            r.clone().with_default_tag().to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.api_tag(), "latest");

        let r = Reference::parse_normalized("user/app:1.2").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str()),
            ("docker.io", "user/app")
        );
        assert_eq!(r.familiar_string(), "user/app:1.2");

        let r = Reference::parse_normalized("localhost:5000/team/app").unwrap();
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.to_string(), "localhost:5000/team/app");
        assert_eq!(r.familiar_name(), "localhost:5000/team/app");

        let r = Reference::parse_normalized("index.docker.io/library/debian:12").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/debian:12");
        assert_eq!(r.domain, DEFAULT_DOMAIN);

        let r = Reference::parse_normalized(&format!("ubuntu:24.04@{DIGEST}")).unwrap();
        assert_eq!(r.api_tag(), DIGEST);
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/ubuntu:24.04@{DIGEST}")
        );

        // A first component that is a host: a dot, a port, localhost or capitals.
        for (input, domain) in [
            ("registry.example.com/a", "registry.example.com"),
            ("localhost/a", "localhost"),
            ("host:5000/a", "host:5000"),
            ("[::1]:5000/a", "[::1]:5000"),
            ("Registry/a", "Registry"),
            ("myuser/a", "docker.io"),
        ] {
            assert_eq!(
                Reference::parse_normalized(input).unwrap().domain,
                domain,
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_like_docker() {
        let err = |s: &str| Reference::parse_normalized(s).unwrap_err();
        assert_eq!(
            err("Busybox"),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(err("a:b:c"), "invalid reference format");
        assert_eq!(err(""), "invalid reference format");
        assert_eq!(err("a..b"), "invalid reference format");
        assert_eq!(err("busybox@sha256:abc"), "invalid reference format");
        assert_eq!(
            err(&format!("busybox@sha256:{}", "a".repeat(40))),
            "invalid checksum digest length"
        );
        assert_eq!(
            err(&"a".repeat(64)),
            format!(
                "invalid repository name ({}), cannot specify 64-byte hexadecimal strings",
                "a".repeat(64)
            )
        );
        assert_eq!(
            err(&format!("x/{}", "a".repeat(260))),
            "repository name must not be more than 255 characters"
        );
        assert!(Reference::parse_normalized("a__b/c-d---e.f_g").is_ok());
        assert!(Reference::parse_normalized("a_.b").is_err());
        assert!(Reference::parse_normalized("-host.io/a").is_err());
    }
}
