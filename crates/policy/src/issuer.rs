//! Trusted OIDC issuers (`[[issuer]]`): whose ID tokens a workload may present instead of
//! a stored secret, and what those tokens must say.

use std::fmt;

use serde_json::{Map, Value};

use crate::person::PersonClaim;
use crate::subject::is_identifier;

/// A declared issuer. Only a validated policy holds one.
#[derive(Clone, PartialEq, Eq)]
pub struct Issuer {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) jwks_url: Option<String>,
    pub(crate) max_age: Option<u64>,
    /// `person`: which claim names a person, for `{person}`.
    pub(crate) person: Option<PersonClaim>,
}

impl Issuer {
    /// The name subjects use (`oidc:NAME`) and the prefix of the token's `sub`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The issuer URL, exactly as an ID token's `iss` must state it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// An ID token's `aud` (a string or a list) must hold at least one of these.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Where the issuer's JWKS is: the declared `jwks_url`, or `None` to read `jwks_uri`
    /// from [`Issuer::discovery_url`].
    pub fn jwks_url(&self) -> Option<&str> {
        self.jwks_url.as_deref()
    }

    /// `{url}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.url.trim_end_matches('/')
        )
    }

    /// Seconds after `iat` beyond which a token is refused; `None` for no limit.
    pub fn max_age(&self) -> Option<u64> {
        self.max_age
    }

    /// The claim that names a person (`person`), if the issuer declares one.
    pub fn person_claim(&self) -> Option<&str> {
        self.person.as_ref().map(PersonClaim::claim)
    }

    /// The domain a person's claim must be in (`person_domain`), if declared.
    pub fn person_domain(&self) -> Option<&str> {
        self.person.as_ref().and_then(PersonClaim::domain)
    }

    /// The person's name in a verified token's `claims`, as `{person}` stands for it.
    pub(crate) fn person_name<'c>(&self, claims: &'c Map<String, Value>) -> Option<&'c str> {
        self.person.as_ref()?.name(claims)
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("audiences", &self.audiences)
            .field("jwks_url", &self.jwks_url)
            .field("max_age", &self.max_age)
            .field("person", &self.person)
            .finish()
    }
}

/// Checks an issuer name: an account-like identifier without `:`, so `NAME:<sub>` splits.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if is_identifier(name) {
        Ok(())
    } else {
        Err(format!(
            "issuer name {name:?} is not valid (1 to 128 letters, digits, '.', '_', '-', '@', '+')"
        ))
    }
}

/// Checks an issuer or JWKS URL: `https://HOST[:PORT][/PATH]`, or `http://` to a loopback
/// host (`localhost`, `127.x.x.x`, `[::1]`) for tests. No credentials, query or fragment.
pub fn check_url(url: &str) -> Result<(), String> {
    let fail = |why: &str| Err(format!("URL {url:?}: {why}"));
    if url.len() > 512 {
        return fail("longer than 512 bytes");
    }
    let (is_https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return fail("must start with https://"),
    };
    if url.contains(['?', '#', ' ', '\\']) || url.chars().any(char::is_control) {
        return fail("must not have a query, a fragment, spaces or backslashes");
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return fail("must not carry credentials");
    }
    let host = host_of(authority);
    if host.is_empty() {
        return fail("has no host");
    }
    if !is_https && !is_loopback(host) {
        return fail("must use https:// (http:// is allowed only for a loopback host, in tests)");
    }
    Ok(())
}

/// Checks where an issuer's keys come from (a declared `jwks_url`, or the discovery
/// document's `jwks_uri`): [`check_url`], and plain `http://` only when the issuer's own
/// `url` is plain-HTTP loopback too. An `https://` issuer's keys always travel over
/// HTTPS: a discovery document must not send scopegate to a local plain-HTTP service.
pub fn check_key_url(url: &str, issuer_url: &str) -> Result<(), String> {
    check_url(url)?;
    if url.starts_with("http://") && !issuer_url.starts_with("http://") {
        return Err(format!(
            "URL {url:?}: must use https://, as the issuer {issuer_url:?} does"
        ));
    }
    Ok(())
}

/// The host of `host[:port]` or `[v6][:port]`, without the port.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host.strip_prefix("127.").is_some_and(|rest| {
            rest.split('.').count() == 3 && rest.split('.').all(|o| o.parse::<u8>().is_ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases: &[(&str, bool)] = &[
            ("https://token.actions.githubusercontent.com", true),
            ("https://gitlab.com", true),
            ("https://gitlab.example.com:8443/", true),
            ("https://login.example.com/tenant/v2.0", true),
            ("http://127.0.0.1:8080", true),
            ("http://localhost:9000/issuer", true),
            ("http://[::1]:9000", true),
            ("http://gitlab.com", false),
            ("http://127.0.0.1.evil.com", false),
            ("http://localhost.evil.com", false),
            ("ftp://gitlab.com", false),
            ("gitlab.com", false),
            ("https://", false),
            ("https://user:pw@gitlab.com", false),
            ("https://gitlab.com/?x=1", false),
            ("https://gitlab.com/#x", false),
            ("https://git lab.com", false),
        ];
        for (url, expected) in cases {
            assert_eq!(check_url(url).is_ok(), *expected, "{url}");
        }
    }

    #[test]
    fn key_urls_are_https_unless_the_issuer_is_plain_http_loopback() {
        let cases: &[(&str, &str, bool)] = &[
            ("https://gitlab.com/oauth/keys", "https://gitlab.com", true),
            ("http://127.0.0.1:8080/keys", "https://gitlab.com", false),
            ("http://localhost/keys", "https://issuer.example", false),
            ("http://127.0.0.1:8080/keys", "http://127.0.0.1:8080", true),
            ("https://keys.example/jwks", "http://127.0.0.1:8080", true),
            ("http://gitlab.com/keys", "http://127.0.0.1:8080", false),
        ];
        for (url, issuer, expected) in cases {
            assert_eq!(
                check_key_url(url, issuer).is_ok(),
                *expected,
                "{url} for {issuer}"
            );
        }
    }

    #[test]
    fn discovery_url_has_one_slash() {
        let issuer = Issuer {
            name: "gitlab".into(),
            url: "https://gitlab.com/".into(),
            audiences: vec!["x".into()],
            jwks_url: None,
            max_age: None,
            person: None,
        };
        assert_eq!(
            issuer.discovery_url(),
            "https://gitlab.com/.well-known/openid-configuration"
        );
    }
}
