//! `scopegate auth token` and `scopegate auth login`: the Docker token flow against any
//! registry, for scripts and CI.
//!
//! `auth token` prints a registry token for the asked scopes (exit 0 everything granted,
//! 3 less than asked with what is missing on stderr, 1 refused or failed, 2 usage).
//! `auth login` logs in as `docker login` does and stores the refresh token it gets (never
//! the password) in the docker config, where docker, skopeo and podman use it; with
//! `--oidc` it logs a person in at their identity provider instead (`sso_login`).

mod cache;
mod docker_config;
mod grant;
mod realm_host;
mod sso_login;
mod token_flow;

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;

use anyhow::{anyhow, Context as _, Result};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use docker_config::Stored;
use token_flow::{Client, Offer};

/// Exit code: a token, but with less than was asked.
const EXIT_PARTIAL: u8 = 3;
/// Exit code: bad arguments (clap uses it too).
const EXIT_USAGE: u8 = 2;
/// The user name sent with `--token-stdin` when `--username` is not given.
const TOKEN_USERNAME: &str = "token";

#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Print a registry token for the given scopes, from any registry's token server.
    ///
    /// Exit codes: 0 a token with everything asked, 3 a token with less (what is missing
    /// goes to stderr), 1 refused or failed, 2 usage.
    Token(TokenArgs),
    /// Log in as `docker login` does, storing a refresh token (never the password) in the
    /// docker config; or with --oidc, log in with single sign-on and let
    /// docker-credential-scopegate hand docker fresh ID tokens.
    Login(LoginArgs),
}

#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// The registry, HOST[:PORT] (as in image references).
    #[arg(long)]
    registry: String,
    /// Talk plain HTTP to the registry and its token server.
    #[arg(long)]
    insecure: bool,
    /// Send credentials to a token realm on a private, loopback, link-local or unspecified
    /// IP address other than the registry's own host and port (refused otherwise).
    #[arg(long)]
    allow_private_realm: bool,
}

#[derive(Debug, clap::Args)]
pub struct CredentialArgs {
    /// The account to log in as (with --password-stdin, or prompted for on a terminal).
    #[arg(long, short = 'u')]
    username: Option<String>,
    /// Read the password from stdin.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Read an API token or OIDC ID token from stdin (sent as the password).
    #[arg(long, conflicts_with = "password_stdin")]
    token_stdin: bool,
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    credentials: CredentialArgs,
    /// A scope to ask for, `repository:NAME:ACTION[,ACTION...]` (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Print JSON: the token, when it expires, and the granted `access` decoded.
    #[arg(long, conflicts_with = "header")]
    json: bool,
    /// Print `Authorization: Bearer TOKEN`.
    #[arg(long)]
    header: bool,
    /// Neither read nor write the token cache.
    #[arg(long)]
    no_cache: bool,
    /// Seconds a cached token is reused at most (and never later than 30 s before it
    /// expires).
    #[arg(long, default_value_t = 180)]
    cache_ttl: u64,
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    credentials: CredentialArgs,
    #[command(flatten)]
    sso: sso_login::SsoArgs,
}

/// Runs an `auth` subcommand; prints errors and picks the exit code.
pub fn run(command: AuthCommand) -> ExitCode {
    let result = match command {
        AuthCommand::Token(args) => token(&args),
        AuthCommand::Login(args) => login(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<Usage>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// An error in the arguments (exit 2).
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// A registry named on the command line.
struct Registry {
    /// `HOST[:PORT]` as given (the docker config key, the cache key).
    name: String,
    /// Where its API is (Docker Hub's is `registry-1.docker.io`).
    api_host: String,
}

impl Registry {
    fn parse(text: &str, is_insecure: bool) -> Result<Registry> {
        let name = if let Some(rest) = text.strip_prefix("https://") {
            rest
        } else if let Some(rest) = text.strip_prefix("http://") {
            if !is_insecure {
                return Err(usage(format!(
                    "--registry {text} is plain HTTP: add --insecure"
                )));
            }
            rest
        } else {
            text
        };
        let name = name.trim_end_matches('/');
        if name.is_empty()
            || name.contains('/')
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(usage(format!(
                "--registry {text:?} is not HOST[:PORT] (e.g. registry.example.com:5000)"
            )));
        }
        let api_host = if docker_config::is_docker_hub(name) {
            "registry-1.docker.io".to_string()
        } else {
            name.to_string()
        };
        Ok(Registry {
            name: name.to_string(),
            api_host,
        })
    }
}

/// What the token server is shown.
enum Credential {
    Anonymous,
    /// A password or an API/ID token as the Basic password. `is_named` says whether the
    /// user name was given (and so is sent as `account`).
    Basic {
        username: String,
        secret: String,
        is_named: bool,
    },
    /// A refresh token (docker's `identitytoken`).
    Refresh {
        username: String,
        token: String,
    },
}

impl std::fmt::Debug for Credential {
    /// Never shows the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username:?}, ..)"),
            Credential::Refresh { username, .. } => write!(f, "Refresh({username:?}, ..)"),
        }
    }
}

impl Credential {
    /// Identifies the credential in cache file names without the secret itself: two
    /// different tokens for one user never share a cached registry token.
    fn cache_identity(&self) -> String {
        let digest = |secret: &str| -> String {
            Sha256::digest(secret.as_bytes())
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect()
        };
        match self {
            Credential::Anonymous => "anonymous".to_string(),
            Credential::Basic {
                username, secret, ..
            } => format!("basic:{username}:{}", digest(secret)),
            Credential::Refresh { token, .. } => format!("refresh:{}", digest(token)),
        }
    }

    fn offer(&self) -> Offer<'_> {
        match self {
            Credential::Anonymous => Offer::Anonymous,
            Credential::Basic {
                username,
                secret,
                is_named,
            } => Offer::Basic {
                username,
                secret,
                is_named: *is_named,
            },
            Credential::Refresh { token, .. } => Offer::RefreshToken(token),
        }
    }
}

impl CredentialArgs {
    /// The credential given on the command line, or `None` when none was.
    fn explicit(&self) -> Result<Option<Credential>> {
        if self.token_stdin {
            let secret = read_stdin("the token")?;
            return Ok(Some(Credential::Basic {
                username: self
                    .username
                    .clone()
                    .unwrap_or_else(|| TOKEN_USERNAME.to_string()),
                secret,
                is_named: self.username.is_some(),
            }));
        }
        let Some(username) = &self.username else {
            return Ok(None);
        };
        let secret = if self.password_stdin {
            read_stdin("the password")?
        } else if std::io::stdin().is_terminal() {
            rpassword::prompt_password(format!("Password for {username}: "))
                .context("reading the password")?
        } else {
            return Err(usage(
                "--username needs --password-stdin (or a terminal to prompt on)",
            ));
        };
        if secret.is_empty() {
            return Err(usage("the password is empty"));
        }
        Ok(Some(Credential::Basic {
            username: username.clone(),
            secret,
            is_named: true,
        }))
    }

    /// The command-line credential, else the docker config's for `registry`, else
    /// anonymous.
    fn resolve(&self, registry: &Registry) -> Result<Credential> {
        if let Some(credential) = self.explicit()? {
            return Ok(credential);
        }
        let Some(path) = docker_config::config_path() else {
            return Ok(Credential::Anonymous);
        };
        Ok(match docker_config::lookup(&path, &registry.name)? {
            None => Credential::Anonymous,
            Some(Stored::Password { username, password }) => Credential::Basic {
                is_named: !username.is_empty(),
                username,
                secret: password,
            },
            Some(Stored::IdentityToken { username, token }) => {
                Credential::Refresh { username, token }
            }
        })
    }
}

/// All of stdin, without the final line break; empty is a usage error.
fn read_stdin(what: &str) -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .with_context(|| format!("reading {what} from stdin"))?;
    let text = text.trim_end_matches(['\r', '\n']).to_string();
    if text.is_empty() {
        return Err(usage(format!("{what} on stdin is empty")));
    }
    Ok(text)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A token in hand, fetched or cached.
struct Issued {
    token: String,
    expires_at: u64,
    realm: String,
    service: String,
    is_cached: bool,
}

fn token(args: &TokenArgs) -> Result<ExitCode> {
    let registry = Registry::parse(&args.registry.registry, args.registry.insecure)?;
    let scopes = scopegate_policy::parse_scopes(args.scopes.iter().map(String::as_str))
        .map_err(|error| usage(format!("--scope: {error}")))?;
    let canonical: Vec<String> = scopes.iter().map(ToString::to_string).collect();
    let credential = args.credentials.resolve(&registry)?;
    let now = unix_now();
    let cache_file = if args.no_cache {
        None
    } else {
        cache::private_directory().map(|dir| {
            cache::file_for(
                &dir,
                &registry.name,
                &credential.cache_identity(),
                &canonical,
            )
        })
    };
    let cached = cache_file
        .as_deref()
        .and_then(|file| cache::read(file, now, args.cache_ttl));
    let issued = match cached {
        Some(entry) => Issued {
            token: entry.token,
            expires_at: entry.expires_at,
            realm: entry.realm,
            service: entry.service,
            is_cached: true,
        },
        None => {
            let client = Client::new(args.registry.insecure, args.registry.allow_private_realm);
            let probes: Vec<String> = scopes
                .iter()
                .filter(|scope| scope.resource_type() == "repository")
                .map(|scope| format!("/v2/{}/tags/list", scope.name()))
                .take(1)
                .collect();
            let realm = client.discover(&registry.api_host, &probes)?;
            let answer = client
                .fetch(&realm, &credential.offer(), &canonical, false)
                .map_err(|error| stale_login(error, &credential, &registry))?;
            let expires_at = grant::claims(&answer.token)
                .and_then(|claims| claims.expires_at)
                .unwrap_or(now.saturating_add(answer.expires_in));
            if let Some(file) = &cache_file {
                let entry = cache::Entry {
                    v: 1,
                    token: answer.token.clone(),
                    fetched_at: now,
                    expires_at,
                    realm: realm.realm.clone(),
                    service: realm.service.clone(),
                };
                if entry.is_fresh(now, args.cache_ttl) {
                    if let Err(error) = cache::write(file, &entry) {
                        eprintln!("warning: token not cached: {error:#}");
                    }
                }
                if let Some(dir) = file.parent() {
                    cache::prune(dir, now);
                }
            }
            Issued {
                token: answer.token,
                expires_at,
                realm: realm.realm,
                service: realm.service,
                is_cached: false,
            }
        }
    };
    Ok(report(args, &registry, &scopes, &issued))
}

/// `error`, saying first that the stored login is no longer valid when the token server
/// refused the refresh token from the docker config (revoked, expired, or its user's
/// password changed): only logging in again helps.
fn stale_login(
    error: anyhow::Error,
    credential: &Credential,
    registry: &Registry,
) -> anyhow::Error {
    let is_refused = error
        .downcast_ref::<token_flow::Refused>()
        .is_some_and(|refused| matches!(refused.status, 400 | 401 | 403));
    if !is_refused || !matches!(credential, Credential::Refresh { .. }) {
        return error;
    }
    let name = &registry.name;
    error.context(format!(
        "the login stored for {name} in the docker config is no longer valid (its refresh \
         token was refused): run `scopegate auth login --registry {name}` (or \
         `docker login {name}`) again"
    ))
}

/// Prints the token as asked and picks the exit code from what it grants.
fn report(
    args: &TokenArgs,
    registry: &Registry,
    scopes: &[scopegate_policy::Scope],
    issued: &Issued,
) -> ExitCode {
    let access = grant::claims(&issued.token).and_then(|claims| claims.access);
    let missing = access.as_ref().map(|access| grant::missing(scopes, access));
    if args.json {
        let value = json!({
            "token": issued.token,
            "registry": registry.name,
            "realm": issued.realm,
            "service": issued.service,
            "expires_at": issued.expires_at,
            "cached": issued.is_cached,
            "access": access,
            "missing": missing,
        });
        println!("{value:#}");
    } else if args.header {
        println!("Authorization: Bearer {}", issued.token);
    } else {
        println!("{}", issued.token);
    }
    match missing {
        None => {
            eprintln!(
                "warning: the token is not a JWT with an `access` claim; cannot tell what it grants"
            );
            ExitCode::SUCCESS
        }
        Some(missing) if missing.is_empty() => ExitCode::SUCCESS,
        Some(missing) => {
            for scope in &missing {
                eprintln!("not granted: {scope}");
            }
            ExitCode::from(EXIT_PARTIAL)
        }
    }
}

fn login(args: &LoginArgs) -> Result<ExitCode> {
    let registry = Registry::parse(&args.registry.registry, args.registry.insecure)?;
    if let Some(issuer) = &args.sso.issuer {
        return sso_login::run(&registry, issuer, &args.sso);
    }
    let Some(credential) = args.credentials.explicit()? else {
        return Err(usage(
            "auth login needs --username with --password-stdin, or --token-stdin, or --oidc",
        ));
    };
    let Credential::Basic { username, .. } = &credential else {
        return Err(anyhow!("auth login needs a password or a token"));
    };
    let path = docker_config::config_path()
        .ok_or_else(|| anyhow!("neither DOCKER_CONFIG nor HOME is set: no docker config"))?;
    let client = Client::new(args.registry.insecure, args.registry.allow_private_realm);
    let realm = client.discover(&registry.api_host, &[])?;
    let answer = client.fetch(&realm, &credential.offer(), &[], true)?;
    let Some(refresh_token) = answer.refresh_token else {
        return Err(anyhow!(
            "the token server at {} issued no refresh token (offline_token=true); nothing \
             was stored, and scopegate never stores a password",
            realm.realm
        ));
    };
    let stored =
        docker_config::store_identity_token(&path, &registry.name, username, &refresh_token)?;
    match stored {
        docker_config::StoredIn::File(file) => {
            eprintln!("refresh token stored in {}", file.display());
        }
        docker_config::StoredIn::Helper(helper) => {
            eprintln!("refresh token stored with {helper}");
        }
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
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
    fn registry_names() {
        /// (--registry, --insecure, expected (name, API host) or a usage error)
        type Case<'a> = (&'a str, bool, Option<(&'a str, &'a str)>);
        let cases: &[Case] = &[
            (
                "r.example:5000",
                false,
                Some(("r.example:5000", "r.example:5000")),
            ),
            (
                "https://r.example/",
                false,
                Some(("r.example", "r.example")),
            ),
            (
                "http://127.0.0.1:5000",
                true,
                Some(("127.0.0.1:5000", "127.0.0.1:5000")),
            ),
            ("http://127.0.0.1:5000", false, None),
            (
                "docker.io",
                false,
                Some(("docker.io", "registry-1.docker.io")),
            ),
            ("r.example/team", false, None),
            ("", false, None),
            ("a b", false, None),
        ];
        for (text, is_insecure, expected) in cases {
            let parsed = Registry::parse(text, *is_insecure)
                .ok()
                .map(|r| (r.name, r.api_host));
            let expected = expected.map(|(n, a)| (n.to_string(), a.to_string()));
            assert_eq!(parsed, expected, "{text}");
        }
    }

    #[test]
    fn cache_identities_hide_secrets_and_tell_credentials_apart() {
        let basic = |secret: &str| Credential::Basic {
            username: "ci".into(),
            secret: secret.into(),
            is_named: true,
        };
        let a = basic("sgd_aaaa").cache_identity();
        assert!(!a.contains("sgd_aaaa"));
        assert_ne!(a, basic("sgd_bbbb").cache_identity());
        assert!(!format!("{:?}", basic("sgd_aaaa")).contains("sgd_aaaa"));
    }
}
