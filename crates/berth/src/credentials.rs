//! Registry credentials the way docker's CLI keeps them: the `auths` of
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), or the credential
//! helper that file names (`credsStore`, `credHelpers`), and the `X-Registry-Auth`
//! header built from them.
//!
//! The file is shared with docker: every key berth does not know is kept as it is,
//! the file is replaced atomically (temp file, fsync, rename) with mode 0600, and a
//! symlinked file is written through its link, as docker does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

/// Docker Hub's key in `auths` (docker's `registry.IndexServer`).
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// What a helper answers when it has nothing for a server.
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";
/// The user name a helper stores in place of an identity token.
const TOKEN_USERNAME: &str = "<token>";

static CONFIG_DIR: OnceLock<PathBuf> = OnceLock::new();

/// `--config`: the directory of `config.json`, for the rest of this process.
pub fn set_config_dir(dir: &str) {
    let _ = CONFIG_DIR.set(PathBuf::from(dir));
}

/// `--config`, then `DOCKER_CONFIG`, then `~/.docker`.
pub fn config_dir() -> PathBuf {
    if let Some(dir) = CONFIG_DIR.get() {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    home_dir().join(".docker")
}

fn home_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    // SAFETY: getpwuid returns null or a pointer to a static passwd record that
    // stays valid until the next getpw* call; we copy the directory out at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_dir.is_null() {
            let dir = std::ffi::CStr::from_ptr((*pw).pw_dir);
            return PathBuf::from(dir.to_string_lossy().into_owned());
        }
    }
    PathBuf::from("/")
}

/// One registry's credentials: docker's `AuthConfig`. Serialized (empty fields left
/// out, in docker's field order) it is the JSON inside `X-Registry-Auth` and the
/// body of `POST /auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuthConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(rename = "serveraddress", skip_serializing_if = "String::is_empty")]
    pub server_address: String,
    #[serde(rename = "identitytoken", skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
    #[serde(rename = "registrytoken", skip_serializing_if = "String::is_empty")]
    pub registry_token: String,
}

impl AuthConfig {
    /// The `X-Registry-Auth` value: URL-safe base64 (with padding) of the JSON, as
    /// docker's `registry.EncodeAuthConfig`; no credentials give `e30=` (`{}`).
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("an AuthConfig serializes");
        URL_SAFE.encode(&json)
    }

    /// Reads one `auths` entry as docker's `LoadFromReader`: `auth` (base64 of
    /// `user:password`) wins over plain fields, and the key is the server address.
    fn from_entry(key: &str, entry: &Value) -> Result<AuthConfig, String> {
        let field = |name: &str| entry[name].as_str().unwrap_or_default().to_string();
        let mut config = AuthConfig {
            username: field("username"),
            password: field("password"),
            auth: String::new(),
            email: field("email"),
            server_address: key.to_string(),
            identity_token: field("identitytoken"),
            registry_token: field("registrytoken"),
        };
        let auth = field("auth");
        if !auth.is_empty() {
            let decoded = base64_decode(&auth).ok_or("illegal base64 data in auth")?;
            let decoded = String::from_utf8_lossy(&decoded).into_owned();
            match decoded.split_once(':') {
                Some((user, password)) if !user.is_empty() => {
                    config.username = user.to_string();
                    config.password = password.trim_matches('\0').to_string();
                }
                _ => return Err("Invalid auth configuration file".into()),
            }
        }
        Ok(config)
    }

    /// The entry written to `auths`, as docker's `SaveToWriter`: the user name and
    /// password folded into `auth`, the server address left to the key.
    fn to_entry(&self) -> Value {
        let mut entry = Map::new();
        if !(self.username.is_empty() && self.password.is_empty()) {
            let plain = format!("{}:{}", self.username, self.password);
            entry.insert("auth".into(), STANDARD.encode(plain.as_bytes()).into());
        }
        for (name, value) in [
            ("email", &self.email),
            ("identitytoken", &self.identity_token),
            ("registrytoken", &self.registry_token),
        ] {
            if !value.is_empty() {
                entry.insert(name.into(), value.clone().into());
            }
        }
        Value::Object(entry)
    }
}

/// `credentials.ConvertToHostname`: the host (and port) of a registry address
/// given as a URL or as `host[:port][/path]`.
pub fn convert_to_hostname(address: &str) -> String {
    if let Some((_, rest)) = address.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        if !authority.is_empty() {
            return authority.to_string();
        }
    }
    address.split('/').next().unwrap_or(address).to_string()
}

/// The `auths` key `login` and `logout` use for a SERVER argument: docker's
/// `https://index.docker.io/v1/` for Docker Hub (no argument, `docker.io`, or any
/// spelling of Docker Hub's index), else the host and port alone.
pub fn server_key(server: Option<&str>) -> String {
    let server = server.unwrap_or_default();
    if server.is_empty() || server == INDEX_SERVER {
        return INDEX_SERVER.to_string();
    }
    let host = convert_to_hostname(server);
    if host == "docker.io" || host == "index.docker.io" {
        INDEX_SERVER.to_string()
    } else {
        host
    }
}

/// The `auths` key for an image's registry (docker's `getAuthConfigKey`).
pub fn key_for_domain(domain: &str) -> String {
    if domain == crate::reference::DEFAULT_DOMAIN || domain == "index.docker.io" {
        INDEX_SERVER.to_string()
    } else {
        domain.to_string()
    }
}

/// The client configuration file, kept whole so that saving it loses nothing.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    doc: Map<String, Value>,
    /// Why the file on disk could not be read, if it could not: reads go on with
    /// an empty file (as docker's do), writes refuse rather than clobber it.
    broken: Option<String>,
}

impl ConfigFile {
    /// Reads `config.json` from [`config_dir`]; a missing file is an empty one, and
    /// a file that does not parse is reported once on stderr, as docker does.
    pub fn load_default() -> ConfigFile {
        let config = ConfigFile::load(&config_dir().join("config.json"));
        if let Some(reason) = &config.broken {
            eprintln!("WARNING: Error {reason}");
        }
        config
    }

    /// Reads a configuration file; see [`ConfigFile::load_default`].
    pub fn load(path: &Path) -> ConfigFile {
        let mut config = ConfigFile {
            path: path.to_path_buf(),
            doc: Map::new(),
            broken: None,
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return config,
            Err(e) => {
                config.broken = Some(format!("loading config file: {}: {e}", path.display()));
                return config;
            }
        };
        let parsed = if bytes.trim_ascii().is_empty() {
            Ok(Map::new())
        } else {
            serde_json::from_slice::<Map<String, Value>>(&bytes).map_err(|e| e.to_string())
        };
        let checked = parsed.and_then(|doc| {
            if let Some(auths) = doc.get("auths").and_then(Value::as_object) {
                for (key, entry) in auths {
                    AuthConfig::from_entry(key, entry)?;
                }
            }
            Ok(doc)
        });
        match checked {
            Ok(doc) => config.doc = doc,
            Err(e) => {
                config.broken = Some(format!("parsing config file ({}): {e}", path.display()))
            }
        }
        config
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    /// The credential helper for a server: its own in `credHelpers`, else
    /// `credsStore`.
    fn helper_for(&self, key: &str) -> Option<String> {
        let own = self.doc.get("credHelpers").and_then(|h| h[key].as_str());
        own.or_else(|| self.doc.get("credsStore").and_then(Value::as_str))
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    }

    /// The credentials stored for `key` in the file (not a helper), with docker's
    /// fallback for older files whose keys are URLs (`https://host/v1/`).
    fn file_get(&self, key: &str) -> Option<AuthConfig> {
        let auths = self.auths()?;
        if let Some(entry) = auths.get(key) {
            return AuthConfig::from_entry(key, entry).ok();
        }
        auths
            .iter()
            .find(|(k, _)| convert_to_hostname(k) == key)
            .and_then(|(k, entry)| AuthConfig::from_entry(k, entry).ok())
    }

    /// The credentials for `key` (a key of `auths`): `DOCKER_AUTH_CONFIG` first, then
    /// the configured helper, then the file. `None` when there are none; an error
    /// when a helper fails.
    pub fn get(&self, key: &str) -> Result<Option<AuthConfig>, String> {
        if let Some(env) = std::env::var("DOCKER_AUTH_CONFIG")
            .ok()
            .filter(|v| !v.is_empty())
        {
            if let Ok(doc) = serde_json::from_str::<Map<String, Value>>(&env) {
                let env_config = ConfigFile {
                    path: PathBuf::new(),
                    doc,
                    broken: None,
                };
                if let Some(found) = env_config.file_get(key) {
                    return Ok(Some(found));
                }
            }
        }
        match self.helper_for(key) {
            Some(helper) => {
                let from_file = self.file_get(key);
                let Some(secret) = helper_get(&helper, key)? else {
                    return Ok(from_file);
                };
                let mut config = from_file.unwrap_or_default();
                config.server_address = key.to_string();
                if secret.0 == TOKEN_USERNAME {
                    config.identity_token = secret.1;
                } else {
                    config.username = secret.0;
                    config.password = secret.1;
                }
                Ok(Some(config))
            }
            None => Ok(self.file_get(key)),
        }
    }

    /// The `X-Registry-Auth` value for a registry key; `e30=` when nothing is stored
    /// (or the helper fails: docker then pulls anonymously too).
    pub fn registry_auth(&self, key: &str) -> String {
        self.get(key).ok().flatten().unwrap_or_default().encode()
    }

    /// Every credential stored, by `auths` key, as docker's `GetAllCredentials`: the
    /// keys of `auths` (and of `DOCKER_AUTH_CONFIG`) and those with their own
    /// helper in `credHelpers`; a key whose helper fails is left out. (docker also
    /// asks a `credsStore` helper to `list`; its keys are in `auths` as well when
    /// `docker login` stored them.)
    pub fn all_credentials(&self) -> std::collections::BTreeMap<String, AuthConfig> {
        let mut keys: Vec<String> = self
            .auths()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        if let Some(helpers) = self.doc.get("credHelpers").and_then(Value::as_object) {
            keys.extend(helpers.keys().cloned());
        }
        if let Some(env) = std::env::var("DOCKER_AUTH_CONFIG")
            .ok()
            .and_then(|v| serde_json::from_str::<Map<String, Value>>(&v).ok())
        {
            if let Some(auths) = env.get("auths").and_then(Value::as_object) {
                keys.extend(auths.keys().cloned());
            }
        }
        let mut all = std::collections::BTreeMap::new();
        for key in keys {
            if all.contains_key(&key) {
                continue;
            }
            if let Ok(Some(auth)) = self.get(&key) {
                all.insert(key, auth);
            }
        }
        all
    }

    /// The `X-Registry-Config` header of `POST /build`: URL-safe base64 of every
    /// stored credential by registry (`e30=`, `{}`, when there are none).
    pub fn registry_config(&self) -> String {
        let json = serde_json::to_vec(&self.all_credentials()).expect("credentials serialize");
        URL_SAFE.encode(&json)
    }

    /// Stores credentials under `auth.server_address` (through the helper when one
    /// is configured) and saves the file; nothing is written when they did not
    /// change. Returns whether a password (not a token) went into the file, the
    /// case docker warns about.
    pub fn store(&mut self, auth: &AuthConfig) -> Result<bool, String> {
        let key = auth.server_address.clone();
        let mut file_entry = auth.clone();
        let helper = self.helper_for(&key);
        if let Some(helper) = &helper {
            helper_store(helper, auth)?;
            file_entry = AuthConfig {
                email: auth.email.clone(),
                server_address: key.clone(),
                ..AuthConfig::default()
            };
        }
        if self.auths().and_then(|a| a.get(&key)).is_some()
            && self.file_get(&key).as_ref() == Some(&file_entry)
        {
            return Ok(false);
        }
        self.auths_mut().insert(key, file_entry.to_entry());
        self.save()?;
        Ok(helper.is_none() && !auth.password.is_empty())
    }

    /// Removes the credentials stored under `key` (from its helper too). Erasing
    /// what is not there succeeds, as docker's file store does.
    pub fn erase(&mut self, key: &str) -> Result<(), String> {
        if let Some(helper) = self.helper_for(key) {
            helper_erase(&helper, key)?;
        }
        if self.auths().is_some_and(|a| a.contains_key(key)) {
            self.auths_mut().shift_remove(key);
            self.save()?;
        }
        Ok(())
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        if !self.doc.get("auths").is_some_and(Value::is_object) {
            // docker always writes `auths` first; keep that order for a new file.
            let mut doc = Map::new();
            doc.insert("auths".into(), Value::Object(Map::new()));
            for (k, v) in std::mem::take(&mut self.doc) {
                if k != "auths" {
                    doc.insert(k, v);
                }
            }
            self.doc = doc;
        }
        self.doc
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .expect("auths was just made an object")
    }

    /// The file as docker writes it: indented with tabs, no final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        Serialize::serialize(&self.doc, &mut ser).expect("a JSON map serializes");
        out
    }

    /// Replaces the file atomically: a 0600 temp file beside it, fsync, rename
    /// (through a symlink to its target, as docker), fsync of the directory. The
    /// owner of the file it replaces is kept, so `sudo berth login` leaves the
    /// user's file theirs.
    pub fn save(&self) -> Result<(), String> {
        if let Some(reason) = &self.broken {
            return Err(format!(
                "refusing to overwrite {}, which could not be read ({reason})",
                self.path.display()
            ));
        }
        let target = resolve_symlink(&self.path);
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        create_dir_0700(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.json".into());
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = (|| -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&self.to_bytes())?;
            file.sync_all()?;
            if let Ok(meta) = std::fs::metadata(&target) {
                use std::os::unix::fs::MetadataExt;
                let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
            }
            drop(file);
            std::fs::rename(&temp, &target)?;
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(format!("{}: {e}", target.display()));
        }
        Ok(())
    }
}

fn create_dir_0700(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The file a path names once symlinks are followed, dangling ones included.
fn resolve_symlink(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&current) {
            Ok(link) => {
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                }
            }
            Err(_) => break,
        }
    }
    current
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin, as docker's
/// credential-helper client: the output, or the error worded as docker's.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<String, (String, String)> {
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let spawned = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err((
                format!("exec: \"{program}\": executable file not found in $PATH"),
                String::new(),
            ))
        }
        Err(e) => return Err((format!("exec: \"{program}\": {e}"), String::new())),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let output = child
        .wait_with_output()
        .map_err(|e| (e.to_string(), String::new()))?;
    let out = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if output.status.success() {
        Ok(out)
    } else {
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "signal: killed".to_string(),
        };
        Err((status, out))
    }
}

/// `get`: the user name and secret a helper holds for a server, if any.
fn helper_get(helper: &str, key: &str) -> Result<Option<(String, String)>, String> {
    match run_helper(helper, "get", key.as_bytes()) {
        Ok(out) => {
            let answer: Value = serde_json::from_str(&out)
                .map_err(|e| format!("error getting credentials - err: {e}, out: `{out}`"))?;
            Ok(Some((
                answer["Username"].as_str().unwrap_or_default().to_string(),
                answer["Secret"].as_str().unwrap_or_default().to_string(),
            )))
        }
        Err((_, out)) if out == HELPER_NOT_FOUND => Ok(None),
        Err((err, out)) => Err(format!(
            "error getting credentials - err: {err}, out: `{out}`"
        )),
    }
}

/// `store`: hands the secret (an identity token under the user `<token>`) to a
/// helper.
fn helper_store(helper: &str, auth: &AuthConfig) -> Result<(), String> {
    let (user, secret) = if auth.identity_token.is_empty() {
        (auth.username.as_str(), auth.password.as_str())
    } else {
        (TOKEN_USERNAME, auth.identity_token.as_str())
    };
    let input = serde_json::json!({
        "ServerURL": auth.server_address,
        "Username": user,
        "Secret": secret,
    });
    run_helper(helper, "store", input.to_string().as_bytes())
        .map(|_| ())
        .map_err(|(err, out)| format!("error storing credentials - err: {err}, out: `{out}`"))
}

fn helper_erase(helper: &str, key: &str) -> Result<(), String> {
    run_helper(helper, "erase", key.as_bytes())
        .map(|_| ())
        .map_err(|(err, out)| format!("error erasing credentials - err: {err}, out: `{out}`"))
}

/// Padded standard base64 (`auth` in config.json, Basic credentials).
const STANDARD: GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Padded URL-safe base64 (`X-Registry-Auth`, as the docker CLI sends it).
const URL_SAFE: GeneralPurpose = base64::engine::general_purpose::URL_SAFE;

/// Standard padded base64, as Go's `StdEncoding` reads it: line breaks ignored, and
/// the unused bits of the last digit not checked.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    LENIENT.decode(digits).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "berth-credentials-{name}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn user(server: &str, name: &str, password: &str) -> AuthConfig {
        AuthConfig {
            username: name.into(),
            password: password.into(),
            server_address: server.into(),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn base64_round_trips() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(STANDARD.encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(URL_SAFE.encode([0xfb, 0xff]), "-_8=");
        assert_eq!(STANDARD.encode([0xfb, 0xff]), "+/8=");
        assert!(base64_decode("Zg=").is_none());
        assert!(base64_decode("Zg==Zg==").is_none());
        assert!(base64_decode("Z!==").is_none());
    }

    #[test]
    fn registry_auth_header_like_docker() {
        assert_eq!(AuthConfig::default().encode(), "e30=");
        let auth = user(INDEX_SERVER, "me", "s3cret");
        let json = r#"{"username":"me","password":"s3cret","serveraddress":"https://index.docker.io/v1/"}"#;
        assert_eq!(auth.encode(), URL_SAFE.encode(json.as_bytes()));
        // URL-safe: `?` and `>` in a password give `_` and `-` where the standard
        // alphabet has `/` and `+`.
        let encoded = user("r", "u", "??>>").encode();
        assert!(!encoded.contains(['+', '/']), "{encoded}");
        let token = AuthConfig {
            identity_token: "tok".into(),
            server_address: "r.io".into(),
            ..AuthConfig::default()
        };
        assert_eq!(
            String::from_utf8(
                base64_decode(&token.encode().replace('-', "+").replace('_', "/")).unwrap()
            )
            .unwrap(),
            r#"{"serveraddress":"r.io","identitytoken":"tok"}"#
        );
    }

    #[test]
    fn build_registry_config_holds_every_credential() {
        let dir = TempDir::new("build-config");
        let path = dir.0.join("config.json");
        let empty = ConfigFile::load(&path);
        if std::env::var_os("DOCKER_AUTH_CONFIG").is_none() {
            assert_eq!(empty.registry_config(), "e30=");
        }
        std::fs::write(
            &path,
            r#"{"auths":{"r.io":{"auth":"dTpw"},"https://index.docker.io/v1/":{"auth":"bWU6cHc="}}}"#,
        )
        .unwrap();
        let config = ConfigFile::load(&path);
        let all = config.all_credentials();
        assert_eq!(all["r.io"], user("r.io", "u", "p"));
        assert_eq!(all[INDEX_SERVER], user(INDEX_SERVER, "me", "pw"));
        let decoded =
            base64_decode(&config.registry_config().replace('-', "+").replace('_', "/")).unwrap();
        let json: Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(json["r.io"]["username"], "u");
        assert_eq!(json["r.io"]["serveraddress"], "r.io");
        assert_eq!(json[INDEX_SERVER]["password"], "pw");
    }

    #[test]
    fn hostnames_and_keys_like_docker() {
        assert_eq!(
            convert_to_hostname("https://registry.example.com/v2/"),
            "registry.example.com"
        );
        assert_eq!(
            convert_to_hostname("http://localhost:5000"),
            "localhost:5000"
        );
        assert_eq!(convert_to_hostname("localhost:5000/foo/"), "localhost:5000");
        assert_eq!(convert_to_hostname("https://u:p@r.io:443/x"), "r.io:443");
        assert_eq!(convert_to_hostname("r.io"), "r.io");
        assert_eq!(server_key(None), INDEX_SERVER);
        assert_eq!(server_key(Some("")), INDEX_SERVER);
        assert_eq!(server_key(Some("docker.io")), INDEX_SERVER);
        assert_eq!(server_key(Some("index.docker.io")), INDEX_SERVER);
        assert_eq!(server_key(Some(INDEX_SERVER)), INDEX_SERVER);
        assert_eq!(
            server_key(Some("https://localhost:5000/")),
            "localhost:5000"
        );
        assert_eq!(server_key(Some("http://r.example.com")), "r.example.com");
        assert_eq!(server_key(Some("r.example.com/")), "r.example.com");
        assert_eq!(key_for_domain("docker.io"), INDEX_SERVER);
        assert_eq!(key_for_domain("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn config_round_trip_keeps_other_keys() {
        let dir = TempDir::new("roundtrip");
        let path = dir.0.join("config.json");
        std::fs::write(
            &path,
            r#"{"psFormat": "table {{.ID}}", "auths": {"old.io": {"auth": "YTpi", "email": "e@x"}},
                "plugins": {"x": {"y": "z"}}, "somethingNew": [1, 2]}"#,
        )
        .unwrap();
        let mut config = ConfigFile::load(&path);
        assert!(config.broken.is_none());
        let old = config.get("old.io").unwrap().unwrap();
        assert_eq!((old.username.as_str(), old.password.as_str()), ("a", "b"));
        assert_eq!(old.email, "e@x");

        assert!(config
            .store(&user("localhost:5000", "me", "pw:with:colons"))
            .unwrap());
        // The same credentials again: nothing to write.
        assert!(!config
            .store(&user("localhost:5000", "me", "pw:with:colons"))
            .unwrap());

        let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(written["psFormat"], "table {{.ID}}");
        assert_eq!(written["plugins"]["x"]["y"], "z");
        assert_eq!(written["somethingNew"], serde_json::json!([1, 2]));
        assert_eq!(written["auths"]["old.io"]["email"], "e@x");
        assert_eq!(
            written["auths"]["localhost:5000"],
            serde_json::json!({"auth": STANDARD.encode(b"me:pw:with:colons")})
        );
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        assert!(text.starts_with("{\n\t\"psFormat\""), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let reread = ConfigFile::load(&path);
        let back = reread.get("localhost:5000").unwrap().unwrap();
        assert_eq!(back, user("localhost:5000", "me", "pw:with:colons"));
        // An identity token is kept instead of the password.
        let mut config = reread;
        let token = AuthConfig {
            username: "me".into(),
            identity_token: "tok".into(),
            server_address: INDEX_SERVER.into(),
            ..AuthConfig::default()
        };
        assert!(!config.store(&token).unwrap());
        let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            written["auths"][INDEX_SERVER],
            serde_json::json!({"auth": "bWU6", "identitytoken": "tok"})
        );
        assert_eq!(config.get(INDEX_SERVER).unwrap().unwrap(), token);

        config.erase("localhost:5000").unwrap();
        config.erase("never.io").unwrap();
        let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(written["auths"].get("localhost:5000").is_none());
        assert_eq!(written["somethingNew"], serde_json::json!([1, 2]));
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn new_file_and_legacy_keys() {
        let dir = TempDir::new("new");
        let path = dir.0.join("sub").join("config.json");
        let mut config = ConfigFile::load(&path);
        assert_eq!(config.get(INDEX_SERVER).unwrap(), None);
        assert_eq!(config.registry_auth(INDEX_SERVER), "e30=");
        config.store(&user(INDEX_SERVER, "u", "p")).unwrap();
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\n\t\"auths\": {\n\t\t\"https://index.docker.io/v1/\": {\n\t\t\t\"auth\": \"dTpw\"\n\t\t}\n\t}\n}"
        );

        // Keys saved as URLs by old clients still answer for their host.
        std::fs::write(
            &path,
            r#"{"auths": {"https://r.io/v1/": {"auth": "dTpw"}}}"#,
        )
        .unwrap();
        let config = ConfigFile::load(&path);
        assert_eq!(config.get("r.io").unwrap().unwrap().username, "u");
    }

    #[test]
    fn broken_file_is_read_empty_and_never_overwritten() {
        let dir = TempDir::new("broken");
        let path = dir.0.join("config.json");
        std::fs::write(&path, "{not json").unwrap();
        let mut config = ConfigFile::load(&path);
        assert!(config
            .broken
            .as_deref()
            .unwrap()
            .starts_with("parsing config file ("));
        assert_eq!(config.get("r.io").unwrap(), None);
        assert!(config.store(&user("r.io", "u", "p")).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
        std::fs::write(&path, r#"{"auths": {"r.io": {"auth": "OnA="}}}"#).unwrap();
        let config = ConfigFile::load(&path);
        assert!(config
            .broken
            .as_deref()
            .unwrap()
            .ends_with("Invalid auth configuration file"));
    }
}
