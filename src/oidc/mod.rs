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
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Outbound HTTP GET, as the host offers it. Implementations must follow no redirects to
/// other schemes, enforce their own timeout, and return the body of a 200 only.
pub trait Fetch {
    /// The body at `url` (an `https://` URL, or `http://` to loopback in tests).
    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError>;
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
#[derive(Debug, Clone, PartialEq)]
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
mod tests {
    use super::*;

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
