//! Workload identity: a CI job or pod presents its OIDC ID token instead of a stored secret.
//!
//! [`verify`] turns a token into a [`VerifiedWorkload`] (the only way to make one): the
//! token's `iss` must be an `[[issuer]]` of the policy, its signature must verify with a
//! key of that issuer's JWKS under an asymmetric algorithm ([`verify::ALGORITHMS`]; never
//! `none`, never HMAC), its `aud` must hold a declared audience, `exp`/`nbf` hold with 60 s
//! leeway, and `iat` lies within `max_age` when one is set.
//!
//! Keys come from the issuer over outbound HTTP ([`Fetch`], implemented by the Spin entry)
//! and are cached in the key-value store ([`jwks`]): a request with a cached JWKS costs one
//! store read and no fetch. Errors are the crate's [`Error`]: `Unauthorized` (the same 401
//! as a bad password) for anything wrong with the token, `Unavailable` (503) when the
//! issuer cannot be reached and nothing usable is cached. Nothing here ever grants.

pub mod jwks;
pub mod verify;

use std::fmt;

use serde_json::{Map, Value};

pub use verify::verify;

/// Longest ID token accepted, in bytes (GitHub's and GitLab's are under 2 KiB).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Outbound HTTP GET, as the host offers it. Implementations must follow no redirects to
/// other schemes, enforce their own timeout, and return the body of a 200 only.
pub trait Fetch {
    /// The body at `url` (an `https://` URL, or `http://` to loopback in tests).
    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError>;
}

/// How long one outbound GET may take, connection to last byte (seconds).
/// An issuer slower than this counts as unreachable: a 503 with nothing
/// cached, never a grant.
pub const FETCH_TIMEOUT_SECONDS: u64 = 5;

/// Where a GET goes, split the way the host's HTTP client takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget<'a> {
    pub is_https: bool,
    /// `host[:port]`.
    pub authority: &'a str,
    /// `/path`, `/` when the URL has none.
    pub path: &'a str,
}

impl<'a> FetchTarget<'a> {
    /// Splits an issuer or JWKS URL (checked by the policy loader, or taken
    /// from a discovery document and checked there) into scheme, authority
    /// and path.
    pub fn parse(url: &'a str) -> Result<Self, FetchError> {
        let (is_https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => return Err(FetchError(format!("not an http(s) URL: {url:?}"))),
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(FetchError(format!("URL has no host: {url:?}")));
        }
        Ok(Self {
            is_https,
            authority,
            path,
        })
    }
}

/// No outbound HTTP at all: every GET fails. For callers that have none
/// (the fuzz targets, tools); a cold issuer then answers 503.
pub struct NoNetwork;

impl Fetch for NoNetwork {
    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        Err(FetchError(format!("no outbound HTTP here (GET {url})")))
    }
}

/// A GET that did not produce a 200 body: unreachable host, timeout, other status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError(pub String);

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FetchError {}

/// A workload whose ID token verified. Only [`verify`] builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWorkload {
    issuer: String,
    subject: String,
    claims: Map<String, Value>,
}

impl VerifiedWorkload {
    /// The `name` of the `[[issuer]]` that vouched for it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `ISSUER:<sub>`: the `sub` of the registry token and the account in logs.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The ID token's claims: its own ones, plus `iss`, `sub` and `aud`; time claims left out.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// Whether a Basic-auth password (or a `subject_token`) is shaped like a JWT: three
/// non-empty base64url parts, at most [`MAX_TOKEN_LEN`] bytes. API tokens and refresh
/// tokens never are (their prefixes hold `_`, but no `.`), passwords rarely; a password
/// that looks like one is still only ever checked as an ID token, and fails as one.
pub fn looks_like_jwt(text: &str) -> bool {
    let is_base64url = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    text.len() <= MAX_TOKEN_LEN
        && {
            let mut parts = text.split('.');
            let is_three = matches!(
                (parts.next(), parts.next(), parts.next(), parts.next()),
                (Some(a), Some(b), Some(c), None) if is_base64url(a) && is_base64url(b) && is_base64url(c)
            );
            // A header always starts `{"`, which base64url-encodes as `ey`.
            is_three && text.starts_with("ey")
        }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn fetch_targets() {
        let target = FetchTarget::parse("https://token.actions.githubusercontent.com").unwrap();
        assert_eq!(
            (target.is_https, target.authority, target.path),
            (true, "token.actions.githubusercontent.com", "/")
        );
        let target =
            FetchTarget::parse("http://127.0.0.1:8080/gitlab/oauth/discovery/keys").unwrap();
        assert_eq!(
            (target.is_https, target.authority, target.path),
            (false, "127.0.0.1:8080", "/gitlab/oauth/discovery/keys")
        );
        for bad in [
            "ftp://x/y",
            "https:///keys",
            "token.actions.githubusercontent.com",
        ] {
            assert!(FetchTarget::parse(bad).is_err(), "{bad}");
        }
        assert!(NoNetwork.get("https://example.com").is_err());
    }

    #[test]
    fn jwt_shapes() {
        let cases: &[(&str, bool)] = &[
            ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", true),
            ("eyJ.eyJ.x-_", true),
            ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.", false),
            ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0", false),
            ("eyJ.eyJ.x.y", false),
            ("eyJ.ey J.x", false),
            ("eyJ.eyJ.x=", false),
            ("abc.def.ghi", false),
            ("sgp_0123456789abcdef", false),
            ("correct horse battery staple", false),
            ("", false),
        ];
        for (text, expected) in cases {
            assert_eq!(looks_like_jwt(text), *expected, "{text:?}");
        }
        let long = format!("eyJ.{}.x", "a".repeat(MAX_TOKEN_LEN));
        assert!(!looks_like_jwt(&long));
    }
}
