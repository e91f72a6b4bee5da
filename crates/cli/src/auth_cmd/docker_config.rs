//! The user's docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`),
//! read and written the way the docker CLI does: `credHelpers[host]` first, then
//! `credsStore`, then the file's own `auths[host]` with `auth` (base64 `user:password`)
//! and `identitytoken` (a refresh token). Credential helpers are the
//! `docker-credential-NAME` programs on PATH, spoken to over stdin and stdout.
//!
//! Security-sensitive: the file and the helpers hold secrets. Nothing here logs or prints
//! them; the file is rewritten with mode 0600.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// The key docker files Docker Hub credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// The user name a credential helper returns for an identity token.
const IDENTITY_TOKEN_USER: &str = "<token>";

/// A credential found in the docker config for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Stored {
    /// `auth`: a user name and password (or API token).
    Password { username: String, password: String },
    /// `identitytoken`: a refresh token, with the user name `auth` carries (may be empty).
    IdentityToken { username: String, token: String },
}

impl std::fmt::Debug for Stored {
    /// Never shows the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stored::Password { username, .. } => write!(f, "Password({username:?}, ..)"),
            Stored::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username:?}, ..)")
            }
        }
    }
}

/// The docker config file: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`;
/// `None` when neither variable is set.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".docker").join("config.json"))
}

/// The key docker uses for `registry` (`HOST[:PORT]`) in `auths` and for helpers.
pub fn config_key(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Whether `registry` names Docker Hub, whose API lives at `registry-1.docker.io`.
pub fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// The credential the docker config holds for `registry`, or `None` (go anonymous).
/// A config that exists but is not JSON, or a helper that fails other than with "not
/// found", is an error: silently going anonymous would hide it.
pub fn lookup(path: &Path, registry: &str) -> Result<Option<Stored>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let config: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let key = config_key(registry);
    if let Some(helper) = helper_for(&config, &key) {
        if let Some(stored) = helper_get(&helper, &key)? {
            return Ok(Some(stored));
        }
    }
    let Some(entry) = auth_entry(&config, registry, &key) else {
        return Ok(None);
    };
    from_entry(entry).with_context(|| format!("auths[{key:?}] in {}", path.display()))
}

/// The helper docker would ask for `key`: `credHelpers[key]`, else `credsStore`.
fn helper_for(config: &Value, key: &str) -> Option<String> {
    config["credHelpers"][key]
        .as_str()
        .or_else(|| config["credsStore"].as_str())
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

/// `auths[key]`, else the entry whose key names the same host once a scheme and path are
/// dropped (docker accepts `https://HOST/v1/` and the like).
fn auth_entry<'a>(config: &'a Value, registry: &str, key: &str) -> Option<&'a Value> {
    let auths = config["auths"].as_object()?;
    if let Some(entry) = auths.get(key) {
        return Some(entry);
    }
    auths
        .iter()
        .find(|(candidate, _)| {
            let host = candidate
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            let host = host.split('/').next().unwrap_or_default();
            host == registry || (is_docker_hub(registry) && is_docker_hub(host))
        })
        .map(|(_, entry)| entry)
}

fn from_entry(entry: &Value) -> Result<Option<Stored>> {
    let (username, password) = match entry["auth"].as_str().filter(|a| !a.is_empty()) {
        Some(auth) => {
            let decoded = STANDARD
                .decode(auth.trim())
                .context("`auth` is not base64")?;
            let decoded = String::from_utf8(decoded).context("`auth` is not UTF-8")?;
            let (username, password) = decoded
                .split_once(':')
                .context("`auth` is not USER:PASSWORD")?;
            (username.to_string(), password.to_string())
        }
        None => (String::new(), String::new()),
    };
    if let Some(token) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
        return Ok(Some(Stored::IdentityToken {
            username,
            token: token.to_string(),
        }));
    }
    if username.is_empty() && password.is_empty() {
        return Ok(None);
    }
    Ok(Some(Stored::Password { username, password }))
}

/// `docker-credential-HELPER get` for `key`; `None` when the helper knows no credential.
fn helper_get(helper: &str, key: &str) -> Result<Option<Stored>> {
    let program = format!("docker-credential-{helper}");
    let output = run_helper(&program, "get", key)?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stdout).trim().to_string();
        // docker-credential-helpers' ErrCredentialsNotFound text.
        if message.contains("credentials not found") {
            return Ok(None);
        }
        bail!("{program} get failed ({}): {message}", output.status);
    }
    let answer: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("{program} get answered no JSON"))?;
    let username = answer["Username"].as_str().unwrap_or_default().to_string();
    let secret = answer["Secret"].as_str().unwrap_or_default().to_string();
    if secret.is_empty() {
        return Ok(None);
    }
    if username == IDENTITY_TOKEN_USER {
        return Ok(Some(Stored::IdentityToken {
            username: String::new(),
            token: secret,
        }));
    }
    Ok(Some(Stored::Password {
        username,
        password: secret,
    }))
}

fn run_helper(program: &str, action: &str, input: &str) -> Result<std::process::Output> {
    let mut child = Command::new(program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting the docker credential helper {program}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("writing to {program}"))?;
    }
    child
        .wait_with_output()
        .with_context(|| format!("waiting for {program}"))
}

/// Where [`store_identity_token`] put the token.
#[derive(Debug, PartialEq, Eq)]
pub enum StoredIn {
    File(PathBuf),
    Helper(String),
}

/// Stores a refresh token for `registry` as docker does after a login that returned one:
/// through the helper docker would use, else as `auths[key] = {"auth":
/// base64("USER:"), "identitytoken": TOKEN}` in the file (the `USER:` with its colon is
/// what containers/image needs to use the entry). Any password stored for that key is
/// dropped. The rest of the file is kept; it is written anew with mode 0600.
pub fn store_identity_token(
    path: &Path,
    registry: &str,
    username: &str,
    token: &str,
) -> Result<StoredIn> {
    let mut config = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str::<Value>(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let key = config_key(registry);
    if let Some(helper) = helper_for(&config, &key) {
        let program = format!("docker-credential-{helper}");
        let input = json!({"ServerURL": key, "Username": IDENTITY_TOKEN_USER, "Secret": token});
        let output = run_helper(&program, "store", &input.to_string())?;
        if !output.status.success() {
            bail!(
                "{program} store failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim()
            );
        }
        return Ok(StoredIn::Helper(program));
    }
    let Some(root) = config.as_object_mut() else {
        bail!("{} does not hold a JSON object", path.display());
    };
    let auths = root
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(auths) = auths.as_object_mut() else {
        bail!("`auths` in {} is not an object", path.display());
    };
    auths.insert(
        key,
        json!({
            "auth": STANDARD.encode(format!("{username}:")),
            "identitytoken": token,
        }),
    );
    let text = serde_json::to_string_pretty(&config).context("encoding the docker config")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::private_files::write_private(path, text.as_bytes())?;
    Ok(StoredIn::File(path.to_path_buf()))
}

/// Sets `credHelpers[key] = helper` in the JSON file at `path` (docker's config, or
/// containers' `auth.json`, which share that field), keeping every other field. A file
/// that is not there is created (its directory too); the file is written anew with mode
/// 0600. Returns the helper that was there before, if another.
pub fn set_cred_helper(path: &Path, key: &str, helper: &str) -> Result<Option<String>> {
    let mut config = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str::<Value>(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let Some(root) = config.as_object_mut() else {
        bail!("{} does not hold a JSON object", path.display());
    };
    let helpers = root
        .entry("credHelpers")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(helpers) = helpers.as_object_mut() else {
        bail!("`credHelpers` in {} is not an object", path.display());
    };
    let previous = helpers
        .insert(key.to_string(), Value::String(helper.to_string()))
        .and_then(|old| old.as_str().map(str::to_string))
        .filter(|old| old != helper);
    let text = serde_json::to_string_pretty(&config).context("encoding the config")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::private_files::write_private(path, text.as_bytes())?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests: a panic is how a test fails"
    )]

    use super::*;

    fn entry_of(config: &str, registry: &str) -> Option<Stored> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, config).unwrap();
        lookup(&path, registry).unwrap()
    }

    #[test]
    fn reads_entries_as_docker_does() {
        let alice = STANDARD.encode("alice:s3cret:with:colons");
        let token_only = STANDARD.encode("bob:");
        let cases: &[(String, &str, Option<Stored>)] = &[
            (
                format!(r#"{{"auths":{{"r.example:5000":{{"auth":"{alice}"}}}}}}"#),
                "r.example:5000",
                Some(Stored::Password {
                    username: "alice".into(),
                    password: "s3cret:with:colons".into(),
                }),
            ),
            (
                format!(
                    r#"{{"auths":{{"https://r.example/v2/":{{"auth":"{token_only}","identitytoken":"sgr_x"}}}}}}"#
                ),
                "r.example",
                Some(Stored::IdentityToken {
                    username: "bob".into(),
                    token: "sgr_x".into(),
                }),
            ),
            (
                format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{alice}"}}}}}}"#),
                "docker.io",
                Some(Stored::Password {
                    username: "alice".into(),
                    password: "s3cret:with:colons".into(),
                }),
            ),
            (
                format!(r#"{{"auths":{{"other:5000":{{"auth":"{alice}"}}}}}}"#),
                "r.example:5000",
                None,
            ),
            (r#"{"auths":{"r.example":{}}}"#.into(), "r.example", None),
            ("{}".into(), "r.example", None),
        ];
        for (config, registry, expected) in cases {
            assert_eq!(&entry_of(config, registry), expected, "{config}");
        }
    }

    #[test]
    fn a_missing_file_is_anonymous_and_a_broken_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(lookup(&dir.path().join("none.json"), "r").unwrap(), None);
        let broken = dir.path().join("config.json");
        std::fs::write(&broken, "{not json").unwrap();
        assert!(lookup(&broken, "r").is_err());
    }

    #[test]
    fn storing_keeps_the_rest_and_drops_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let old = STANDARD.encode("alice:password");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"r:1":{{"auth":"{old}"}},"other":{{"auth":"eDp5"}}}},"psFormat":"x"}}"#),
        )
        .unwrap();
        let stored = store_identity_token(&path, "r:1", "alice", "sgr_new").unwrap();
        assert_eq!(stored, StoredIn::File(path.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&old), "{text}");
        let config: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(config["auths"]["r:1"]["auth"], STANDARD.encode("alice:"));
        assert_eq!(config["auths"]["r:1"]["identitytoken"], "sgr_new");
        assert_eq!(config["auths"]["other"]["auth"], "eDp5");
        assert_eq!(config["psFormat"], "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            lookup(&path, "r:1").unwrap(),
            Some(Stored::IdentityToken {
                username: "alice".into(),
                token: "sgr_new".into()
            })
        );
    }

    #[test]
    fn setting_a_helper_keeps_every_other_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"r:1":{"auth":"eDp5"}},"credHelpers":{"gcr.io":"gcloud","r:1":"old"},"psFormat":"x","proxies":{"default":{"httpProxy":"p"}}}"#,
        )
        .unwrap();
        assert_eq!(
            set_cred_helper(&path, "r:1", "scopegate")
                .unwrap()
                .as_deref(),
            Some("old")
        );
        let config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            config,
            json!({
                "auths": {"r:1": {"auth": "eDp5"}},
                "credHelpers": {"gcr.io": "gcloud", "r:1": "scopegate"},
                "psFormat": "x",
                "proxies": {"default": {"httpProxy": "p"}},
            })
        );
        assert_eq!(set_cred_helper(&path, "r:1", "scopegate").unwrap(), None);
        let fresh = dir.path().join("new/auth.json");
        set_cred_helper(&fresh, "r:1", "scopegate").unwrap();
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(&fresh).unwrap()).unwrap();
        assert_eq!(config, json!({"credHelpers": {"r:1": "scopegate"}}));
        std::fs::write(&path, r#"{"credHelpers":[]}"#).unwrap();
        assert!(set_cred_helper(&path, "r:1", "scopegate").is_err());
    }
}
