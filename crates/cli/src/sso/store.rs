//! The single sign-on logins, one private file per registry:
//! `$XDG_CONFIG_HOME/scopegate/sso/HOST.json` (else `~/.config/scopegate/sso/`), mode 0600
//! in a directory of mode 0700. Each holds the provider's refresh token, the current ID
//! token and what is needed to refresh it.
//!
//! Security-sensitive: the refresh token is a long-lived credential. The directory is
//! created private, and one found already there is used only when it is the user's own
//! with no access for group or others (else an error, and the directory is left alone);
//! files are written atomically and read without following symlinks. Refreshes take an
//! exclusive lock (`HOST.lock`), so two `get`s at once do not both spend a refresh token
//! that the provider rotates.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::private_files::{
    check_private_dir, create_private_dir, read_no_follow, scopegate_directory, write_private,
};

/// The format version written.
const VERSION: u32 = 1;

/// One login.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Login {
    pub v: u32,
    /// The registry, `HOST[:PORT]`, as docker names it to the helper.
    pub registry: String,
    pub issuer: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub token_endpoint: String,
    /// The provider's RFC 7009 revocation endpoint, if it has one: `erase` revokes the
    /// refresh token there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    pub scopes: Vec<String>,
    /// Whether the login was made with `--browser` (for the message that says how to log
    /// in again).
    #[serde(default)]
    pub is_browser: bool,
    /// `None` when the provider gave none: the login ends with the ID token.
    pub refresh_token: Option<String>,
    pub id_token: String,
    /// The ID token's `exp`.
    pub id_token_expires_at: u64,
    /// How the person is named in messages (`preferred_username`, `email` or `sub`).
    pub person: String,
}

impl std::fmt::Debug for Login {
    /// Never shows the tokens or the client secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("registry", &self.registry)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("person", &self.person)
            .field("id_token_expires_at", &self.id_token_expires_at)
            .finish_non_exhaustive()
    }
}

impl Login {
    pub fn client(&self) -> super::Client {
        super::Client {
            id: self.client_id.clone(),
            secret: self.client_secret.clone(),
        }
    }

    /// The command that makes this login anew.
    pub fn login_command(&self) -> String {
        let mut command = format!(
            "scopegate auth login --registry {} --oidc {} --client-id {}",
            self.registry, self.issuer, self.client_id
        );
        if self.is_browser {
            command.push_str(" --browser");
        }
        command
    }
}

/// The logins' directory: `$XDG_CONFIG_HOME/scopegate/sso`, else
/// `$HOME/.config/scopegate/sso`; `None` when neither variable is set.
pub fn directory() -> Option<PathBuf> {
    scopegate_directory("XDG_CONFIG_HOME", ".config", "sso")
}

/// [`directory`], or an error saying that neither variable is set.
pub fn required_directory() -> Result<PathBuf> {
    directory().ok_or_else(|| {
        anyhow!("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the login")
    })
}

/// The registry a credential helper's server URL names, lowercase: `HOST`, `HOST:PORT`,
/// `https://HOST`, `http://HOST:PORT/v2/` and the like. `None` when there is no host in it.
pub fn registry_of(server_url: &str) -> Option<String> {
    let text = server_url.trim();
    let text = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(text);
    let host = text.split('/').next().unwrap_or_default();
    let is_valid = host
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '[')
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    is_valid.then(|| host.to_ascii_lowercase())
}

/// The file name for `registry`: letters, digits, `.` and `-` as they are, anything else
/// (`:` before a port) as `_XX` in hex, so no name can climb out of the directory.
fn file_stem(registry: &str) -> String {
    registry
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'-' {
                (byte as char).to_string()
            } else {
                format!("_{byte:02x}")
            }
        })
        .collect()
}

fn file_for(dir: &Path, registry: &str) -> PathBuf {
    dir.join(format!("{}.json", file_stem(registry)))
}

/// Writes `login` (replacing any for its registry); the file written.
pub fn save(dir: &Path, login: &Login) -> Result<PathBuf> {
    prepare(dir)?;
    let file = file_for(dir, &login.registry);
    let text = serde_json::to_vec_pretty(login).context("encoding the login")?;
    write_private(&file, &text)?;
    Ok(file)
}

/// Makes sure the logins' directory exists and is private: checked before it is created
/// and again after, so a directory put in its place meanwhile is not used either.
pub fn prepare(dir: &Path) -> Result<()> {
    check_private_dir(dir).context("refusing to keep the login there")?;
    create_private_dir(dir)?;
    check_private_dir(dir).context("refusing to keep the login there")
}

/// The login for `registry`, `None` when there is none. A directory that is not private,
/// or a file that is not a login of this version, is an error.
pub fn load(dir: &Path, registry: &str) -> Result<Option<Login>> {
    check_private_dir(dir).context("refusing to read the login")?;
    let file = file_for(dir, registry);
    let text = match read_no_follow(&file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {}", file.display())),
    };
    let login: Login = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a scopegate login", file.display()))?;
    if login.v != VERSION {
        bail!(
            "{} is a login of format {}, not {VERSION}",
            file.display(),
            login.v
        );
    }
    Ok(Some(login))
}

/// Removes the login for `registry`; whether there was one. Its lock file stays: another
/// process may be waiting on it, and a new file of the same name would not be the same
/// lock.
pub fn remove(dir: &Path, registry: &str) -> Result<bool> {
    check_private_dir(dir).context("refusing to change the logins")?;
    let file = file_for(dir, registry);
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error).with_context(|| format!("removing {}", file.display())),
    }
}

/// Every login in `dir` (none when it does not exist); files that are not logins are
/// skipped.
pub fn list(dir: &Path) -> Result<Vec<Login>> {
    check_private_dir(dir).context("refusing to read the logins")?;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", dir.display())),
    };
    let mut logins: Vec<Login> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter_map(|path| read_no_follow(&path).ok())
        .filter_map(|text| serde_json::from_slice::<Login>(&text).ok())
        .filter(|login| login.v == VERSION)
        .collect();
    logins.sort_by(|a, b| a.registry.cmp(&b.registry));
    Ok(logins)
}

/// Holds the refresh lock of one registry until dropped.
pub struct RefreshLock {
    _file: std::fs::File,
}

/// Waits for the exclusive refresh lock of `registry`'s login.
pub fn lock(dir: &Path, registry: &str) -> Result<RefreshLock> {
    let path = dir.join(format!("{}.lock", file_stem(registry)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    #[cfg(unix)]
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(RefreshLock { _file: file })
}

/// A new login of this version.
#[allow(
    clippy::too_many_arguments,
    reason = "one field each, named at the call"
)]
pub fn new_login(
    registry: &str,
    issuer: &str,
    client: &super::Client,
    token_endpoint: &str,
    scopes: &[String],
    is_browser: bool,
    tokens: &super::token::Tokens,
) -> Login {
    Login {
        v: VERSION,
        registry: registry.to_ascii_lowercase(),
        issuer: issuer.to_string(),
        client_id: client.id.clone(),
        client_secret: client.secret.clone(),
        token_endpoint: token_endpoint.to_string(),
        revocation_endpoint: None,
        scopes: scopes.to_vec(),
        is_browser,
        refresh_token: tokens.refresh_token.clone(),
        id_token: tokens.id_token.clone(),
        id_token_expires_at: tokens.claims.exp,
        person: tokens.claims.person.clone(),
    }
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

    #[test]
    fn server_urls_name_registries() {
        let cases: &[(&str, Option<&str>)] = &[
            ("registry.example.com", Some("registry.example.com")),
            (
                "registry.example.com:5000\n",
                Some("registry.example.com:5000"),
            ),
            ("https://Registry.Example.com", Some("registry.example.com")),
            ("http://127.0.0.1:5000/v2/", Some("127.0.0.1:5000")),
            ("https://index.docker.io/v1/", Some("index.docker.io")),
            ("", None),
            ("https://", None),
            ("a b", None),
            ("../../etc", None),
        ];
        for (url, expected) in cases {
            assert_eq!(registry_of(url).as_deref(), *expected, "{url:?}");
        }
    }

    proptest::proptest! {
        /// Whatever docker sends as the server URL, the login file it names is a plain
        /// name inside the logins' directory.
        #[test]
        fn any_server_url_names_a_file_in_the_directory(url in "\\PC{0,80}") {
            if let Some(registry) = registry_of(&url) {
                let stem = file_stem(&registry);
                proptest::prop_assert!(
                    stem.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
                    "{stem}"
                );
                let dir = Path::new("/logins");
                let file = file_for(dir, &registry);
                proptest::prop_assert_eq!(file.parent(), Some(dir));
            }
        }
    }

    #[test]
    fn file_names_stay_in_the_directory() {
        assert_eq!(file_stem("r.example:5000"), "r.example_3a5000");
        assert_eq!(file_stem("../x"), ".._2fx");
        assert_ne!(file_stem("a:1"), file_stem("a_1"));
    }

    fn login(registry: &str) -> Login {
        Login {
            v: VERSION,
            registry: registry.into(),
            issuer: "https://idp".into(),
            client_id: "cli".into(),
            client_secret: None,
            token_endpoint: "https://idp/token".into(),
            revocation_endpoint: None,
            scopes: vec!["openid".into()],
            is_browser: false,
            refresh_token: Some("rt-secret".into()),
            id_token: "a.b.c".into(),
            id_token_expires_at: 10,
            person: "mia".into(),
        }
    }

    #[cfg(unix)]
    #[test]
    fn logins_are_private_files_in_a_private_directory() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("scopegate/sso");
        let file = save(&dir, &login("r:1")).unwrap();
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(load(&dir, "r:1").unwrap(), Some(login("r:1")));
        assert_eq!(load(&dir, "other").unwrap(), None);
        save(&dir, &login("a")).unwrap();
        let registries: Vec<String> = list(&dir)
            .unwrap()
            .into_iter()
            .map(|l| l.registry)
            .collect();
        assert_eq!(registries, ["a", "r:1"]);
        assert!(remove(&dir, "r:1").unwrap());
        assert!(!remove(&dir, "r:1").unwrap());
        assert!(!format!("{:?}", login("a")).contains("rt-secret"));

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        for error in [
            load(&dir, "a").unwrap_err(),
            save(&dir, &login("a")).unwrap_err(),
            list(&dir).unwrap_err(),
        ] {
            assert!(format!("{error:#}").contains("has mode 750"), "{error:#}");
        }
    }
}
