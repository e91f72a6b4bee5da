//! Workload identity: a CI job or pod presents the OIDC ID token its platform
//! gave it (as the Basic password with any username, as the `password` of
//! `grant_type=password`, or as the `subject_token` of an RFC 8693 token
//! exchange). [`crate::oidc::verify`] checks it against the policy's
//! `[[issuer]]`s; this file turns the verified workload into a caller.
//!
//! Nothing is written to the store per request (a JWKS fetch refreshes the
//! issuer's cached keys, at most once a minute), nothing counts towards a
//! lockout (no account is involved), and the caller is never refreshable.

use scopegate_policy::CompiledPolicy;

use super::Authenticated;
use crate::oidc::{self, Fetch};
use crate::store::Store;
use crate::Error;

/// What checking an ID token needs besides the store: the trusted issuers
/// (declared in the compiled policy) and outbound HTTP for their keys.
#[derive(Clone, Copy)]
pub struct Workloads<'a> {
    pub policy: &'a CompiledPolicy<'a>,
    pub fetch: &'a dyn Fetch,
}

/// Checks an ID token. Every problem with the token is the same 401 as a
/// bad password; an issuer whose keys cannot be had is a 503.
pub fn authenticate_id_token(
    token: &str,
    workloads: &Workloads<'_>,
    store: &dyn Store,
    now: u64,
) -> Result<Authenticated, Error> {
    if !oidc::looks_like_jwt(token) {
        return Err(Error::Unauthorized("subject token is not an ID token"));
    }
    let issuers = workloads
        .policy
        .without_rules()
        .map_err(|error| Error::unavailable(format!("compiled policy: {error}")))?;
    let workload = oidc::verify(token, &issuers, store, workloads.fetch, now)?;
    Ok(Authenticated::workload(workload))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::super::tests_support::workloads;
    use super::super::{authenticate_secret, Lockout, PasswordSettings};
    use crate::store::MemoryStore;
    use crate::Error;

    const SETTINGS: PasswordSettings = PasswordSettings {
        lockout: Lockout {
            threshold: 3,
            seconds: 600,
        },
        cache_key: None,
        cache_seconds: 300,
    };

    fn id_token(iss: &str) -> String {
        let part = |json: String| URL_SAFE_NO_PAD.encode(json);
        format!(
            "{}.{}.c2ln",
            part(r#"{"alg":"RS256","kid":"k"}"#.to_string()),
            part(format!(
                r#"{{"iss":"{iss}","sub":"x","aud":"registry.example.com"}}"#
            ))
        )
    }

    /// A JWT-shaped password goes to the ID-token check whatever the
    /// username, never to a password check (which would count a failure).
    #[test]
    fn jwt_shaped_passwords_are_id_tokens() {
        let store = MemoryStore::new();
        // The shipped policy trusts GitHub; with no network its keys cannot be had.
        let trusted = id_token("https://token.actions.githubusercontent.com");
        for user in ["oidc", "alice", ""] {
            let result = authenticate_secret(user, &trusted, &store, &SETTINGS, &workloads(), 1);
            assert!(matches!(result, Err(Error::Unavailable(_))), "{user}");
        }
        let untrusted = id_token("https://issuer.example.net");
        let result = authenticate_secret("oidc", &untrusted, &store, &SETTINGS, &workloads(), 1);
        assert!(matches!(result, Err(Error::Unauthorized(_))));
        // No failure counted anywhere: the only record is the issuer's key-fetch attempt.
        assert_eq!(
            crate::store::Store::keys(&store, "").unwrap(),
            ["jwks/github"]
        );
    }

    #[test]
    fn a_subject_token_must_be_shaped_like_a_jwt() {
        let store = MemoryStore::new();
        for token in ["sgp_abc", "password", "a.b.c"] {
            let result = super::authenticate_id_token(token, &workloads(), &store, 1);
            assert!(matches!(result, Err(Error::Unauthorized(_))), "{token}");
        }
    }
}
