//! The claims of every token scopegate signs.

use scopegate_policy::{Grant, RESERVED_CLAIMS};
use serde::Serialize;

use crate::authenticate::Authenticated;

/// The claims of one token, borrowed from the request's stages.
#[derive(Serialize)]
pub struct TokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: &'a [scopegate_policy::GrantedAccess],
    auth_type: &'a str,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

impl<'a> TokenClaims<'a> {
    /// Claims for `caller`, carrying `grant`, valid from `now` for `ttl`
    /// seconds. `jti` is 128 random bits. Policy claims never replace a
    /// registered claim.
    pub fn new(
        caller: &'a Authenticated,
        grant: &'a Grant,
        issuer: &'a str,
        service: &'a str,
        now: u64,
        ttl: u64,
    ) -> Result<Self, crate::Error> {
        let extra = grant
            .claims
            .iter()
            .filter(|(name, _)| !RESERVED_CLAIMS.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Ok(Self {
            iss: issuer,
            sub: caller.subject().unwrap_or(""),
            aud: service,
            exp: now + ttl,
            nbf: now,
            iat: now,
            jti: crate::secret::random_hex(16)?,
            access: &grant.access,
            auth_type: caller.auth_type(),
            extra,
        })
    }
}
