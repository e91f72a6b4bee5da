//! The authorization code flow with PKCE (RFC 7636, method S256) on a loopback redirect
//! (RFC 8252 section 7.3): the CLI listens on `http://127.0.0.1:PORT/callback`, sends the
//! person's browser to the provider, and takes the code from the redirect back, after
//! checking that its `state` is the one it sent.
//!
//! Security-sensitive: the listener is bound to 127.0.0.1 only, reads at most a small
//! request head, and answers any request whose `state` differs with an error and no code
//! exchange.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use super::http::PostError;
use super::token::{self, Tokens};
use super::{Client, Http};

/// The redirect's path.
pub const CALLBACK_PATH: &str = "/callback";
/// Longest request head read from the browser.
const MAX_HEAD: usize = 8 * 1024;

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier of 256 random bits (43 base64url characters).
    pub fn generate() -> Pkce {
        Pkce::from_verifier(random_text())
    }

    fn from_verifier(verifier: String) -> Pkce {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// 256 random bits as base64url: states and verifiers.
pub fn random_text() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The loopback listener the provider redirects the browser to.
pub struct Loopback {
    listener: TcpListener,
    pub redirect_uri: String,
}

impl Loopback {
    /// Listens on 127.0.0.1:`port` (0: any free port).
    pub fn bind(port: u16) -> Result<Loopback> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("listening on 127.0.0.1:{port} for the redirect"))?;
        let port = listener.local_addr()?.port();
        Ok(Loopback {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
        })
    }

    /// Waits up to `timeout` for the redirect to [`CALLBACK_PATH`] and returns its `code`
    /// once its `state` is `state`. Other paths get a 404 and are waited past; a redirect
    /// with a wrong state, an `error`, or no code ends the login with an error.
    pub fn wait_for_code(&self, state: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        self.listener.set_nonblocking(true)?;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Some(outcome) = answer(stream, state) {
                        return outcome;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        bail!(
                            "no redirect came back to {} within {} s",
                            self.redirect_uri,
                            timeout.as_secs()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(error) => return Err(error).context("accepting the redirect"),
            }
        }
    }
}

/// Reads one request from the browser and answers it; `None` when it was not the
/// redirect (keep waiting).
fn answer(mut stream: TcpStream, state: &str) -> Option<Result<String>> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while head.len() < MAX_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("GET "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        respond(&mut stream, "404 Not Found", "Not the login redirect.");
        return None;
    }
    let field = |name: &str| -> Option<String> {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let outcome = if field("state").as_deref() != Some(state) {
        Err(anyhow!(
            "the redirect's `state` is not the one sent: refused (another page may have \
             tried to log you in)"
        ))
    } else if let Some(error) = field("error") {
        let description = field("error_description").unwrap_or_default();
        Err(anyhow!(
            "the identity provider refused the login: {} {}",
            super::printable(&error),
            super::printable(&description)
        ))
    } else {
        field("code")
            .filter(|code| !code.is_empty())
            .ok_or_else(|| anyhow!("the redirect holds no `code`"))
    };
    match &outcome {
        Ok(_) => respond(
            &mut stream,
            "200 OK",
            "Logged in. You can close this tab and go back to the terminal.",
        ),
        Err(error) => respond(&mut stream, "400 Bad Request", &format!("{error}")),
    }
    Some(outcome)
}

fn respond(stream: &mut TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!doctype html><title>scopegate</title><p>{}</p>\n",
        escape(text)
    );
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The URL to send the browser to.
pub fn authorization_url(
    endpoint: &str,
    client: &Client,
    redirect_uri: &str,
    scopes: &[String],
    state: &str,
    pkce: &Pkce,
    is_offline_param: bool,
) -> Result<String> {
    let mut url = url::Url::parse(endpoint)
        .with_context(|| format!("the authorization endpoint {endpoint:?}"))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", state)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        if is_offline_param {
            // Google's way to ask for a refresh token, where `offline_access` is unknown.
            query.append_pair("access_type", "offline");
        }
    }
    Ok(url.into())
}

/// Exchanges the `code` (with the PKCE verifier) for tokens.
pub fn exchange(
    http: &Http,
    token_endpoint: &str,
    client: &Client,
    code: &str,
    redirect_uri: &str,
    pkce: &Pkce,
) -> Result<Tokens> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.to_string()),
        ("redirect_uri", redirect_uri.to_string()),
        ("code_verifier", pkce.verifier.clone()),
    ];
    form.extend(client.form_fields());
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = http
        .post_form(token_endpoint, &form)
        .map_err(|error| match error {
            PostError::OAuth { .. } => anyhow!("the provider refused the code: {error}"),
            PostError::Other(error) => error,
        })?;
    token::parse(&answer).map_err(|error| error.context(format!("the answer of {token_endpoint}")))
}

/// Starts the person's browser on `url` with `xdg-open` (or `open` on macOS), when there
/// is one; whether one was started. The URL is printed in any case by the caller.
pub fn open_browser(url: &str) -> bool {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
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
    fn the_s256_challenge_of_rfc_7636_appendix_b() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let fresh = Pkce::generate();
        assert_eq!(fresh.verifier.len(), 43);
        assert_ne!(fresh.verifier, Pkce::generate().verifier);
    }

    /// Sends `target` to the loopback listener from a thread and waits for the outcome.
    fn redirect(targets: &[&str], state: &str) -> (Result<String>, Vec<String>) {
        let loopback = Loopback::bind(0).unwrap();
        let port = loopback.redirect_uri.split(':').nth(2).unwrap();
        let port: u16 = port.split('/').next().unwrap().parse().unwrap();
        let targets: Vec<String> = targets.iter().map(|t| (*t).to_string()).collect();
        let browser = std::thread::spawn(move || {
            let mut answers = Vec::new();
            for target in targets {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                write!(stream, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                answers.push(answer.lines().next().unwrap_or_default().to_string());
            }
            answers
        });
        let outcome = loopback.wait_for_code(state, Duration::from_secs(30));
        (outcome, browser.join().unwrap())
    }

    #[test]
    fn the_redirect_gives_the_code_only_with_the_right_state() {
        let (code, answers) = redirect(&["/favicon.ico", "/callback?code=c1&state=s1"], "s1");
        assert_eq!(code.unwrap(), "c1");
        assert!(answers[0].contains("404"), "{answers:?}");
        assert!(answers[1].contains("200"), "{answers:?}");
        for (target, words) in [
            ("/callback?code=c1&state=other", "state"),
            ("/callback?code=c1", "state"),
            ("/callback?error=access_denied&state=s1", "access_denied"),
            ("/callback?state=s1", "no `code`"),
        ] {
            let (outcome, answers) = redirect(&[target], "s1");
            let error = outcome.unwrap_err().to_string();
            assert!(error.contains(words), "{target}: {error}");
            assert!(answers[0].contains("400"), "{target}: {answers:?}");
        }
    }

    #[test]
    fn the_authorization_url_carries_the_challenge_and_state() {
        let client = Client {
            id: "scopegate-cli".into(),
            secret: None,
        };
        let pkce = Pkce::from_verifier("v".into());
        let url = authorization_url(
            "https://idp.example/auth?realm=x",
            &client,
            "http://127.0.0.1:5000/callback",
            &["openid".into(), "offline_access".into()],
            "st",
            &pkce,
            false,
        )
        .unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        for (key, value) in [
            ("realm", "x"),
            ("response_type", "code"),
            ("client_id", "scopegate-cli"),
            ("redirect_uri", "http://127.0.0.1:5000/callback"),
            ("scope", "openid offline_access"),
            ("state", "st"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ] {
            assert!(
                pairs.contains(&(key.to_string(), value.to_string())),
                "{key} in {url}"
            );
        }
        assert!(!url.contains("access_type"));
    }
}
