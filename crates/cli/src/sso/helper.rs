//! `docker-credential-scopegate`: the docker credential-helper protocol over the single
//! sign-on logins, as docker, podman, skopeo and buildah call it for a registry whose
//! `credHelpers` entry is `scopegate`.
//!
//! One action as the only argument, its input on stdin, its answer on stdout:
//! - `get` (stdin: the server URL or host) answers
//!   `{"ServerURL":..,"Username":"oidc","Secret":<ID token>}`, refreshing the ID token
//!   first when it expires within [`REFRESH_MARGIN_SECS`];
//! - `erase` (stdin: the server URL) removes the login (`docker logout`) and revokes its
//!   refresh token at the provider when the provider has a revocation endpoint;
//! - `list` answers `{"HOST":"oidc",..}`;
//! - `store` (stdin: docker's JSON) is refused: these logins are made by
//!   `scopegate auth login --oidc`, never from a password `docker login` was given;
//! - `version`.
//!
//! A failure exits 1 with a one-line message on stdout, which is what docker's client
//! reads (and shows); an unknown registry answers exactly [`NOT_FOUND`], which docker
//! treats as "no credentials". Messages that ask the person to act go to stderr too,
//! which docker passes through to the terminal.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::{json, Value};

use super::store::{self, Login};
use super::token::{self, RefreshError};
use super::Http;

/// docker-credential-helpers' "not found" message: docker compares it exactly.
pub const NOT_FOUND: &str = "credentials not found in native keychain";
/// docker-credential-helpers' message for a request without a server URL.
pub const MISSING_SERVER_URL: &str = "no credentials server URL";
/// The user name handed to docker: scopegate takes the ID token as the password of any
/// user name.
pub const USERNAME: &str = "oidc";
/// An ID token that expires within this many seconds is refreshed before it is handed
/// out (registry tokens are asked for with it at once, and scopegate allows 60 s leeway).
pub const REFRESH_MARGIN_SECS: u64 = 60;
/// Longest input read from stdin.
const MAX_INPUT: u64 = 64 * 1024;

/// What the helper runs against: the logins' directory (`None`: no HOME), the time, and
/// the HTTP agent for refreshes.
pub struct Env<'a> {
    pub dir: Option<PathBuf>,
    pub now: u64,
    pub http: &'a Http,
}

/// A failed action: the line for stdout, and whether the person must act (then it goes
/// to stderr too).
struct Failure {
    message: String,
    is_for_the_person: bool,
}

impl Failure {
    fn quiet(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            is_for_the_person: false,
        }
    }

    fn loud(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            is_for_the_person: true,
        }
    }
}

/// Runs the helper with `args` (without the program name); the exit code (0 or 1).
pub fn run(
    args: &[String],
    env: &Env<'_>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let outcome = match args {
        [action] => act(action, env, stdin, stderr),
        _ => Err(Failure::quiet(
            "usage: docker-credential-scopegate <get|store|erase|list|version> (input on stdin)",
        )),
    };
    match outcome {
        Ok(answer) => {
            if !answer.is_empty() {
                let _ = writeln!(stdout, "{answer}");
            }
            0
        }
        Err(failure) => {
            let _ = writeln!(stdout, "{}", failure.message);
            if failure.is_for_the_person {
                let _ = writeln!(stderr, "docker-credential-scopegate: {}", failure.message);
            }
            1
        }
    }
}

fn act(
    action: &str,
    env: &Env<'_>,
    stdin: &mut dyn Read,
    stderr: &mut dyn Write,
) -> Result<String, Failure> {
    match action {
        "get" => get(env, &read_input(stdin)?),
        "erase" => erase(env, &read_input(stdin)?, stderr),
        // docker writes "unused" to `list`'s stdin; it is read, so the writer never
        // meets a closed pipe.
        "list" => read_input(stdin).and_then(|_| list(env)),
        "store" => store(&read_input(stdin)?),
        "version" => Ok(format!(
            "docker-credential-scopegate (scopegate) {}",
            env!("CARGO_PKG_VERSION")
        )),
        other => Err(Failure::quiet(format!(
            "unknown action {:?}: use get, store, erase, list or version",
            super::printable(other)
        ))),
    }
}

fn read_input(stdin: &mut dyn Read) -> Result<String, Failure> {
    let mut input = String::new();
    stdin
        .take(MAX_INPUT)
        .read_to_string(&mut input)
        .map_err(|error| Failure::quiet(format!("reading stdin: {error}")))?;
    Ok(input.trim().to_string())
}

/// The registry `server_url` names; errors as docker-credential-helpers words them.
fn registry(server_url: &str) -> Result<String, Failure> {
    if server_url.is_empty() {
        return Err(Failure::quiet(MISSING_SERVER_URL));
    }
    store::registry_of(server_url).ok_or_else(|| Failure::quiet(NOT_FOUND))
}

fn get(env: &Env<'_>, server_url: &str) -> Result<String, Failure> {
    let registry = registry(server_url)?;
    let Some(dir) = &env.dir else {
        return Err(Failure::quiet(NOT_FOUND));
    };
    let login = store::load(dir, &registry)
        .map_err(|error| Failure::loud(format!("{error:#}")))?
        .ok_or_else(|| Failure::quiet(NOT_FOUND))?;
    let login = fresh(env, dir, login)?;
    Ok(json!({
        "ServerURL": server_url,
        "Username": USERNAME,
        "Secret": login.id_token,
    })
    .to_string())
}

/// `login` with an ID token valid for more than [`REFRESH_MARGIN_SECS`]: as it is, or
/// refreshed (under the registry's lock, after reading the login again in case another
/// `get` refreshed it meanwhile) and saved with the rotated refresh token.
fn fresh(env: &Env<'_>, dir: &std::path::Path, login: Login) -> Result<Login, Failure> {
    let is_fresh =
        |login: &Login| env.now.saturating_add(REFRESH_MARGIN_SECS) < login.id_token_expires_at;
    if is_fresh(&login) {
        return Ok(login);
    }
    let failed = |error: anyhow::Error| Failure::loud(format!("{error:#}"));
    let _lock = store::lock(dir, &login.registry).map_err(failed)?;
    let mut login = store::load(dir, &login.registry)
        .map_err(failed)?
        .ok_or_else(|| Failure::quiet(NOT_FOUND))?;
    if is_fresh(&login) {
        return Ok(login);
    }
    let ended = |login: &Login, why: &str| {
        Failure::loud(format!(
            "the single sign-on login for {} has ended ({why}): run `{}` again",
            login.registry,
            login.login_command()
        ))
    };
    // The file is private, but a refresh token goes only where the login rule allows.
    scopegate_policy::check_key_url(&login.token_endpoint, &login.issuer)
        .map_err(|why| ended(&login, &format!("its token endpoint is not usable: {why}")))?;
    let Some(refresh_token) = login.refresh_token.clone() else {
        return Err(ended(
            &login,
            "its ID token expired and the identity provider gave no refresh token",
        ));
    };
    let tokens = match token::refresh(
        env.http,
        &login.token_endpoint,
        &login.client(),
        &refresh_token,
        &login.scopes,
    ) {
        Ok(tokens) => tokens,
        Err(RefreshError::Refused(why)) => {
            return Err(ended(
                &login,
                &format!("the identity provider refused its refresh token: {why}"),
            ))
        }
        Err(RefreshError::Failed(error)) => {
            return Err(Failure::loud(format!(
                "could not refresh the ID token for {} (the login is kept; try again): {error:#}",
                login.registry
            )))
        }
    };
    tokens
        .claims
        .check(&login.issuer, &login.client_id)
        .map_err(|error| {
            ended(
                &login,
                &format!("the refreshed ID token is not usable: {error:#}"),
            )
        })?;
    if tokens.claims.exp <= env.now {
        return Err(ended(&login, "the refreshed ID token has already expired"));
    }
    login.id_token = tokens.id_token;
    login.id_token_expires_at = tokens.claims.exp;
    login.person = tokens.claims.person;
    if let Some(rotated) = tokens.refresh_token {
        login.refresh_token = Some(rotated);
    }
    store::save(dir, &login).map_err(failed)?;
    Ok(login)
}

/// Removes the login, then revokes its refresh token at the provider when it has a
/// revocation endpoint (RFC 7009). A revocation that fails is reported on stderr; the
/// login is gone from this machine either way.
fn erase(env: &Env<'_>, server_url: &str, stderr: &mut dyn Write) -> Result<String, Failure> {
    let registry = registry(server_url)?;
    let Some(dir) = &env.dir else {
        return Err(Failure::quiet(NOT_FOUND));
    };
    // Under the refresh lock, so a `get` refreshing at the same time cannot save its
    // rotated refresh token after the login is gone: the token revoked is the current one.
    let _lock = match store::lock(dir, &registry) {
        Ok(lock) => lock,
        Err(_) if !dir.exists() => return Err(Failure::quiet(NOT_FOUND)),
        Err(error) => return Err(Failure::loud(format!("{error:#}"))),
    };
    let login = store::load(dir, &registry).unwrap_or(None);
    match store::remove(dir, &registry) {
        Ok(true) => {}
        Ok(false) => return Err(Failure::quiet(NOT_FOUND)),
        Err(error) => return Err(Failure::loud(format!("{error:#}"))),
    }
    let Some(login) = login else {
        return Ok(String::new());
    };
    if let (Some(endpoint), Some(refresh_token)) =
        (&login.revocation_endpoint, &login.refresh_token)
    {
        let revoked = scopegate_policy::check_key_url(endpoint, &login.issuer)
            .map_err(anyhow::Error::msg)
            .and_then(|()| {
                token::revoke(env.http, endpoint, &login.client(), refresh_token)
                    .map_err(|error| anyhow::anyhow!("{error}"))
            });
        if let Err(error) = revoked {
            let _ = writeln!(
                stderr,
                "docker-credential-scopegate: the login for {registry} is removed, but its \
                 refresh token could not be revoked at {endpoint}: {error:#}"
            );
        }
    }
    Ok(String::new())
}

fn list(env: &Env<'_>) -> Result<String, Failure> {
    let logins = match &env.dir {
        Some(dir) => store::list(dir).map_err(|error| Failure::loud(format!("{error:#}")))?,
        None => Vec::new(),
    };
    let map: serde_json::Map<String, Value> = logins
        .into_iter()
        .map(|login| (login.registry, Value::String(USERNAME.to_string())))
        .collect();
    Ok(Value::Object(map).to_string())
}

fn store(input: &str) -> Result<String, Failure> {
    let credentials: Value = serde_json::from_str(input)
        .map_err(|_| Failure::quiet("store: the input is not docker's credentials JSON"))?;
    let server_url = credentials["ServerURL"].as_str().unwrap_or_default();
    let Some(registry) = store::registry_of(server_url) else {
        return Err(Failure::quiet(MISSING_SERVER_URL));
    };
    Err(Failure::loud(format!(
        "{registry} logs in with single sign-on: run `scopegate auth login --registry \
         {registry} --oidc ISSUER --client-id ID` instead of `docker login`, or remove \
         credHelpers[\"{registry}\"] from the docker config to keep a password"
    )))
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

    /// Runs `args` with `input`; (exit code, stdout, stderr).
    fn helper(dir: Option<&std::path::Path>, args: &[&str], input: &str) -> (u8, String, String) {
        let http = Http::new();
        let env = Env {
            dir: dir.map(std::path::Path::to_path_buf),
            now: 1_000,
            http: &http,
        };
        let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, &env, &mut input.as_bytes(), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn login(registry: &str, expires_at: u64) -> Login {
        Login {
            v: 1,
            registry: registry.into(),
            issuer: "https://idp".into(),
            client_id: "cli".into(),
            client_secret: None,
            token_endpoint: "https://idp.invalid/token".into(),
            revocation_endpoint: None,
            scopes: vec!["openid".into()],
            is_browser: false,
            refresh_token: None,
            id_token: "h.p.s".into(),
            id_token_expires_at: expires_at,
            person: "mia".into(),
        }
    }

    #[test]
    fn the_protocol_as_docker_reads_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sso");
        store::save(&dir, &login("r.example:5000", 2_000)).unwrap();
        store::save(&dir, &login("expired.example", 1_030)).unwrap();
        let not_found = (1, format!("{NOT_FOUND}\n"), String::new());
        // (args, stdin, exit code, stdout, whether stderr has words)
        let cases: &[(&[&str], &str, u8, &str, bool)] = &[
            (&["get"], "r.example:5000\n", 0,
             "{\"Secret\":\"h.p.s\",\"ServerURL\":\"r.example:5000\",\"Username\":\"oidc\"}\n", false),
            (&["get"], "https://r.example:5000/v2/", 0,
             "{\"Secret\":\"h.p.s\",\"ServerURL\":\"https://r.example:5000/v2/\",\"Username\":\"oidc\"}\n", false),
            (&["get"], "other.example", not_found.0, &not_found.1, false),
            (&["get"], "", 1, "no credentials server URL\n", false),
            (&["list"], "", 0, "{\"expired.example\":\"oidc\",\"r.example:5000\":\"oidc\"}\n", false),
            (&["frobnicate"], "", 1, "unknown action \"frobnicate\": use get, store, erase, list or version\n", false),
            (&[], "", 1, "usage: docker-credential-scopegate <get|store|erase|list|version> (input on stdin)\n", false),
            (&["store"], "not json", 1, "store: the input is not docker's credentials JSON\n", false),
            (&["erase"], "other.example", not_found.0, &not_found.1, false),
        ];
        for (args, input, code, stdout, has_stderr) in cases {
            let (got_code, got_out, got_err) = helper(Some(&dir), args, input);
            assert_eq!(
                (got_code, got_out.as_str()),
                (*code, *stdout),
                "{args:?} {input:?}"
            );
            assert_eq!(
                !got_err.is_empty(),
                *has_stderr,
                "{args:?} {input:?}: {got_err}"
            );
        }

        // Without a refresh token, an ID token within a minute of its expiry ends the login.
        let (code, out, err) = helper(Some(&dir), &["get"], "expired.example");
        assert_eq!(code, 1);
        assert!(out.contains("scopegate auth login --registry expired.example --oidc https://idp --client-id cli"), "{out}");
        assert!(err.contains("has ended"), "{err}");

        // A login file whose token endpoint breaks the HTTPS rule never gets the refresh
        // token sent there.
        let mut tampered = login("tampered.example", 1_030);
        tampered.token_endpoint = "http://evil.example/token".into();
        tampered.refresh_token = Some("rt".into());
        store::save(&dir, &tampered).unwrap();
        let (code, out, _) = helper(Some(&dir), &["get"], "tampered.example");
        assert_eq!(code, 1);
        assert!(out.contains("token endpoint is not usable"), "{out}");

        let (code, out, err) = helper(
            Some(&dir),
            &["store"],
            r#"{"ServerURL":"r.example:5000","Username":"u","Secret":"p"}"#,
        );
        assert_eq!(code, 1);
        assert!(
            out.contains("scopegate auth login --registry r.example:5000"),
            "{out}"
        );
        assert!(!err.is_empty());

        assert_eq!(helper(Some(&dir), &["erase"], "r.example:5000\n").0, 0);
        assert_eq!(helper(Some(&dir), &["get"], "r.example:5000"), not_found);
        assert_eq!(helper(None, &["get"], "r.example:5000"), not_found);
        assert_eq!(
            helper(None, &["list"], ""),
            (0, "{}\n".to_string(), String::new())
        );
    }

    /// `erase` waits for a refresh in progress (which holds the lock and may save a rotated
    /// refresh token), so what it removes and revokes is the current login.
    #[test]
    fn erase_waits_for_the_refresh_lock() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sso");
        store::save(&dir, &login("r.example:5000", 2_000)).unwrap();
        let held = store::lock(&dir, "r.example:5000").unwrap();
        let erasing = {
            let dir = dir.clone();
            std::thread::spawn(move || helper(Some(&dir), &["erase"], "r.example:5000\n").0)
        };
        // A bound for the other thread to get stuck on the lock, not a measure.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            store::load(&dir, "r.example:5000").unwrap().is_some(),
            "erase went ahead while a refresh held the lock"
        );
        drop(held);
        assert_eq!(erasing.join().unwrap(), 0);
        assert!(store::load(&dir, "r.example:5000").unwrap().is_none());
        // The lock file stays for whoever waits on it.
        assert!(dir.join("r.example_3a5000.lock").exists());
    }
}
