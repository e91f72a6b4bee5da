//! The signing stage: turns an [`Authenticated`] caller and its [`Grant`] into
//! an ES256 JWT that distribution 2.8 and 3.x both accept.
//!
//! The header carries `kid` (the RFC 7638 thumbprint, as the JWKS publishes
//! it) and `x5c` (the signing certificate, verified by 2.8 and 3.x against
//! their `rootcertbundle`). jwt-simple has no way to put `x5c` in a header,
//! so the JWS is assembled here and signed with RustCrypto's P-256 (the
//! implementation jwt-simple itself uses); tests verify with jwt-simple.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use scopegate_policy::Grant;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

use crate::authenticate::Authenticated;

/// Claim names a policy's `claims` may not override.
const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "access",
    "auth_type",
];

/// Why a key or certificate could not be used. Shown in the log and in
/// `/healthz`; never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub &'static str);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl From<KeyError> for crate::Error {
    fn from(error: KeyError) -> Self {
        crate::Error::unavailable(format!("signing key: {error}"))
    }
}

/// A P-256 public key with its RFC 7638 thumbprint.
#[derive(Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    kid: String,
}

impl PublicKey {
    /// Reads a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|_| KeyError("public key is not a P-256 SubjectPublicKeyInfo PEM"))?;
        Ok(Self::new(key))
    }

    fn new(key: VerifyingKey) -> Self {
        let (x, y) = coordinates(&key);
        // RFC 7638: the required members in lexicographic order, no spaces.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Self { key, kid }
    }

    /// The RFC 7638 thumbprint, used as `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// This key as a JWK for `/.well-known/jwks.json`.
    pub fn jwk(&self) -> serde_json::Value {
        let (x, y) = coordinates(&self.key);
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": x,
            "y": y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }
}

fn coordinates(key: &VerifyingKey) -> (String, String) {
    let point = key.to_encoded_point(false);
    // An uncompressed point of a valid key always has both coordinates.
    let x = point.x().map(|x| URL_SAFE_NO_PAD.encode(x)).unwrap_or_default();
    let y = point.y().map(|y| URL_SAFE_NO_PAD.encode(y)).unwrap_or_default();
    (x, y)
}

/// The signing key with its certificate chain. Its `Debug` never shows the key.
pub struct Signer {
    key: SigningKey,
    public: PublicKey,
    /// Base64 (standard, padded) DER certificates, leaf first, as `x5c` wants.
    chain: Vec<String>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.public.kid)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Signer {
    /// Reads a PKCS#8 `PRIVATE KEY` PEM and the PEM certificate chain
    /// (leaf first). Fails unless the leaf certificate holds this key's
    /// public half, so a registry that trusts the certificate trusts the
    /// tokens.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, KeyError> {
        let key = SigningKey::from_pkcs8_pem(key_pem.trim())
            .map_err(|_| KeyError("signing_key is not a P-256 PKCS#8 PEM private key"))?;
        let public = PublicKey::new(*key.verifying_key());
        let certificates = certificates_der(cert_pem)?;
        let leaf = certificates
            .first()
            .ok_or(KeyError("signing_cert holds no certificate"))?;
        let point = public.key.to_encoded_point(false);
        if !leaf
            .windows(point.as_bytes().len())
            .any(|window| window == point.as_bytes())
        {
            return Err(KeyError("signing_cert does not certify signing_key"));
        }
        let chain = certificates.iter().map(|der| STANDARD.encode(der)).collect();
        Ok(Self { key, public, chain })
    }

    /// The public half, for the JWKS.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs a token for `caller` carrying exactly `grant`.
    pub fn sign(&self, token: &TokenClaims<'_>) -> Result<String, KeyError> {
        let header = serde_json::json!({
            "alg": "ES256",
            "typ": "JWT",
            "kid": self.public.kid,
            "x5c": self.chain,
        });
        let header = serde_json::to_vec(&header).map_err(|_| KeyError("header encoding"))?;
        let claims = serde_json::to_vec(token).map_err(|_| KeyError("claims encoding"))?;
        let mut jws = URL_SAFE_NO_PAD.encode(header);
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(claims));
        let signature: Signature = self.key.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        Ok(jws)
    }
}

/// Splits a PEM bundle into DER certificates, in order.
fn certificates_der(pem: &str) -> Result<Vec<Vec<u8>>, KeyError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut certificates = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body
            .find(END)
            .ok_or(KeyError("signing_cert has an unterminated certificate"))?;
        let base64: String = body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(base64)
            .map_err(|_| KeyError("signing_cert is not valid PEM"))?;
        certificates.push(der);
        rest = &body[end + END.len()..];
    }
    Ok(certificates)
}

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
            sub: caller.account().unwrap_or(""),
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const DEV_KEY: &str = include_str!("../dev/signing-key.pem");
    const DEV_CERT: &str = include_str!("../dev/signing-cert.pem");

    #[test]
    fn dev_key_and_certificate_load() {
        let signer = Signer::from_pem(DEV_KEY, DEV_CERT).unwrap();
        assert_eq!(signer.chain.len(), 1);
        assert_eq!(signer.public_key().kid().len(), 43);
        assert!(!format!("{signer:?}").contains("PRIVATE"));
    }

    #[test]
    fn rejects_a_certificate_for_another_key() {
        let other = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let other_pem = other
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string();
        let error = Signer::from_pem(&other_pem, DEV_CERT).unwrap_err();
        assert_eq!(error, KeyError("signing_cert does not certify signing_key"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Signer::from_pem("nonsense", DEV_CERT).is_err());
        assert_eq!(
            Signer::from_pem(DEV_KEY, "").unwrap_err(),
            KeyError("signing_cert holds no certificate")
        );
        assert!(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
    }

    use p256::pkcs8::EncodePrivateKey as _;
}
