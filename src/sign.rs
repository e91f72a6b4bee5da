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
#[cfg(not(feature = "table-signing"))]
use ecdsa::hazmat::{bits2field, SignPrimitive};
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::der::Decode as _;
use p256::pkcs8::{DecodePublicKey, ObjectIdentifier, PrivateKeyInfo};
#[cfg(not(feature = "table-signing"))]
use p256::{NistP256, NonZeroScalar};
use scopegate_policy::{Grant, RESERVED_CLAIMS};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

use crate::authenticate::Authenticated;

/// id-ecPublicKey (RFC 5480).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 (P-256).
const P256_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// The DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point:
/// SEQUENCE, AlgorithmIdentifier(id-ecPublicKey, secp256r1), BIT STRING 0x04.
const P256_SPKI_PREFIX: [u8; 27] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
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
    let x = point
        .x()
        .map(|x| URL_SAFE_NO_PAD.encode(x))
        .unwrap_or_default();
    let y = point
        .y()
        .map(|y| URL_SAFE_NO_PAD.encode(y))
        .unwrap_or_default();
    (x, y)
}

/// The private key and the ECDSA it signs with (deterministic, RFC 6979,
/// over SHA-256). Two implementations, both RustCrypto's P-256:
///
/// - by default, p256 0.13 with no precomputed table: a fresh instance per
///   request (the WASI 0.2 build) would build a table on every request,
///   which costs more than the one scalar multiplication it saves;
/// - with the feature `table-signing` (the WASI 0.3 build, whose instances
///   serve many requests), p256 0.14, whose base-point table is built once
///   per instance on first use and makes each later signature ~3x cheaper.
#[cfg(not(feature = "table-signing"))]
struct SecretKey(NonZeroScalar);

#[cfg(not(feature = "table-signing"))]
impl SecretKey {
    fn from_slice(bytes: &[u8]) -> Option<Self> {
        p256::SecretKey::from_slice(bytes)
            .ok()
            .map(|secret| Self(secret.to_nonzero_scalar()))
    }

    fn sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        let digest = bits2field::<NistP256>(&Sha256::digest(message)).ok()?;
        let (signature, _) = (*self.0)
            .try_sign_prehashed_rfc6979::<Sha256>(&digest, &[])
            .ok()?;
        Some(signature.to_bytes().into())
    }

    /// The public key as an uncompressed SEC1 point.
    fn public_point(&self) -> Vec<u8> {
        let derived = p256::PublicKey::from_secret_scalar(&self.0);
        VerifyingKey::from(&derived)
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }
}

#[cfg(feature = "table-signing")]
struct SecretKey(p256_014::ecdsa::SigningKey);

#[cfg(feature = "table-signing")]
impl SecretKey {
    fn from_slice(bytes: &[u8]) -> Option<Self> {
        p256_014::ecdsa::SigningKey::from_slice(bytes)
            .ok()
            .map(Self)
    }

    fn sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        use p256_014::ecdsa::signature::Signer as _;
        let signature: p256_014::ecdsa::Signature = self.0.try_sign(message).ok()?;
        Some(signature.to_bytes().into())
    }

    fn public_point(&self) -> Vec<u8> {
        self.0.verifying_key().to_sec1_bytes().to_vec()
    }
}

/// The signing key with its certificate chain. Its `Debug` never shows the key.
///
/// Loading costs no elliptic-curve arithmetic: the public key comes from the
/// certificate, so each token costs exactly one scalar multiplication (the
/// signature's). [`Signer::is_pair`] checks that key and certificate belong
/// together; `/healthz` and `scopegate keygen` call it.
pub struct Signer {
    secret: SecretKey,
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
    /// Reads a PKCS#8 `PRIVATE KEY` PEM (P-256) and the PEM certificate
    /// chain, leaf first; the leaf's public key is the one published.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, KeyError> {
        let not_a_key = KeyError("signing_key is not a P-256 PKCS#8 PEM private key");
        let key_der = pem_blocks(key_pem, "PRIVATE KEY")?
            .into_iter()
            .next()
            .ok_or(not_a_key.clone())?;
        let info = PrivateKeyInfo::from_der(&key_der).map_err(|_| not_a_key.clone())?;
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|_| not_a_key.clone())?;
        if info.algorithm.oid != EC_PUBLIC_KEY || curve != P256_CURVE {
            return Err(not_a_key);
        }
        let ec_key =
            sec1::EcPrivateKey::try_from(info.private_key).map_err(|_| not_a_key.clone())?;
        let secret = SecretKey::from_slice(ec_key.private_key).ok_or(not_a_key.clone())?;

        let certificates = pem_blocks(cert_pem, "CERTIFICATE")?;
        let leaf = certificates
            .first()
            .ok_or(KeyError("signing_cert holds no certificate"))?;
        let point = leaf
            .windows(P256_SPKI_PREFIX.len() + 64)
            .find(|window| window.starts_with(&P256_SPKI_PREFIX))
            .map(|window| &window[P256_SPKI_PREFIX.len() - 1..])
            .ok_or(KeyError("signing_cert holds no P-256 public key"))?;
        let public = VerifyingKey::from_sec1_bytes(point)
            .map_err(|_| KeyError("signing_cert holds an invalid P-256 public key"))?;
        let chain = certificates
            .iter()
            .map(|der| STANDARD.encode(der))
            .collect();
        Ok(Self {
            secret,
            public: PublicKey::new(public),
            chain,
        })
    }

    /// Whether the leaf certificate certifies this private key (one scalar
    /// multiplication). A mismatched pair signs tokens no registry accepts.
    pub fn is_pair(&self) -> bool {
        self.secret.public_point() == self.public.key.to_encoded_point(false).as_bytes()
    }

    /// The public half, for the JWKS.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs the token: header with `alg`, `typ`, `kid` and `x5c`, then the
    /// claims, with deterministic ECDSA (RFC 6979) over SHA-256.
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
        let signature = self
            .secret
            .sign(jws.as_bytes())
            .ok_or(KeyError("signature"))?;
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jws)
    }
}

/// The DER contents of every PEM block with `label`, in order.
fn pem_blocks(pem: &str, label: &'static str) -> Result<Vec<Vec<u8>>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end_marker = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let body = &rest[start + begin.len()..];
        let end = body
            .find(&end_marker)
            .ok_or(KeyError("a PEM block is not terminated"))?;
        let base64: String = body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(base64)
            .map_err(|_| KeyError("a PEM block is not valid base64"))?;
        blocks.push(der);
        rest = &body[end + end_marker.len()..];
    }
    Ok(blocks)
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

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is how a test fails"
)]
mod tests {
    use super::*;

    const DEV_KEY: &str = include_str!("../dev/signing-key.pem");
    const DEV_CERT: &str = include_str!("../dev/signing-cert.pem");

    #[test]
    fn dev_key_and_certificate_load() {
        let signer = Signer::from_pem(DEV_KEY, DEV_CERT).unwrap();
        assert_eq!(signer.chain.len(), 1);
        assert_eq!(signer.public_key().kid().len(), 43);
        assert!(signer.is_pair());
        assert!(!format!("{signer:?}").contains("PRIVATE"));
    }

    #[test]
    fn signatures_verify_against_the_certificate_key() {
        use p256::ecdsa::signature::Verifier as _;
        let signer = Signer::from_pem(DEV_KEY, DEV_CERT).unwrap();
        let caller = crate::authenticate::tests_support::anonymous();
        let grant = crate::grant::grant(crate::grant::policy().unwrap(), &caller, &[]);
        let claims = TokenClaims::new(&caller, &grant, "iss", "svc", 1_800_000_000, 300).unwrap();
        let token = signer.sign(&claims).unwrap();
        let (message, signature) = token.rsplit_once('.').unwrap();
        let signature =
            p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap())
                .unwrap();
        signer
            .public
            .key
            .verify(message.as_bytes(), &signature)
            .unwrap();
        assert_eq!(
            signer.sign(&claims).unwrap().split('.').next(),
            token.split('.').next()
        );
    }

    #[test]
    fn a_certificate_for_another_key_is_not_a_pair() {
        let other = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let other_pem = other.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
        let signer = Signer::from_pem(&other_pem, DEV_CERT).unwrap();
        assert!(!signer.is_pair());
    }

    #[test]
    fn rejects_garbage() {
        assert!(Signer::from_pem("nonsense", DEV_CERT).is_err());
        assert_eq!(
            Signer::from_pem(DEV_KEY, "").unwrap_err(),
            KeyError("signing_cert holds no certificate")
        );
        assert!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
    }

    use p256::pkcs8::EncodePrivateKey as _;
}
