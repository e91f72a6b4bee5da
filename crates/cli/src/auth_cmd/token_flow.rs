//! The Docker token flow over HTTP: ask the registry for its challenge, then ask the
//! realm it names for a token, as docker does (a GET with Basic credentials, or a POST
//! `grant_type=refresh_token` once it holds a refresh token).

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use scopegate_cli::challenge::{self, Challenge};
use serde_json::Value;

/// Sent as `client_id` to token servers.
pub const CLIENT_ID: &str = "scopegate";
/// Seconds a token is assumed to live when the answer does not say (docker's default).
const DEFAULT_EXPIRES_IN: u64 = 60;

/// Where a registry gets its tokens: its Bearer challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm {
    pub realm: String,
    /// `service`, empty when the challenge has none (then it is not sent).
    pub service: String,
}

/// How the token server is asked.
pub enum Offer<'a> {
    Anonymous,
    /// GET with `Authorization: Basic`, and `account=USER` when the name was given.
    Basic {
        username: &'a str,
        secret: &'a str,
        is_named: bool,
    },
    /// POST `grant_type=refresh_token`.
    RefreshToken(&'a str),
}

/// The token server's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
}

/// The token server answered an error status: what it said, cut short and stripped of
/// control characters.
#[derive(Debug)]
pub struct Refused {
    url: String,
    pub status: u16,
    /// `: message`, or empty.
    message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.status {
            401 | 403 => "refused the credentials",
            _ => "refused the request",
        };
        write!(
            f,
            "the token server at {} {what} ({}){}",
            self.url, self.status, self.message
        )
    }
}

impl std::error::Error for Refused {}

pub struct Client {
    agent: ureq::Agent,
    /// Whether plain HTTP is allowed (`--insecure`).
    is_insecure: bool,
    /// Whether a realm on a private address is trusted (`--allow-private-realm`).
    is_private_realm_allowed: bool,
}

impl Client {
    pub fn new(is_insecure: bool, is_private_realm_allowed: bool) -> Client {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .user_agent(concat!("scopegate/", env!("CARGO_PKG_VERSION")))
                .build(),
            is_insecure,
            is_private_realm_allowed,
        }
    }

    /// `https://HOST/path`, or `http://` with `--insecure`.
    pub fn registry_url(&self, api_host: &str, path: &str) -> String {
        let scheme = if self.is_insecure { "http" } else { "https" };
        format!("{scheme}://{api_host}{path}")
    }

    /// The registry's Bearer challenge: from `GET /v2/`, or when that is open, from the
    /// repository endpoint `probe` (`/v2/NAME/tags/list`). A registry asking for Basic
    /// only, or for nothing, is an error saying so, and so is a realm on a private address
    /// (see `realm_host`).
    pub fn discover(&self, api_host: &str, probes: &[String]) -> Result<Realm> {
        let mut last_open = String::new();
        for path in std::iter::once("/v2/".to_string()).chain(probes.iter().cloned()) {
            let url = self.registry_url(api_host, &path);
            let response = match self.agent.get(&url).call() {
                Ok(response) => {
                    last_open = url;
                    drop(response);
                    continue;
                }
                Err(ureq::Error::Status(401, response)) => response,
                Err(ureq::Error::Status(status, _)) => {
                    bail!("GET {url}: the registry answered {status}, not 401 with a challenge")
                }
                Err(error) => return Err(transport(&url, error, self.is_insecure)),
            };
            let lines = response.all("www-authenticate");
            let challenges = challenge::parse_lines(lines.iter().copied()).map_err(|error| {
                anyhow!("GET {url}: the registry's WWW-Authenticate header is malformed: {error}")
            })?;
            let realm = realm_of(&challenges, &url, self.is_insecure)?;
            super::realm_host::check(&realm.realm, &url, self.is_private_realm_allowed)?;
            return Ok(realm);
        }
        bail!("{last_open} answers without authentication: the registry needs no token")
    }

    /// Asks the realm for a token for `scopes` (canonical scope strings).
    /// `login` adds `offline_token=true` (and asks for no scope), as `docker login` does.
    pub fn fetch(
        &self,
        realm: &Realm,
        offer: &Offer<'_>,
        scopes: &[String],
        is_login: bool,
    ) -> Result<Answer> {
        let url = &realm.realm;
        let result = match offer {
            Offer::RefreshToken(refresh_token) => {
                let joined = scopes.join(" ");
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", *refresh_token),
                    ("client_id", CLIENT_ID),
                ];
                if !realm.service.is_empty() {
                    form.push(("service", &realm.service));
                }
                if !joined.is_empty() {
                    form.push(("scope", &joined));
                }
                self.agent.post(url).send_form(&form)
            }
            Offer::Anonymous | Offer::Basic { .. } => {
                let mut request = self.agent.get(url);
                if !realm.service.is_empty() {
                    request = request.query("service", &realm.service);
                }
                for scope in scopes {
                    request = request.query("scope", scope);
                }
                if is_login {
                    request = request
                        .query("offline_token", "true")
                        .query("client_id", CLIENT_ID);
                }
                if let Offer::Basic {
                    username,
                    secret,
                    is_named,
                } = offer
                {
                    use base64::Engine as _;
                    let basic = base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{secret}"));
                    if *is_named {
                        request = request.query("account", username);
                    }
                    request = request.set("Authorization", &format!("Basic {basic}"));
                }
                request.call()
            }
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                return Err(anyhow::Error::new(Refused {
                    url: url.clone(),
                    status,
                    message: server_message(response),
                }))
            }
            Err(error) => return Err(transport(url, error, self.is_insecure)),
        };
        let text = response
            .into_string()
            .with_context(|| format!("reading the token server's answer from {url}"))?;
        let body: Value = serde_json::from_str(&text)
            .with_context(|| format!("the token server at {url} answered no JSON"))?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| anyhow!("the token server at {url} answered without a token"))?;
        check_token_text(token).map_err(|reason| {
            anyhow!("the token server at {url} answered a token that {reason}; refused")
        })?;
        let refresh_token = body["refresh_token"]
            .as_str()
            .filter(|token| !token.is_empty());
        if let Some(refresh_token) = refresh_token {
            check_token_text(refresh_token).map_err(|reason| {
                anyhow!("the token server at {url} answered a refresh token that {reason}; refused")
            })?;
        }
        Ok(Answer {
            token: token.to_string(),
            expires_in: body["expires_in"]
                .as_u64()
                .filter(|seconds| *seconds > 0)
                .unwrap_or(DEFAULT_EXPIRES_IN),
            refresh_token: refresh_token.map(str::to_string),
        })
    }
}

/// Whether `token` may be printed, cached or stored: a JWS (three dot-separated parts) only
/// of the base64url alphabet and `.`; any other (opaque) token only of printable ASCII
/// without spaces, the characters an HTTP `Bearer` credential may hold.
///
/// Security-sensitive: the token comes from whatever realm the registry names and is
/// printed to terminals and into `Authorization:` lines; a control character could drive
/// the terminal or add a header. The reason given never quotes the token.
pub fn check_token_text(token: &str) -> Result<(), &'static str> {
    let is_jws = token.split('.').count() == 3;
    if is_jws {
        let is_base64url = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if !token.chars().all(is_base64url) {
            return Err("looks like a JWS but holds characters outside the base64url alphabet");
        }
    } else if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err("holds control characters, spaces or non-ASCII characters");
    }
    Ok(())
}

/// The Bearer challenge among `challenges`, checked: its realm is an absolute URL, HTTPS
/// unless `--insecure` (credentials are sent there).
fn realm_of(challenges: &[Challenge], url: &str, is_insecure: bool) -> Result<Realm> {
    let Some(bearer) = challenges.iter().find(|c| c.is_scheme("bearer")) else {
        let schemes: Vec<&str> = challenges.iter().map(Challenge::scheme).collect();
        if challenges.iter().any(|c| c.is_scheme("basic")) {
            bail!(
                "GET {url}: the registry asks for HTTP Basic authentication and does no \
                 token auth; send the username and password with each request instead \
                 (e.g. `curl -u USER`)"
            );
        }
        bail!(
            "GET {url}: the registry asks for {}, not for a Bearer token: it does no \
             Docker token auth",
            schemes.join(", ")
        );
    };
    let realm = bearer
        .param("realm")
        .filter(|realm| !realm.is_empty())
        .ok_or_else(|| anyhow!("GET {url}: the Bearer challenge names no realm"))?;
    let is_https = realm.starts_with("https://");
    if !is_https && !realm.starts_with("http://") {
        bail!("GET {url}: the realm {realm:?} is not an http(s) URL");
    }
    if !is_https && !is_insecure {
        bail!(
            "the registry's token realm {realm} is plain HTTP; credentials would travel \
             unencrypted. Pass --insecure to allow it"
        );
    }
    Ok(Realm {
        realm: realm.to_string(),
        service: bearer.param("service").unwrap_or_default().to_string(),
    })
}

/// `: message` from a distribution (`errors[0].message`), OAuth2 (`error_description` or
/// `error`) or plain-text error body; empty when there is none. Cut short: it is the
/// server's text, shown to the user.
fn server_message(response: ureq::Response) -> String {
    let text = response.into_string().unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| {
            body["errors"][0]["message"]
                .as_str()
                .or_else(|| body["error_description"].as_str())
                .or_else(|| body["error"].as_str())
                .map(str::to_string)
        })
        .unwrap_or(text);
    let message: String = message
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// `URL: what went wrong`, naming the URL once (ureq's own text names it too).
fn transport(url: &str, error: ureq::Error, is_insecure: bool) -> anyhow::Error {
    let hint = if is_insecure {
        ""
    } else {
        " (a plain-HTTP registry needs --insecure)"
    };
    let what = match &error {
        ureq::Error::Transport(transport) => crate::transport_error::describe(transport),
        ureq::Error::Status(status, _) => format!("status {status}"),
    };
    anyhow!("{url}: {what}{hint}")
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

    fn realm(header: &str, is_insecure: bool) -> Result<Realm> {
        realm_of(
            &challenge::parse(header).unwrap(),
            "https://r/v2/",
            is_insecure,
        )
    }

    #[test]
    fn tokens_are_refused_unless_printable_without_harm() {
        let cases = [
            ("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_", true),
            ("sgr_0123456789abcdef", true),
            ("opaque+/=~token", true),
            ("eyJh.eyJz.sig\u{1b}[2J", false),
            ("eyJh.eyJz.sig\r\nX-Injected: yes", false),
            ("eyJh.eyJz.si+g", false),
            ("opaque\r\nX-Injected: yes", false),
            ("opaque\u{1b}]0;title\u{7}", false),
            ("two words", false),
            ("tab\there", false),
            ("caf\u{e9}", false),
            ("csi\u{9b}31m", false),
        ];
        for (token, is_accepted) in cases {
            assert_eq!(check_token_text(token).is_ok(), is_accepted, "{token:?}");
        }
    }

    #[test]
    fn picks_the_bearer_challenge_and_checks_its_realm() {
        let found = realm(
            r#"Basic realm="x", Bearer realm="https://auth.example/token",service="reg""#,
            false,
        )
        .unwrap();
        assert_eq!(found.realm, "https://auth.example/token");
        assert_eq!(found.service, "reg");
        assert_eq!(
            realm(r#"Bearer realm="https://a/t""#, false)
                .unwrap()
                .service,
            ""
        );
        let cases = [
            (r#"Basic realm="Registry Realm""#, "does no token auth"),
            ("Negotiate", "Negotiate, not for a Bearer token"),
            (r#"Bearer service="s""#, "names no realm"),
            (r#"Bearer realm="/token""#, "not an http(s) URL"),
            (r#"Bearer realm="http://a/token""#, "--insecure"),
        ];
        for (header, message) in cases {
            let error = realm(header, false).unwrap_err().to_string();
            assert!(error.contains(message), "{header}: {error}");
        }
        assert!(realm(r#"Bearer realm="http://a/token""#, true).is_ok());
    }
}
