//! What a registry token grants, read from its `access` claim, and what of the request it
//! lacks.
//!
//! The token is NOT verified here: the CLI only reports what the token server put in it,
//! and the registry is what verifies it. A token that is not a JWT with an `access` claim
//! (some registries issue opaque tokens) gives `None`: nothing can be said about it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use scopegate_policy::Scope;
use serde::{Deserialize, Serialize};

/// Longest token whose payload is decoded, in bytes.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// One `access` entry as distribution defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

/// The claims of a registry token the CLI reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `access`, or `None` when the token does not carry one.
    pub access: Option<Vec<Access>>,
    /// `exp` in Unix seconds.
    pub expires_at: Option<u64>,
}

/// Decodes the payload of a compact JWS without verifying it; `None` when `token` is not
/// one.
pub fn claims(token: &str) -> Option<Claims> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let payload: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let access = match payload.get("access") {
        Some(value) if !value.is_null() => serde_json::from_value(value.clone()).ok(),
        _ => None,
    };
    Some(Claims {
        access,
        expires_at: payload.get("exp").and_then(serde_json::Value::as_u64),
    })
}

/// The requested scopes, or the parts of them, that `access` does not grant, each printed
/// as a scope (`repository:team/app:delete`). An entry matches on type and name (the class
/// is ignored, as registries do); a granted `*` covers every action. A requested `*` is
/// covered by a granted `*`, or for a repository by `pull`, `push` and `delete` together
/// (what a token server answers a `*` with when the policy lists the actions).
pub fn missing(requested: &[Scope], access: &[Access]) -> Vec<String> {
    let mut missing = Vec::new();
    for scope in requested {
        let granted: Vec<&str> = access
            .iter()
            .filter(|entry| {
                entry.resource_type == scope.resource_type() && entry.name == scope.name()
            })
            .flat_map(|entry| entry.actions.iter().map(String::as_str))
            .collect();
        let has = |action: &str| granted.contains(&"*") || granted.contains(&action);
        let lacking: Vec<&str> = scope
            .actions()
            .filter(|action| match *action {
                "*" => {
                    !(has("*")
                        || (scope.resource_type() == "repository"
                            && ["pull", "push", "delete"].iter().all(|a| has(a))))
                }
                action => !has(action),
            })
            .collect();
        if !lacking.is_empty() {
            missing.push(format!(
                "{}:{}:{}",
                scope.resource_type(),
                scope.name(),
                lacking.join(",")
            ));
        }
    }
    missing
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

    type Granted<'a> = (&'a str, &'a str, &'a [&'a str]);

    fn access(entries: &[Granted]) -> Vec<Access> {
        entries
            .iter()
            .map(|(t, n, a)| Access {
                resource_type: t.to_string(),
                name: n.to_string(),
                actions: a.iter().map(|s| s.to_string()).collect(),
            })
            .collect()
    }

    #[test]
    fn reports_what_is_lacking() {
        /// (requested scopes, granted (type, name, actions), expected missing)
        type Case<'a> = (&'a [&'a str], &'a [Granted<'a>], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                &["repository:a/b:pull,push"],
                &[("repository", "a/b", &["pull", "push"])],
                &[],
            ),
            (
                &["repository:a/b:pull,delete"],
                &[("repository", "a/b", &["pull"])],
                &["repository:a/b:delete"],
            ),
            (&["repository:a/b:pull"], &[], &["repository:a/b:pull"]),
            (
                &["repository:a/b:pull"],
                &[("repository", "a/c", &["pull"])],
                &["repository:a/b:pull"],
            ),
            (
                &["repository:a/b:pull,push"],
                &[("repository", "a/b", &["*"])],
                &[],
            ),
            (
                &["repository:a/b:*"],
                &[("repository", "a/b", &["pull", "push", "delete"])],
                &[],
            ),
            (
                &["repository:a/b:*"],
                &[("repository", "a/b", &["pull", "delete"])],
                &["repository:a/b:*"],
            ),
            (
                &["registry:catalog:*"],
                &[("registry", "catalog", &["*"])],
                &[],
            ),
            (
                &["repository(plugin):a/b:pull"],
                &[("repository", "a/b", &["pull"])],
                &[],
            ),
            (
                &["repository:a/b:pull", "repository:c/d:push"],
                &[("repository", "c/d", &["push"])],
                &["repository:a/b:pull"],
            ),
        ];
        for (requested, granted, expected) in cases {
            let scopes = scopegate_policy::parse_scopes(requested.iter().copied()).unwrap();
            assert_eq!(
                missing(&scopes, &access(granted)),
                *expected,
                "{requested:?}"
            );
        }
    }

    #[test]
    fn reads_claims_without_verifying() {
        let payload = URL_SAFE_NO_PAD.encode(
            r#"{"exp":1700000300,"access":[{"type":"repository","name":"a/b","actions":["pull"]}]}"#,
        );
        let read = claims_of(&format!("e30.{payload}.c2ln"));
        assert_eq!(read.expires_at, Some(1_700_000_300));
        assert_eq!(read.access.unwrap()[0].name, "a/b");
        let no_access = URL_SAFE_NO_PAD.encode(r#"{"exp":5}"#);
        assert_eq!(claims_of(&format!("e30.{no_access}.x")).access, None);
        for opaque in ["opaque-token", "a.b", "a.!!.c", "a.b.c.d", ""] {
            assert_eq!(claims(opaque), None, "{opaque}");
        }
    }

    fn claims_of(token: &str) -> Claims {
        claims(token).unwrap()
    }
}
