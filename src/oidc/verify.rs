//! Checking one ID token: issuer, algorithm, signature, audience and times, with jwt-simple.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{
    Duration, ECDSAP256PublicKeyLike, ECDSAP384PublicKeyLike, ES256PublicKey, ES384PublicKey,
    Ed25519PublicKey, EdDSAPublicKeyLike, JWTClaims, PS256PublicKey, PS384PublicKey,
    PS512PublicKey, RS256PublicKey, RS384PublicKey, RS512PublicKey, RSAPublicKeyLike, Token,
    UnixTimeStamp, VerificationOptions,
};
use scopegate_policy::{Issuer, Policy};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwks::{self, Jwk};
use super::{looks_like_jwt, Fetch, VerifiedWorkload, MAX_TOKEN_LEN};
use crate::store::Store;
use crate::Error;

/// The algorithms an ID token may be signed with. Never `none`, never HMAC: a JWKS holds
/// public keys, and a MAC "signed" with a public key proves nothing.
pub const ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Clock skew tolerated on `exp`, `nbf` and `iat` (seconds), as registries allow.
pub const LEEWAY_SECONDS: u64 = 60;

/// Verifies `token` against the policy's issuers and returns the workload it vouches for.
///
/// Every problem with the token itself is the same `Error::Unauthorized` (the reason is
/// for the log); `Error::Unavailable` means the issuer's keys could not be had (503).
/// With a cached JWKS this costs one store read and no fetch.
pub fn verify(
    token: &str,
    policy: &Policy,
    store: &dyn Store,
    fetch: &dyn Fetch,
    now: u64,
) -> Result<VerifiedWorkload, Error> {
    if !looks_like_jwt(token) {
        return Err(Error::Unauthorized("not an ID token"));
    }
    let iss = unverified_issuer(token).ok_or(Error::Unauthorized("ID token has no issuer"))?;
    let issuer = policy
        .issuer_for(&iss)
        .ok_or(Error::Unauthorized("ID token from an untrusted issuer"))?;
    let metadata = Token::decode_metadata(token)
        .map_err(|_| Error::Unauthorized("ID token header does not parse"))?;
    let algorithm = metadata.algorithm();
    if !ALGORITHMS.contains(&algorithm) {
        return Err(Error::Unauthorized("ID token algorithm not allowed"));
    }
    let keys = jwks::keys_for(issuer, metadata.key_id(), store, fetch, now)?;
    let claims = keys
        .iter()
        .find_map(|key| check(token, algorithm, key, issuer, now))
        .ok_or(Error::Unauthorized(
            "ID token signature or claims do not verify",
        ))?;
    workload(issuer, claims)
}

/// The `iss` of a token whose signature is not checked yet: only to pick the issuer.
fn unverified_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Payload {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let payload: Payload = serde_json::from_slice(&bytes).ok()?;
    Some(payload.iss)
}

type Claims = JWTClaims<Map<String, Value>>;

/// The token's claims when `key` verifies it under `algorithm` and every claim check
/// passes; `None` otherwise (a key of another type, a bad signature, a failed check).
fn check(token: &str, algorithm: &str, key: &Jwk, issuer: &Issuer, now: u64) -> Option<Claims> {
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([issuer.url().to_owned()])),
        allowed_audiences: Some(issuer.audiences().iter().cloned().collect()),
        time_tolerance: Some(Duration::from_secs(LEEWAY_SECONDS)),
        max_validity: issuer.max_age().map(Duration::from_secs),
        max_token_length: Some(MAX_TOKEN_LEN),
        artificial_time: Some(UnixTimeStamp::from_secs(now)),
        ..VerificationOptions::default()
    };
    let json = key.json.as_str();
    let claims: Claims = match algorithm {
        "RS256" => RS256PublicKey::from_jwk(json)
            .ok()?
            .verify_token(token, Some(options)),
        "RS384" => RS384PublicKey::from_jwk(json)
            .ok()?
            .verify_token(token, Some(options)),
        "RS512" => RS512PublicKey::from_jwk(json)
            .ok()?
            .verify_token(token, Some(options)),
        "PS256" => PS256PublicKey::from_jwk(json)
            .ok()?
            .verify_token(token, Some(options)),
        "PS384" => PS384PublicKey::from_jwk(json)
            .ok()?
            .verify_token(token, Some(options)),
        "PS512" => PS512PublicKey::from_jwk(json)
            .ok()?
            .verify_token(token, Some(options)),
        "ES256" => ES256PublicKey::from_jwk(json)
            .ok()?
            .verify_token(token, Some(options)),
        "ES384" => ES384PublicKey::from_jwk(json)
            .ok()?
            .verify_token(token, Some(options)),
        "EdDSA" => Ed25519PublicKey::from_jwk(json)
            .ok()?
            .verify_token(token, Some(options)),
        _ => return None,
    }
    .ok()?;
    // jwt-simple checks `exp` only when present; an ID token must carry it (OIDC Core
    // 2), and `iat` too when a maximum age is declared.
    let has_times =
        claims.expires_at.is_some() && (issuer.max_age().is_none() || claims.issued_at.is_some());
    has_times.then_some(claims)
}

/// The workload of verified `claims`: `sub` must be a non-empty string.
fn workload(issuer: &Issuer, claims: Claims) -> Result<VerifiedWorkload, Error> {
    let sub = claims
        .subject
        .filter(|sub| !sub.is_empty() && sub.len() <= 1024)
        .ok_or(Error::Unauthorized("ID token has no subject"))?;
    let mut map = claims.custom;
    map.insert("iss".into(), Value::String(issuer.url().to_owned()));
    map.insert("sub".into(), Value::String(sub.clone()));
    if let Some(audiences) = claims.audiences {
        let mut list: Vec<String> = audiences.into_set().into_iter().collect();
        list.sort();
        let aud = match <[String; 1]>::try_from(list) {
            Ok([one]) => Value::String(one),
            Err(list) => Value::from(list),
        };
        map.insert("aud".into(), aud);
    }
    Ok(VerifiedWorkload {
        issuer: issuer.name().to_owned(),
        subject: format!("{}:{sub}", issuer.name()),
        claims: map,
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a panic is how a test fails"
)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;

    use jwt_simple::prelude::{
        Claims as ClaimsBuilder, ECDSAP256KeyPairLike, ES256KeyPair, HS256Key, MACLike,
        RS256KeyPair, RSAKeyPairLike,
    };

    use super::*;
    use crate::oidc::FetchError;
    use crate::store::MemoryStore;

    const NOW: u64 = 1_800_000_000;
    const GITHUB: &str = "https://token.actions.githubusercontent.com";
    const GITLAB: &str = "https://gitlab.example.com";
    const AUDIENCE: &str = "registry.example.com";

    fn policy() -> Policy {
        let text = format!(
            r#"
[[issuer]]
name = "github"
url = "{GITHUB}"
audience = "{AUDIENCE}"

[[issuer]]
name = "gitlab"
url = "{GITLAB}"
audience = ["other", "{AUDIENCE}"]
jwks_url = "{GITLAB}/oauth/discovery/keys"
max_age = 600

[[allow]]
who = ["kind:oidc"]
what = ["repository:ci/**"]
actions = ["pull"]
"#
        );
        Policy::from_toml([("ci.toml", text.as_str())]).unwrap()
    }

    /// An issuer's HTTP side: discovery, JWKS, a GET counter and an off switch.
    struct FakeIssuer {
        documents: RefCell<BTreeMap<String, Vec<u8>>>,
        gets: Cell<usize>,
        is_down: Cell<bool>,
    }

    impl Fetch for FakeIssuer {
        fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
            self.gets.set(self.gets.get() + 1);
            if self.is_down.get() {
                return Err(FetchError("connection refused".into()));
            }
            self.documents
                .borrow()
                .get(url)
                .cloned()
                .ok_or_else(|| FetchError(format!("404 for {url}")))
        }
    }

    struct Keys {
        rsa: RS256KeyPair,
        ec: ES256KeyPair,
        rotated: ES256KeyPair,
    }

    fn keys() -> &'static Keys {
        static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| Keys {
            rsa: RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1"),
            ec: ES256KeyPair::generate().with_key_id("ec-1"),
            rotated: ES256KeyPair::generate().with_key_id("ec-2"),
        })
    }

    fn jwks(public_jwks: &[String]) -> Vec<u8> {
        format!("{{\"keys\":[{}]}}", public_jwks.join(",")).into_bytes()
    }

    fn issuer() -> FakeIssuer {
        let keys = keys();
        let set = jwks(&[
            keys.rsa.public_key().to_jwk(),
            keys.ec.public_key().to_jwk(),
        ]);
        let mut documents = BTreeMap::new();
        documents.insert(
            format!("{GITHUB}/.well-known/openid-configuration"),
            format!(r#"{{"issuer":"{GITHUB}","jwks_uri":"{GITHUB}/.well-known/jwks"}}"#)
                .into_bytes(),
        );
        documents.insert(format!("{GITHUB}/.well-known/jwks"), set.clone());
        documents.insert(format!("{GITLAB}/oauth/discovery/keys"), set);
        FakeIssuer {
            documents: RefCell::new(documents),
            gets: Cell::new(0),
            is_down: Cell::new(false),
        }
    }

    fn github_claims() -> Claims {
        let custom = serde_json::json!({
            "repository": "acme/app",
            "repository_owner": "acme",
            "ref": "refs/heads/main",
            "workflow": "build",
        });
        let mut claims = ClaimsBuilder::with_custom_claims(
            custom.as_object().unwrap().clone(),
            Duration::from_secs(300),
        )
        .with_issuer(GITHUB)
        .with_audience(AUDIENCE)
        .with_subject("repo:acme/app:ref:refs/heads/main");
        claims.issued_at = Some(UnixTimeStamp::from_secs(NOW - 10));
        claims.invalid_before = Some(UnixTimeStamp::from_secs(NOW - 10));
        claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 290));
        claims
    }

    fn rs256(claims: Claims) -> String {
        keys().rsa.sign(claims).unwrap()
    }

    fn es256(claims: Claims) -> String {
        keys().ec.sign(claims).unwrap()
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn good_tokens_verify_with_rsa_and_ec_keys() {
        let (policy, store, fetch) = (policy(), MemoryStore::new(), issuer());
        for token in [rs256(github_claims()), es256(github_claims())] {
            let workload = verify(&token, &policy, &store, &fetch, NOW).unwrap();
            assert_eq!(workload.issuer(), "github");
            assert_eq!(
                workload.subject(),
                "github:repo:acme/app:ref:refs/heads/main"
            );
            let claims = workload.claims();
            assert_eq!(claims["repository"], "acme/app");
            assert_eq!(claims["sub"], "repo:acme/app:ref:refs/heads/main");
            assert_eq!(claims["iss"], GITHUB);
            assert_eq!(claims["aud"], AUDIENCE);
            assert!(!claims.contains_key("exp"));
        }
        // Discovery and JWKS once; the second token was served from the cache.
        assert_eq!(fetch.gets.get(), 2);
        assert_eq!(store.writes(), 1);
    }

    #[test]
    fn a_cached_jwks_is_one_store_read_and_no_fetch() {
        let (policy, store, fetch) = (policy(), MemoryStore::new(), issuer());
        verify(&es256(github_claims()), &policy, &store, &fetch, NOW).unwrap();
        let (gets, writes) = (fetch.gets.get(), store.writes());
        fetch.is_down.set(true);
        for i in 0..50 {
            verify(&rs256(github_claims()), &policy, &store, &fetch, NOW + i).unwrap();
        }
        assert_eq!((fetch.gets.get(), store.writes()), (gets, writes));
    }

    #[test]
    fn every_bad_token_is_the_same_unauthorized() {
        let (policy, store, fetch) = (policy(), MemoryStore::new(), issuer());
        let keys = keys();
        let with = |change: &dyn Fn(&mut Claims)| {
            let mut claims = github_claims();
            change(&mut claims);
            es256(claims)
        };
        let header_none = b64(r#"{"alg":"none","kid":"ec-1"}"#);
        let payload = serde_json::to_string(&github_claims()).unwrap();
        let hs256 = {
            let key =
                HS256Key::from_bytes(keys.ec.public_key().to_jwk().as_bytes()).with_key_id("ec-1");
            key.authenticate(github_claims()).unwrap()
        };
        let tampered = {
            let token = es256(github_claims());
            let parts: Vec<&str> = token.split('.').collect();
            let evil = payload.replace("acme/app", "acme/adm");
            format!("{}.{}.{}", parts[0], b64(&evil), parts[2])
        };
        let unknown_kid = ES256KeyPair::generate()
            .with_key_id("ec-9")
            .sign(github_claims())
            .unwrap();
        let wrong_key_same_kid = ES256KeyPair::generate()
            .with_key_id("ec-1")
            .sign(github_claims())
            .unwrap();
        let cases: Vec<(&str, String)> = vec![
            (
                "wrong aud",
                with(&|c| {
                    c.audiences = Some(jwt_simple::claims::Audiences::AsString("elsewhere".into()))
                }),
            ),
            (
                "wrong iss",
                with(&|c| c.issuer = Some("https://evil.example".into())),
            ),
            (
                "iss with a slash",
                with(&|c| c.issuer = Some(format!("{GITHUB}/"))),
            ),
            ("no iss", with(&|c| c.issuer = None)),
            (
                "expired",
                with(&|c| c.expires_at = Some(UnixTimeStamp::from_secs(NOW - 61))),
            ),
            ("no exp", with(&|c| c.expires_at = None)),
            (
                "not yet valid",
                with(&|c| c.invalid_before = Some(UnixTimeStamp::from_secs(NOW + 61))),
            ),
            (
                "issued in the future",
                with(&|c| c.issued_at = Some(UnixTimeStamp::from_secs(NOW + 120))),
            ),
            ("no sub", with(&|c| c.subject = None)),
            ("alg none", format!("{header_none}.{}.", b64(&payload))),
            (
                "alg none, signature",
                format!("{header_none}.{}.AAAA", b64(&payload)),
            ),
            ("HS256 with the public key", hs256),
            ("tampered payload", tampered),
            ("unknown kid", unknown_kid),
            ("another key under a known kid", wrong_key_same_kid),
            ("garbage", "eyJ.eyJ.AAAA".into()),
            ("not a JWT", "hunter2".into()),
        ];
        for (name, token) in cases {
            match verify(&token, &policy, &store, &fetch, NOW) {
                Err(Error::Unauthorized(_)) => {}
                other => panic!("{name}: {other:?}"),
            }
        }
        // Leeway: 60 s either side still verifies.
        let late = with(&|c| c.expires_at = Some(UnixTimeStamp::from_secs(NOW - 59)));
        let early = with(&|c| c.invalid_before = Some(UnixTimeStamp::from_secs(NOW + 59)));
        for token in [late, early] {
            verify(&token, &policy, &store, &fetch, NOW).unwrap();
        }
    }

    #[test]
    fn max_age_and_audience_lists() {
        let (policy, store, fetch) = (policy(), MemoryStore::new(), issuer());
        let gitlab = |age: u64| {
            let mut claims = github_claims().with_issuer(GITLAB);
            claims.audiences = Some(jwt_simple::claims::Audiences::AsSet(
                [AUDIENCE.to_owned(), "something".to_owned()].into(),
            ));
            claims.issued_at = Some(UnixTimeStamp::from_secs(NOW - age));
            claims.invalid_before = None;
            rs256(claims)
        };
        let workload = verify(&gitlab(599), &policy, &store, &fetch, NOW).unwrap();
        assert_eq!(workload.issuer(), "gitlab");
        assert_eq!(
            workload.claims()["aud"],
            serde_json::json!([AUDIENCE, "something"])
        );
        assert!(matches!(
            verify(&gitlab(601), &policy, &store, &fetch, NOW),
            Err(Error::Unauthorized(_))
        ));
        // jwks_url is used directly: no discovery fetch.
        assert_eq!(fetch.gets.get(), 1);
    }

    #[test]
    fn unreachable_issuer_with_nothing_cached_is_unavailable() {
        let (policy, store, fetch) = (policy(), MemoryStore::new(), issuer());
        fetch.is_down.set(true);
        assert!(matches!(
            verify(&es256(github_claims()), &policy, &store, &fetch, NOW),
            Err(Error::Unavailable(_))
        ));
        // A broken JWKS document is no better than none (asked once the minute is over).
        fetch.is_down.set(false);
        fetch
            .documents
            .borrow_mut()
            .insert(format!("{GITHUB}/.well-known/jwks"), b"<html>".to_vec());
        assert!(matches!(
            verify(&es256(github_claims()), &policy, &store, &fetch, NOW + 61),
            Err(Error::Unavailable(_))
        ));
        // Only the attempts were recorded: no keys.
        let record: jwks::JwksRecord = crate::records::load(&store, "jwks/github")
            .unwrap()
            .unwrap();
        assert!(record.keys.is_empty());
        assert_eq!(record.checked_at, NOW + 61);
    }

    #[test]
    fn a_failing_issuer_is_asked_at_most_once_a_minute() {
        // Nothing cached: 20 tokens with a garbage signature and a trusted `iss` within a
        // minute ask the issuer once (discovery fails, so one GET), each later one is a
        // 503 at once; once the minute is over it is asked again.
        let (policy, store, fetch) = (policy(), MemoryStore::new(), issuer());
        fetch.is_down.set(true);
        let (header, claims, _) = {
            let token = es256(github_claims());
            let mut parts = token.split('.').map(str::to_owned);
            (parts.next().unwrap(), parts.next().unwrap(), parts.next())
        };
        let forged = format!("{header}.{claims}.{}", b64("garbage"));
        for i in 0..20 {
            assert!(matches!(
                verify(&forged, &policy, &store, &fetch, NOW + i),
                Err(Error::Unavailable(_))
            ));
        }
        assert_eq!(fetch.gets.get(), 1);
        assert!(verify(&forged, &policy, &store, &fetch, NOW + 60).is_err());
        assert_eq!(fetch.gets.get(), 2);

        // Keys cached but older than a day, issuer down: the same limit holds.
        let (store, fetch) = (MemoryStore::new(), issuer());
        verify(&es256(github_claims()), &policy, &store, &fetch, NOW).unwrap();
        let gets = fetch.gets.get();
        fetch.is_down.set(true);
        let two_days = 2 * 24 * 3600;
        for i in 0..20 {
            assert!(matches!(
                verify(&forged, &policy, &store, &fetch, NOW + two_days + i),
                Err(Error::Unavailable(_))
            ));
        }
        assert_eq!(fetch.gets.get(), gets + 1);
    }

    #[test]
    fn key_rotation_refetches_at_most_once_a_minute() {
        let (policy, store, fetch) = (policy(), MemoryStore::new(), issuer());
        let keys = keys();
        verify(&es256(github_claims()), &policy, &store, &fetch, NOW).unwrap();
        assert_eq!(fetch.gets.get(), 2);

        // The issuer rotates to ec-2; a token under it arrives within the minute: no
        // fetch, 401. After the minute: one fetch, and it verifies.
        let rotated = jwks(&[
            keys.rotated.public_key().to_jwk(),
            keys.rsa.public_key().to_jwk(),
        ]);
        fetch
            .documents
            .borrow_mut()
            .insert(format!("{GITHUB}/.well-known/jwks"), rotated);
        let new_token = keys.rotated.sign(github_claims()).unwrap();
        assert!(matches!(
            verify(&new_token, &policy, &store, &fetch, NOW + 30),
            Err(Error::Unauthorized(_))
        ));
        assert_eq!(fetch.gets.get(), 2);
        verify(&new_token, &policy, &store, &fetch, NOW + 61).unwrap();
        assert_eq!(fetch.gets.get(), 4);

        // Forged kids cannot make us hammer the issuer.
        for i in 0..20 {
            let forged = ES256KeyPair::generate()
                .with_key_id(&format!("forged-{i}"))
                .sign(github_claims())
                .unwrap();
            assert!(verify(&forged, &policy, &store, &fetch, NOW + 62 + i).is_err());
        }
        assert_eq!(fetch.gets.get(), 4);
        // The old key is gone from the issuer, so after a refetch it is unknown.
        assert!(matches!(
            verify(&es256(github_claims()), &policy, &store, &fetch, NOW + 200),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn stale_keys_outlive_an_issuer_outage_for_a_while() {
        let (policy, store, fetch) = (policy(), MemoryStore::new(), issuer());
        verify(&es256(github_claims()), &policy, &store, &fetch, NOW).unwrap();
        fetch.is_down.set(true);
        let later = |seconds: u64| {
            let mut claims = github_claims();
            claims.issued_at = Some(UnixTimeStamp::from_secs(NOW + seconds));
            claims.invalid_before = None;
            claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + seconds + 300));
            es256(claims)
        };
        let two_hours = 2 * 3600;
        verify(&later(two_hours), &policy, &store, &fetch, NOW + two_hours).unwrap();
        let two_days = 2 * 24 * 3600;
        assert!(matches!(
            verify(&later(two_days), &policy, &store, &fetch, NOW + two_days),
            Err(Error::Unavailable(_))
        ));
    }

    #[test]
    fn a_cache_for_another_issuer_url_is_not_trusted() {
        let (policy, store, fetch) = (policy(), MemoryStore::new(), issuer());
        let issuer = policy.issuer_for(GITHUB).unwrap();
        let foreign = jwks::JwksRecord {
            v: crate::records::VERSION,
            issuer: "https://old.example".into(),
            jwks_url: "https://old.example/jwks".into(),
            fetched_at: NOW,
            checked_at: NOW,
            keys: jwks::parse_jwks(&jwks(&[keys().ec.public_key().to_jwk()])).unwrap(),
        };
        crate::records::save(&store, &jwks::cache_key(issuer), &foreign).unwrap();
        verify(&es256(github_claims()), &policy, &store, &fetch, NOW).unwrap();
        assert_eq!(
            fetch.gets.get(),
            2,
            "the foreign cache was ignored and replaced"
        );
    }
}
