//! The OAuth 2.0 device authorization grant (RFC 8628): the CLI asks for a user code, the
//! person enters it at the provider on any device (so it works over SSH), and the CLI
//! polls the token endpoint until the person has approved or denied it.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use super::http::PostError;
use super::token::{self, Tokens};
use super::{Client, Http};

/// `grant_type` of the polls.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Seconds between polls when the provider does not say (RFC 8628 section 3.2).
const DEFAULT_INTERVAL: u64 = 5;
/// What `slow_down` adds to the interval (RFC 8628 section 3.5).
const SLOW_DOWN_STEP: u64 = 5;

/// The device authorization response.
#[derive(Clone)]
pub struct Authorization {
    device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// Seconds the codes are valid.
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
}

/// Asks `endpoint` (the provider's `device_authorization_endpoint`) of `issuer` for a
/// user code.
pub fn start(
    http: &Http,
    issuer: &str,
    endpoint: &str,
    client: &Client,
    scopes: &[String],
) -> Result<Authorization> {
    let mut form = client.form_fields();
    form.push(("scope", scopes.join(" ")));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = http
        .post_form(endpoint, &form)
        .map_err(|error| anyhow!("the device authorization request to {endpoint}: {error}"))?;
    parse(&answer, issuer).map_err(|error| error.context(format!("the answer of {endpoint}")))
}

/// Whether a verification URI may be shown: the rule for the issuer's own endpoints
/// (`https://`, or plain `http://` to a loopback host only for a loopback issuer), applied
/// to the URI without its query (`verification_uri_complete` carries the code in one).
fn is_shown_uri_allowed(uri: &str, issuer: &str) -> bool {
    let without_query = uri.split(['?', '#']).next().unwrap_or_default();
    scopegate_policy::check_key_url(without_query, issuer).is_ok()
}

/// Reads a device authorization response. `verification_url` (Google's name) is accepted
/// for `verification_uri`. The URIs and the user code are shown to the person, so they
/// must be printable, and the URIs `https://` (or, for a loopback issuer, loopback
/// `http://`).
fn parse(answer: &Value, issuer: &str) -> Result<Authorization> {
    let text = |name: &str| -> Option<String> {
        answer[name]
            .as_str()
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    let device_code = text("device_code").ok_or_else(|| anyhow!("no `device_code`"))?;
    let user_code = text("user_code").ok_or_else(|| anyhow!("no `user_code`"))?;
    let verification_uri = text("verification_uri")
        .or_else(|| text("verification_url"))
        .ok_or_else(|| anyhow!("no `verification_uri`"))?;
    let verification_uri_complete = text("verification_uri_complete");
    for shown in [Some(&user_code), Some(&verification_uri)]
        .into_iter()
        .chain([verification_uri_complete.as_ref()])
        .flatten()
    {
        if shown.chars().any(char::is_control) || shown.len() > 2048 {
            bail!("a code or URI to show holds control characters or is too long");
        }
    }
    // The issuer's rule for its endpoints: https://, or plain http to a loopback host
    // only for a loopback issuer (a prefix test would let `http://127.0.0.1.evil.example`
    // through).
    for uri in std::iter::once(&verification_uri).chain(verification_uri_complete.as_ref()) {
        if !is_shown_uri_allowed(uri, issuer) {
            bail!("the verification URI {uri:?} is not https:// (or loopback http:// of a loopback issuer)");
        }
    }
    Ok(Authorization {
        device_code,
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_in: answer["expires_in"].as_u64().unwrap_or(600),
        interval: answer["interval"]
            .as_u64()
            .unwrap_or(DEFAULT_INTERVAL)
            .max(1),
    })
}

/// What one poll of the token endpoint said.
#[derive(Debug)]
pub enum Poll {
    Done(Tokens),
    Pending,
    SlowDown,
    Denied,
    Expired,
    Failed(anyhow::Error),
}

/// Polls the token endpoint once with the device code.
pub fn poll_once(
    http: &Http,
    token_endpoint: &str,
    client: &Client,
    authorization: &Authorization,
) -> Poll {
    let mut form = vec![
        ("grant_type", DEVICE_CODE_GRANT.to_string()),
        ("device_code", authorization.device_code.clone()),
    ];
    form.extend(client.form_fields());
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match http.post_form(token_endpoint, &form) {
        Ok(answer) => match token::parse(&answer) {
            Ok(tokens) => Poll::Done(tokens),
            Err(error) => Poll::Failed(error.context(format!("the answer of {token_endpoint}"))),
        },
        Err(PostError::OAuth { error, .. }) if error == "authorization_pending" => Poll::Pending,
        Err(PostError::OAuth { error, .. }) if error == "slow_down" => Poll::SlowDown,
        Err(PostError::OAuth { error, .. }) if error == "access_denied" => Poll::Denied,
        Err(PostError::OAuth { error, .. }) if error == "expired_token" => Poll::Expired,
        Err(error) => Poll::Failed(anyhow!("{token_endpoint}: {error}")),
    }
}

/// Polls with `poll` every `interval` seconds (waiting with `sleep` before each poll),
/// 5 s more after each `slow_down`, until the person approves (the tokens), denies, or
/// the codes expire (errors saying which). Time is counted in what `sleep` was asked to
/// wait, so a test passes a `sleep` that does not.
pub fn wait_for_approval(
    authorization: &Authorization,
    mut poll: impl FnMut() -> Poll,
    mut sleep: impl FnMut(Duration),
) -> Result<Tokens> {
    let mut interval = authorization.interval;
    let mut waited: u64 = 0;
    loop {
        if waited.saturating_add(interval) > authorization.expires_in {
            bail!(
                "the code {} expired before it was approved: log in again",
                authorization.user_code
            );
        }
        sleep(Duration::from_secs(interval));
        waited = waited.saturating_add(interval);
        match poll() {
            Poll::Done(tokens) => return Ok(tokens),
            Poll::Pending => {}
            Poll::SlowDown => interval = interval.saturating_add(SLOW_DOWN_STEP),
            Poll::Denied => bail!("the login was denied at the identity provider"),
            Poll::Expired => bail!(
                "the code {} expired before it was approved: log in again",
                authorization.user_code
            ),
            Poll::Failed(error) => return Err(error.context("polling the token endpoint")),
        }
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
    use base64::Engine as _;
    use serde_json::json;

    fn authorization(expires_in: u64, interval: u64) -> Authorization {
        Authorization {
            device_code: "dc".into(),
            user_code: "ABCD-EFGH".into(),
            verification_uri: "https://idp/device".into(),
            verification_uri_complete: None,
            expires_in,
            interval,
        }
    }

    fn tokens() -> Tokens {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"iss": "i", "sub": "s", "aud": "c", "exp": 9}).to_string());
        token::parse(&json!({"id_token": format!("e30.{payload}.c2ln")})).unwrap()
    }

    /// Polls answering `answers` in turn; the waits asked for, and the outcome.
    fn run(authorization: &Authorization, answers: Vec<&str>) -> (Vec<u64>, Result<Tokens>) {
        let mut answers = answers.into_iter();
        let mut waits = Vec::new();
        let outcome = wait_for_approval(
            authorization,
            || match answers.next() {
                Some("pending") => Poll::Pending,
                Some("slow_down") => Poll::SlowDown,
                Some("denied") => Poll::Denied,
                Some("expired") => Poll::Expired,
                Some("done") => Poll::Done(tokens()),
                other => Poll::Failed(anyhow!("unexpected poll: {other:?}")),
            },
            |wait| waits.push(wait.as_secs()),
        );
        (waits, outcome)
    }

    #[test]
    fn polling_honours_the_interval_and_slow_down() {
        /// (seconds the codes live, answers, waits before each poll, Ok or the error's words)
        type Case<'a> = (u64, &'a [&'a str], &'a [u64], Result<(), &'a str>);
        let cases: &[Case] = &[
            (600, &["done"], &[2], Ok(())),
            (600, &["pending", "pending", "done"], &[2, 2, 2], Ok(())),
            (
                600,
                &["slow_down", "pending", "slow_down", "done"],
                &[2, 7, 7, 12],
                Ok(()),
            ),
            (600, &["pending", "denied"], &[2, 2], Err("denied")),
            (600, &["expired"], &[2], Err("expired")),
            (600, &["pending", "broken"], &[2, 2], Err("unexpected poll")),
            // 10 s of validity at 2 s a poll: five polls, then expired without a sixth.
            (10, &["pending"; 6], &[2, 2, 2, 2, 2], Err("expired")),
            (
                10,
                &["slow_down", "pending", "done"],
                &[2, 7],
                Err("expired"),
            ),
        ];
        for (expires_in, answers, expected_waits, expected) in cases {
            let (waits, outcome) = run(&authorization(*expires_in, 2), answers.to_vec());
            assert_eq!(&waits, expected_waits, "{answers:?}");
            match (outcome, expected) {
                (Ok(_), Ok(())) => {}
                (Err(error), Err(words)) => {
                    assert!(
                        format!("{error:#}").contains(words),
                        "{answers:?}: {error:#}"
                    );
                }
                (outcome, expected) => panic!("{answers:?}: {:?} vs {expected:?}", outcome.err()),
            }
        }
    }

    #[test]
    fn device_authorization_responses() {
        let good = json!({
            "device_code": "dc", "user_code": "WDJB-MJHT",
            "verification_uri": "https://idp.example/device",
            "verification_uri_complete": "https://idp.example/device?user_code=WDJB-MJHT",
            "expires_in": 1800, "interval": 0,
        });
        let issuer = "https://idp.example";
        let parsed = parse(&good, issuer).unwrap();
        assert_eq!((parsed.expires_in, parsed.interval), (1800, 1));
        let google = json!({
            "device_code": "dc", "user_code": "GQVQ-JKEC",
            "verification_url": "https://www.google.com/device",
        });
        let parsed = parse(&google, issuer).unwrap();
        assert_eq!(parsed.verification_uri, "https://www.google.com/device");
        assert_eq!(parsed.interval, DEFAULT_INTERVAL);
        for (key, value) in [
            ("user_code", json!("AB\u{1b}[2J")),
            ("verification_uri", json!("http://evil.example/device")),
            (
                "verification_uri",
                json!("http://127.0.0.1.evil.example/device"),
            ),
            (
                "verification_uri",
                json!("http://localhost.evil.example/device"),
            ),
            // Loopback http only for a loopback issuer.
            ("verification_uri", json!("http://127.0.0.1:8080/device")),
            ("verification_uri_complete", json!("javascript:alert(1)")),
            ("device_code", Value::Null),
        ] {
            let mut bad = good.clone();
            bad[key] = value;
            assert!(parse(&bad, issuer).is_err(), "{key} {}", bad[key]);
        }
        let mut local = good.clone();
        local["verification_uri"] = json!("http://127.0.0.1:8080/device");
        local["verification_uri_complete"] = json!("http://127.0.0.1:8080/device?c=1");
        assert!(parse(&local, "http://127.0.0.1:8080/idp").is_ok());
        assert!(parse(&local, issuer).is_err());
    }
}
