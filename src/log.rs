//! One JSON line per request. Secrets, passwords and tokens never reach it:
//! only names, kinds, scopes and outcomes, and even those pass through
//! [`redact`] on the way out, because a client can put a secret anywhere
//! (an operator pasting an identity token into an admin URL, a token sent
//! as a `service`).

use std::borrow::Cow;

use serde::Serialize;

/// What the log line of one request says.
#[derive(Debug, Default, Serialize)]
pub struct RequestLog {
    pub request_id: String,
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requested: Vec<String>,
    /// The granted scopes, one per resource; absent when the request got
    /// no token, empty when the token grants nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted: Option<Vec<String>>,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub latency_us: u64,
    /// Where a token request's time went, for operators and the benchmarks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages_us: Option<Stages>,
}

/// Microseconds spent in each stage of a token request, in order; what is
/// left of `latency_us` went to reading the request and writing the log.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Stages {
    /// Reading the variables (once per instance).
    pub config: u64,
    /// Checking the credentials (store reads; argon2 or an ID token).
    pub authenticate: u64,
    /// Evaluating the policy.
    pub policy: u64,
    /// Loading the key and certificate (once per instance; with ES256 also
    /// reading the marker of a checked pair).
    pub key: u64,
    /// Building the claims and signing.
    pub sign: u64,
    /// Issuing a refresh token (a store write), when asked for.
    pub refresh: u64,
}

impl RequestLog {
    /// The line to write, without a trailing newline, with every client-
    /// influenced text [`redact`]ed.
    pub fn to_line(&self) -> String {
        let text = |value: &str| redact(value).into_owned();
        let optional = |value: &Option<String>| value.as_deref().map(text);
        let redacted = RequestLog {
            request_id: text(&self.request_id),
            method: self.method,
            path: text(&self.path),
            status: self.status,
            service: optional(&self.service),
            client_id: optional(&self.client_id),
            account: optional(&self.account),
            auth_type: self.auth_type,
            requested: self.requested.iter().map(|scope| text(scope)).collect(),
            granted: self
                .granted
                .as_ref()
                .map(|scopes| scopes.iter().map(|scope| text(scope)).collect()),
            outcome: self.outcome,
            detail: optional(&self.detail),
            latency_us: self.latency_us,
            stages_us: self.stages_us,
        };
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(&redacted).unwrap_or_default()
    }
}

/// Replaces what looks like a secret: scopegate's own tokens
/// (`sgp_`, `sgd_`, `sgj_`, `sgr_` and what follows, also with the `_`
/// percent-encoded) and JWTs (`eyJ` then two dots). A word is a run of
/// characters that may appear in a token, a URL path segment or a query
/// value; the whole word goes.
pub fn redact(text: &str) -> Cow<'_, str> {
    let is_word =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '%' | '~' | '+' | '=');
    if !text.split(|c: char| !is_word(c)).any(is_secret_word) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if is_secret_word(word) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    Cow::Owned(out)
}

/// Whether a word contains one of scopegate's token prefixes at a word
/// boundary, or is shaped like a JWT.
fn is_secret_word(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    let has_prefix = ["sgp", "sgd", "sgj", "sgr"].iter().any(|kind| {
        [format!("{kind}_"), format!("{kind}%5f")]
            .iter()
            .any(|prefix| {
                lower.match_indices(prefix.as_str()).any(|(at, _)| {
                    at == 0 || !matches!(lower.as_bytes()[at - 1], b'a'..=b'z' | b'0'..=b'9' | b'_')
                })
            })
    });
    let is_jwt = word
        .find("eyJ")
        .is_some_and(|at| word[at..].matches('.').count() >= 2);
    has_prefix || is_jwt
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let cases = [
            (
                "/admin/refresh-tokens/sgr_AbC-12_xyz",
                "/admin/refresh-tokens/[redacted]",
            ),
            ("/admin/tokens/sgp_s3cret/", "/admin/tokens/[redacted]/"),
            ("/admin/users/sgd_x", "/admin/users/[redacted]"),
            ("/admin/users/SGJ%5Fx", "/admin/users/[redacted]"),
            ("/admin/users/x.sgr_y", "/admin/users/[redacted]"),
            (
                "/admin/x/eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln?a=1",
                "/admin/x/[redacted]?a=1",
            ),
            (
                "invalid type: string \"sgp_leaked\", expected x",
                "invalid type: string \"[redacted]\", expected x",
            ),
            ("/token", "/token"),
            (
                "/admin/tokens/0123456789abcdef",
                "/admin/tokens/0123456789abcdef",
            ),
            (
                "repository:team/my_sgp_app:pull",
                "repository:team/my_sgp_app:pull",
            ),
            ("repository:team/app:pull", "repository:team/app:pull"),
            ("eyJ.only-one-dot", "eyJ.only-one-dot"),
        ];
        for (text, expected) in cases {
            assert_eq!(redact(text), expected, "{text}");
        }
    }

    #[test]
    fn every_field_of_the_line_is_redacted() {
        let log = RequestLog {
            path: "/admin/tokens/sgp_1".into(),
            service: Some("sgd_2".into()),
            client_id: Some("sgj_3".into()),
            account: Some("sgr_4".into()),
            requested: vec!["sgp_5".into()],
            granted: Some(vec!["sgp_6".into()]),
            detail: Some("bad sgp_7".into()),
            ..RequestLog::default()
        };
        let line = log.to_line();
        assert!(!line.contains("sg"), "{line}");
        assert_eq!(line.matches("[redacted]").count(), 7, "{line}");
    }
}
