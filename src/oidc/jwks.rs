//! An issuer's signing keys: discovery document and JWKS parsing, and their cache in the
//! key-value store.
//!
//! Store key `jwks/<issuer name>`: a [`JwksRecord`] with the keys, when they were fetched
//! and when a fetch was last attempted. A token whose `kid` is in the cache costs one store
//! read. An unknown `kid` fetches the JWKS again, and so does a cache older than
//! [`REFRESH_SECONDS`], but at most one attempt a [`REFETCH_SECONDS`] per issuer, failed
//! attempts included (a forged `kid` or an issuer that is down or slow cannot make us
//! hammer it, nor hold more than one request a minute). A failed fetch keeps the cached
//! keys (up to [`MAX_STALE_SECONDS`] old): an issuer outage does not stop CI that already
//! works. Nothing usable cached and no fetch due or possible: 503 at once.

use scopegate_policy::{check_key_url, Issuer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Fetch, FetchError};
use crate::records;
use crate::store::Store;
use crate::Error;

/// Largest discovery document or JWKS accepted, in bytes.
pub const MAX_DOCUMENT_LEN: usize = 64 * 1024;
/// Most keys kept from one JWKS.
pub const MAX_KEYS: usize = 32;
/// An unknown `kid` fetches again at most this often per issuer (seconds).
pub const REFETCH_SECONDS: u64 = 60;
/// Cached keys older than this are fetched again on the next request (seconds).
pub const REFRESH_SECONDS: u64 = 3600;
/// Cached keys older than this are not used at all when the issuer cannot be reached.
pub const MAX_STALE_SECONDS: u64 = 24 * 3600;

/// The store key of an issuer's cached JWKS.
pub fn cache_key(issuer: &Issuer) -> String {
    format!("jwks/{}", issuer.name())
}

/// One signing key of a JWKS, as the issuer published it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    /// The key id tokens name in their header; `None` when the JWKS gives none.
    pub kid: Option<String>,
    /// The JWK object itself, as JSON text, for jwt-simple's `from_jwk`.
    pub json: String,
}

/// The cached JWKS of one issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksRecord {
    pub v: u32,
    /// The issuer URL and the JWKS URL the keys came from: a policy that changes either
    /// makes the cache miss instead of trusting another issuer's keys.
    pub issuer: String,
    pub jwks_url: String,
    /// When the keys were fetched (seconds since the epoch); 0 when no fetch has
    /// succeeded yet (then `keys` is empty: the record only remembers the attempt).
    pub fetched_at: u64,
    /// When a fetch was last tried, successful or not.
    pub checked_at: u64,
    pub keys: Vec<Jwk>,
}

/// Parses a discovery document and returns its `jwks_uri`, checked: its `issuer` must be
/// `issuer_url` exactly, and the URL must be `https://` (loopback `http://` only for a
/// loopback `http://` issuer, in tests).
pub fn parse_discovery(bytes: &[u8], issuer_url: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    if bytes.len() > MAX_DOCUMENT_LEN {
        return Err("discovery document is too large".into());
    }
    let document: Discovery = serde_json::from_slice(bytes)
        .map_err(|e| format!("discovery document does not parse: {e}"))?;
    if document.issuer != issuer_url {
        return Err(format!(
            "discovery document names issuer {:?}, not {issuer_url:?}",
            document.issuer
        ));
    }
    check_key_url(&document.jwks_uri, issuer_url)
        .map_err(|e| format!("discovery `jwks_uri`: {e}"))?;
    Ok(document.jwks_uri)
}

/// Parses a JWKS (`{"keys": [...]}`) into its signing keys: keys marked `"use": "enc"`
/// and entries that are not objects are left out; more than [`MAX_KEYS`] is an error.
/// The key material itself is checked when a token needs the key.
pub fn parse_jwks(bytes: &[u8]) -> Result<Vec<Jwk>, String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<Value>,
    }
    if bytes.len() > MAX_DOCUMENT_LEN {
        return Err("JWKS is too large".into());
    }
    let document: Document =
        serde_json::from_slice(bytes).map_err(|e| format!("JWKS does not parse: {e}"))?;
    if document.keys.len() > MAX_KEYS {
        return Err(format!("JWKS holds more than {MAX_KEYS} keys"));
    }
    Ok(document
        .keys
        .iter()
        .filter(|key| key.is_object())
        .filter(|key| key.get("use").and_then(Value::as_str) != Some("enc"))
        .map(|key| Jwk {
            kid: key.get("kid").and_then(Value::as_str).map(str::to_owned),
            json: key.to_string(),
        })
        .collect())
}

/// The keys a token naming `kid` may be verified with: the cached ones when they know the
/// `kid` (or the token names none) and are fresh, otherwise fetched again as the module
/// describes.
///
/// Every fetch attempt, successful or not, is recorded (`checked_at`) before the answer,
/// so at most one request a [`REFETCH_SECONDS`] per issuer ever waits for the issuer:
/// however many forged tokens arrive, and whether the issuer answers, fails or is slow.
///
/// Errors: `Unauthorized` when the issuer was reached (or asked less than a minute ago)
/// and has no such key; `Unavailable` when it cannot be reached and nothing usable is
/// cached (at once, without asking again, until the next attempt is due), or the store
/// fails.
pub fn keys_for(
    issuer: &Issuer,
    kid: Option<&str>,
    store: &dyn Store,
    fetch: &dyn Fetch,
    now: u64,
) -> Result<Vec<Jwk>, Error> {
    let key = cache_key(issuer);
    let cached: Option<JwksRecord> = records::load(store, &key)?.filter(|record: &JwksRecord| {
        record.issuer == issuer.url() && is_same_source(issuer, record)
    });
    if let Some(record) = &cached {
        let is_fresh = now < record.fetched_at.saturating_add(REFRESH_SECONDS);
        if is_fresh && has_kid(record, kid) {
            return Ok(matching(record.keys.clone(), kid));
        }
        if now < record.checked_at.saturating_add(REFETCH_SECONDS) {
            return cached_answer(issuer, record, kid, now, "asked less than a minute ago");
        }
    }
    match fetch_keys(issuer, fetch) {
        Ok((jwks_url, keys)) => {
            let fresh = save(store, &key, issuer, jwks_url, keys, now)?;
            require_kid(fresh, kid)
        }
        Err(error) => {
            // The attempt counts even though it failed: the cached keys (or none) stay,
            // and the next attempt waits its turn.
            let attempted = match cached {
                Some(record) => JwksRecord {
                    checked_at: now,
                    ..record
                },
                None => JwksRecord {
                    v: records::VERSION,
                    issuer: issuer.url().to_owned(),
                    jwks_url: issuer.jwks_url().unwrap_or_default().to_owned(),
                    fetched_at: NEVER_FETCHED,
                    checked_at: now,
                    keys: Vec::new(),
                },
            };
            records::save(store, &key, &attempted)?;
            let why = format!("cannot fetch its keys: {error}");
            cached_answer(issuer, &attempted, kid, now, &why)
        }
    }
}

/// `fetched_at` of a record that holds no keys because no fetch has succeeded yet.
const NEVER_FETCHED: u64 = 0;

/// The answer from `record` alone, when the issuer is not asked (`why`: it was asked too
/// recently, or asking just failed): the matching cached keys while they are at most
/// [`MAX_STALE_SECONDS`] old; `Unauthorized` when keys are cached but none has the
/// `kid`; `Unavailable` when no usable keys are cached at all.
fn cached_answer(
    issuer: &Issuer,
    record: &JwksRecord,
    kid: Option<&str>,
    now: u64,
    why: &str,
) -> Result<Vec<Jwk>, Error> {
    let has_keys = record.fetched_at != NEVER_FETCHED && !record.keys.is_empty();
    if !has_keys || now >= record.fetched_at.saturating_add(MAX_STALE_SECONDS) {
        let next = record.checked_at.saturating_add(REFETCH_SECONDS);
        return Err(Error::unavailable(format!(
            "issuer {}: no usable keys cached ({why}); next attempt in {} s",
            issuer.name(),
            next.saturating_sub(now)
        )));
    }
    if !has_kid(record, kid) {
        return Err(Error::Unauthorized(
            "ID token key unknown (not among the issuer's keys, asked less than a minute ago)",
        ));
    }
    Ok(matching(record.keys.clone(), kid))
}

fn has_kid(record: &JwksRecord, kid: Option<&str>) -> bool {
    match kid {
        Some(kid) => record.keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
        None => !record.keys.is_empty(),
    }
}

fn is_same_source(issuer: &Issuer, record: &JwksRecord) -> bool {
    issuer.jwks_url().is_none_or(|url| url == record.jwks_url)
}

fn matching(keys: Vec<Jwk>, kid: Option<&str>) -> Vec<Jwk> {
    match kid {
        Some(kid) => keys
            .into_iter()
            .filter(|k| k.kid.as_deref() == Some(kid))
            .collect(),
        None => keys,
    }
}

fn require_kid(keys: Vec<Jwk>, kid: Option<&str>) -> Result<Vec<Jwk>, Error> {
    let keys = matching(keys, kid);
    if keys.is_empty() {
        Err(Error::Unauthorized("ID token key unknown to its issuer"))
    } else {
        Ok(keys)
    }
}

fn save(
    store: &dyn Store,
    key: &str,
    issuer: &Issuer,
    jwks_url: String,
    keys: Vec<Jwk>,
    now: u64,
) -> Result<Vec<Jwk>, Error> {
    let record = JwksRecord {
        v: records::VERSION,
        issuer: issuer.url().to_owned(),
        jwks_url,
        fetched_at: now,
        checked_at: now,
        keys,
    };
    records::save(store, key, &record)?;
    Ok(record.keys)
}

/// Fetches the JWKS: from `jwks_url` when declared, else through the discovery document.
fn fetch_keys(issuer: &Issuer, fetch: &dyn Fetch) -> Result<(String, Vec<Jwk>), FetchError> {
    let jwks_url = match issuer.jwks_url() {
        Some(url) => url.to_owned(),
        None => {
            let document = fetch.get(&issuer.discovery_url())?;
            parse_discovery(&document, issuer.url()).map_err(FetchError)?
        }
    };
    let document = fetch.get(&jwks_url)?;
    let keys = parse_jwks(&document).map_err(FetchError)?;
    Ok((jwks_url, keys))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn discovery() {
        let url = "https://token.actions.githubusercontent.com";
        let good = br#"{"issuer":"https://token.actions.githubusercontent.com","jwks_uri":"https://token.actions.githubusercontent.com/.well-known/jwks","subject_types_supported":["public"]}"#;
        assert_eq!(
            parse_discovery(good, url).unwrap(),
            "https://token.actions.githubusercontent.com/.well-known/jwks"
        );
        let cases: &[&[u8]] = &[
            br#"{"issuer":"https://evil.example","jwks_uri":"https://evil.example/jwks"}"#,
            br#"{"issuer":"https://token.actions.githubusercontent.com","jwks_uri":"http://evil.example/jwks"}"#,
            br#"{"issuer":"https://token.actions.githubusercontent.com","jwks_uri":"http://127.0.0.1:8080/jwks"}"#,
            br#"{"issuer":"https://token.actions.githubusercontent.com"}"#,
            b"not json",
            b"",
        ];
        for bad in cases {
            assert!(
                parse_discovery(bad, url).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn jwks() {
        let keys = parse_jwks(br#"{"keys":[{"kty":"RSA","kid":"a","n":"x","e":"AQAB"},{"kty":"EC","use":"enc","kid":"b"},7,{"kty":"EC","crv":"P-256","x":"x","y":"y"}]}"#).unwrap();
        let kids: Vec<Option<&str>> = keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("a"), None]);
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"[]").is_err());
        let many = format!("{{\"keys\":[{}]}}", vec!["{}"; MAX_KEYS + 1].join(","));
        assert!(parse_jwks(many.as_bytes()).is_err());
    }
}
