//! The provider's endpoints, from `ISSUER/.well-known/openid-configuration` (OpenID
//! Connect Discovery 1.0).
//!
//! Security-sensitive: the same rule as the server's for issuers: the issuer is
//! `https://` (plain `http://` only to a loopback host, for tests), and every endpoint it
//! names is `https://` too unless the issuer itself is plain-HTTP loopback, so a
//! discovery document cannot send a refresh token to a plain-HTTP service.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use super::Http;

/// What a login needs from the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// `issuer` as the document says it (the ID token's `iss` must equal it).
    pub issuer: String,
    pub token_endpoint: String,
    pub device_authorization_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
    /// Where a refresh token is revoked (RFC 7009), when the provider has one.
    pub revocation_endpoint: Option<String>,
    /// `scopes_supported`, when the document lists them.
    pub scopes_supported: Option<Vec<String>>,
}

/// `ISSUER/.well-known/openid-configuration`.
pub fn document_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Checks `issuer`, fetches its discovery document and reads it with [`parse`].
pub fn discover(http: &Http, issuer: &str) -> Result<Provider> {
    scopegate_policy::check_url(issuer).map_err(|why| anyhow!("--oidc: {why}"))?;
    let url = document_url(issuer);
    let document = http.get_json(&url)?;
    parse(issuer, &document).map_err(|error| error.context(format!("the discovery document {url}")))
}

/// The endpoints in `document`, the discovery document of `issuer` (as the user typed it;
/// a trailing `/` on either side is not a difference). Its `issuer` must be that issuer,
/// and every endpoint must pass the issuer URL rule.
pub fn parse(issuer: &str, document: &Value) -> Result<Provider> {
    let declared = document["issuer"]
        .as_str()
        .ok_or_else(|| anyhow!("has no `issuer`"))?;
    if declared.trim_end_matches('/') != issuer.trim_end_matches('/') {
        bail!(
            "names the issuer {:?}, not {issuer:?}: use that URL with --oidc",
            super::printable(declared)
        );
    }
    scopegate_policy::check_url(declared).map_err(|why| anyhow!("`issuer`: {why}"))?;
    let endpoint = |name: &str| -> Result<Option<String>> {
        match &document[name] {
            Value::Null => Ok(None),
            Value::String(url) => {
                scopegate_policy::check_key_url(url, declared)
                    .map_err(|why| anyhow!("`{name}`: {why}"))?;
                Ok(Some(url.clone()))
            }
            _ => bail!("`{name}` is not a string"),
        }
    };
    let token_endpoint =
        endpoint("token_endpoint")?.ok_or_else(|| anyhow!("has no `token_endpoint`"))?;
    let scopes_supported = document["scopes_supported"].as_array().map(|list| {
        list.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    });
    Ok(Provider {
        issuer: declared.to_string(),
        token_endpoint,
        device_authorization_endpoint: endpoint("device_authorization_endpoint")?,
        authorization_endpoint: endpoint("authorization_endpoint")?,
        revocation_endpoint: endpoint("revocation_endpoint")?,
        scopes_supported,
    })
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

    #[test]
    fn documents() {
        let good = json!({
            "issuer": "https://login.example.com/realms/corp",
            "token_endpoint": "https://login.example.com/realms/corp/token",
            "device_authorization_endpoint": "https://login.example.com/realms/corp/device",
            "authorization_endpoint": "https://login.example.com/realms/corp/auth",
            "scopes_supported": ["openid", "offline_access"],
        });
        let provider = parse("https://login.example.com/realms/corp/", &good).unwrap();
        assert_eq!(provider.issuer, "https://login.example.com/realms/corp");
        assert_eq!(
            provider.device_authorization_endpoint.as_deref(),
            Some("https://login.example.com/realms/corp/device")
        );
        // (issuer as typed, the document's changes, the error's words)
        let cases: &[(&str, Value, &str)] = &[
            ("https://other.example.com", json!({}), "names the issuer"),
            (
                "https://login.example.com/realms/corp",
                json!({"token_endpoint": "http://login.example.com/token"}),
                "token_endpoint",
            ),
            (
                "https://login.example.com/realms/corp",
                json!({"device_authorization_endpoint": "http://127.0.0.1:9/device"}),
                "device_authorization_endpoint",
            ),
            (
                "https://login.example.com/realms/corp",
                json!({"token_endpoint": null}),
                "has no `token_endpoint`",
            ),
            (
                "https://login.example.com/realms/corp",
                json!({"authorization_endpoint": 7}),
                "not a string",
            ),
        ];
        for (issuer, changes, words) in cases {
            let mut document = good.clone();
            for (key, value) in changes.as_object().unwrap() {
                document[key] = value.clone();
            }
            let error = format!("{:#}", parse(issuer, &document).unwrap_err());
            assert!(error.contains(words), "{issuer} {changes}: {error}");
        }
    }

    #[test]
    fn a_loopback_issuer_may_use_plain_http() {
        let document = json!({
            "issuer": "http://127.0.0.1:8080/idp",
            "token_endpoint": "http://127.0.0.1:8080/idp/token",
        });
        let provider = parse("http://127.0.0.1:8080/idp", &document).unwrap();
        assert_eq!(provider.token_endpoint, "http://127.0.0.1:8080/idp/token");
        assert_eq!(provider.scopes_supported, None);
        let document = json!({
            "issuer": "http://login.example.com",
            "token_endpoint": "http://login.example.com/token",
        });
        assert!(parse("http://login.example.com", &document).is_err());
    }
}
