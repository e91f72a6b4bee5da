//! The token endpoint's answers (RFC 6749 section 5.1, OpenID Connect Core 3.1.3.3 and
//! 12.2) and the claims of the ID token they carry.
//!
//! The ID token is not verified here: scopegate verifies its signature against the
//! provider's keys on every use. The CLI reads `exp` to know when to refresh, and checks
//! `iss` and `aud` at login so that a provider set up wrongly is reported at once rather
//! than as a 401 at the first push.

use anyhow::{anyhow, bail, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::http::PostError;
use super::{Client, Http};

/// Longest ID token accepted (and handed to docker).
const MAX_ID_TOKEN_LEN: usize = 16 * 1024;

/// What a successful token request gave.
#[derive(Clone)]
pub struct Tokens {
    pub id_token: String,
    /// A new refresh token (rotated), or `None` when the provider keeps the old one.
    pub refresh_token: Option<String>,
    pub claims: IdClaims,
}

impl std::fmt::Debug for Tokens {
    /// Never shows the tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// The claims of an ID token the CLI reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    /// `aud`, a string or a list.
    pub aud: Vec<String>,
    pub exp: u64,
    /// `preferred_username`, else `email`, else `sub`: how the person is named in messages.
    pub person: String,
}

/// Reads a token endpoint answer: an `id_token` that is a JWS with an `exp`, and an
/// optional `refresh_token`.
pub fn parse(answer: &Value) -> Result<Tokens> {
    let id_token = answer["id_token"]
        .as_str()
        .filter(|token| !token.is_empty())
        .ok_or_else(|| anyhow!("the answer holds no ID token (was the scope `openid` granted?)"))?;
    let claims = claims(id_token)?;
    let refresh_token = match &answer["refresh_token"] {
        Value::String(token) if !token.is_empty() => {
            if !token.chars().all(|c| c.is_ascii_graphic()) {
                bail!("the refresh token holds spaces, control or non-ASCII characters");
            }
            Some(token.clone())
        }
        _ => None,
    };
    Ok(Tokens {
        id_token: id_token.to_string(),
        refresh_token,
        claims,
    })
}

/// The claims of `id_token`, a compact JWS of base64url parts, read without verifying it.
pub fn claims(id_token: &str) -> Result<IdClaims> {
    if id_token.len() > MAX_ID_TOKEN_LEN {
        bail!("the ID token is longer than {MAX_ID_TOKEN_LEN} bytes");
    }
    let is_base64url = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    let parts: Vec<&str> = id_token.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|part| part.chars().all(is_base64url)) {
        bail!("the ID token is not a JWS (three base64url parts)");
    }
    let payload = URL_SAFE_NO_PAD
        .decode(parts[1])
        .map_err(|_| anyhow!("the ID token's payload is not base64url"))?;
    let payload: Value = serde_json::from_slice(&payload)
        .map_err(|_| anyhow!("the ID token's payload is not JSON"))?;
    let text = |name: &str| payload[name].as_str().unwrap_or_default().to_string();
    let exp = payload["exp"]
        .as_u64()
        .ok_or_else(|| anyhow!("the ID token has no `exp`"))?;
    let aud = match &payload["aud"] {
        Value::String(aud) => vec![aud.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let person = [text("preferred_username"), text("email"), text("sub")]
        .into_iter()
        .find(|name| !name.is_empty())
        .unwrap_or_default();
    Ok(IdClaims {
        iss: text("iss"),
        sub: text("sub"),
        aud,
        exp,
        person: super::printable(&person),
    })
}

impl IdClaims {
    /// Whether the token is what scopegate will accept from this provider and client: `iss`
    /// is the issuer, `aud` holds the client id, `sub` is there. The error says which.
    pub fn check(&self, issuer: &str, client_id: &str) -> Result<()> {
        if self.iss != issuer {
            bail!(
                "the ID token's `iss` is {:?}, not the issuer {issuer:?}",
                super::printable(&self.iss)
            );
        }
        if !self.aud.iter().any(|aud| aud == client_id) {
            bail!(
                "the ID token's `aud` ({:?}) does not hold the client id {client_id:?}: \
                 scopegate's policy names the client id as the issuer's audience",
                self.aud
            );
        }
        if self.sub.is_empty() {
            bail!("the ID token has no `sub`");
        }
        Ok(())
    }
}

/// Why a refresh failed.
#[derive(Debug)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant` and the like): the login
    /// has ended, only logging in again helps.
    Refused(String),
    /// The provider could not be reached or answered nonsense: the login may still be
    /// good, try again later.
    Failed(anyhow::Error),
}

/// Exchanges `refresh_token` for new tokens (`grant_type=refresh_token`, the login's
/// scopes).
pub fn refresh(
    http: &Http,
    token_endpoint: &str,
    client: &Client,
    refresh_token: &str,
    scopes: &[String],
) -> Result<Tokens, RefreshError> {
    let scope = scopes.join(" ");
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", "refresh_token".to_string()),
        ("refresh_token", refresh_token.to_string()),
    ];
    form.extend(client.form_fields());
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match http.post_form(token_endpoint, &form) {
        Ok(answer) => parse(&answer).map_err(|error| {
            RefreshError::Failed(error.context(format!("the refresh answer of {token_endpoint}")))
        }),
        Err(refused @ PostError::OAuth { .. }) => Err(RefreshError::Refused(refused.to_string())),
        Err(PostError::Other(error)) => Err(RefreshError::Failed(error)),
    }
}

/// Revokes `refresh_token` at `endpoint` (RFC 7009: `token`, `token_type_hint`, the
/// client's id). The provider answers 200 for a token it does not know too.
pub fn revoke(
    http: &Http,
    endpoint: &str,
    client: &Client,
    refresh_token: &str,
) -> Result<(), PostError> {
    let mut form: Vec<(&str, String)> = vec![
        ("token", refresh_token.to_string()),
        ("token_type_hint", "refresh_token".to_string()),
    ];
    form.extend(client.form_fields());
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    http.post_empty_ok(endpoint, &form)
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
    use serde_json::json;

    fn jwt(payload: &Value) -> String {
        format!(
            "eyJhbGciOiJFUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    }

    #[test]
    fn claims_of_id_tokens() {
        let token = jwt(&json!({
            "iss": "https://idp", "sub": "u1", "aud": ["a", "cli"], "exp": 99,
            "email": "mia@example.com",
        }));
        let claims = claims(&token).unwrap();
        assert_eq!(claims.aud, ["a", "cli"]);
        assert_eq!(claims.person, "mia@example.com");
        assert!(claims.check("https://idp", "cli").is_ok());
        assert!(claims.check("https://idp", "other").is_err());
        assert!(claims.check("https://other", "cli").is_err());
        for bad in [
            jwt(&json!({"sub": "u1"})),
            "a.b".to_string(),
            "a.b c.d".to_string(),
            "x".repeat(MAX_ID_TOKEN_LEN + 1),
        ] {
            assert!(super::claims(&bad).is_err(), "{bad:.40}");
        }
    }

    proptest::proptest! {
        /// Any text as an ID token, and any payload in a JWS shape: an error or claims,
        /// never a panic.
        #[test]
        fn any_id_token_is_read_without_panicking(
            text in "\\PC{0,200}",
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let _ = claims(&text);
            let _ = claims(&format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(payload)));
        }
    }

    #[test]
    fn answers() {
        let id_token = jwt(&json!({"iss": "i", "sub": "s", "aud": "c", "exp": 9}));
        let tokens = parse(&json!({"id_token": id_token, "refresh_token": "rt-1"})).unwrap();
        assert_eq!(tokens.refresh_token.as_deref(), Some("rt-1"));
        assert!(!format!("{tokens:?}").contains("rt-1"));
        let tokens = parse(&json!({"id_token": id_token})).unwrap();
        assert_eq!(tokens.refresh_token, None);
        assert!(parse(&json!({"access_token": "x"})).is_err());
        assert!(parse(&json!({"id_token": id_token, "refresh_token": "a\nb"})).is_err());
    }
}
