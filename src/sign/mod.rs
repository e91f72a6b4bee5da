//! The signing stage: turns an [`Authenticated`](crate::authenticate::Authenticated)
//! caller and its grant into a JWT that distribution 2.8 and 3.x accept.
//!
//! One algorithm per deployment (variable `signing_alg`): ES256 (the
//! default, every registry), EdDSA (Ed25519: distribution 3.x, not 2.8),
//! RS256 (verifiers that take RSA only). Each lives in its own file.
//!
//! The header carries `kid` (the RFC 7638 thumbprint the JWKS publishes)
//! and, unless `send_x5c` is false, `x5c` (the signing certificate, which
//! 2.8 and 3.x verify against their `rootcertbundle`). A registry that
//! trusts only a JWKS must get no `x5c`: distribution 3.x tries `x5c` first
//! and a chain it cannot verify is final. jwt-simple has no way to put
//! `x5c` in a header, so the JWS is assembled here; tests verify with
//! jwt-simple.

mod claims;
mod eddsa;
mod es256;
mod pem;
mod public_key;
mod rs256;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use p256::pkcs8::der::Decode as _;
use p256::pkcs8::PrivateKeyInfo;
use std::fmt;

pub use claims::TokenClaims;
use public_key::{Material, EC_PUBLIC_KEY, ED25519, P256_CURVE, RSA_ENCRYPTION};
pub use public_key::{PublicKey, MIN_RSA_BITS};

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

/// The message of a certificate that does not certify the key.
pub const NOT_A_PAIR: KeyError = KeyError("signing_cert does not certify signing_key");

/// A JWS algorithm scopegate signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    Es256,
    EdDsa,
    Rs256,
}

impl Algorithm {
    /// Reads `signing_alg`'s value: `ES256`, `EdDSA` or `RS256` (JOSE's
    /// names, case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "ES256" => Some(Self::Es256),
            "EDDSA" => Some(Self::EdDsa),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }

    /// The JOSE name, as `alg` carries it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }

    /// The error for a `signing_key` that is not of this algorithm.
    fn wrong_key(self) -> KeyError {
        match self {
            Self::Es256 => KeyError(
                "signing_key is not a P-256 PKCS#8 PEM private key, as signing_alg ES256 needs",
            ),
            Self::EdDsa => KeyError(
                "signing_key is not an Ed25519 PKCS#8 PEM private key, as signing_alg EdDSA needs",
            ),
            Self::Rs256 => KeyError(
                "signing_key is not an RSA PKCS#8 PEM private key of 2048 bits or more, as signing_alg RS256 needs",
            ),
        }
    }
}

/// Builds what the signers keep in lazily initialised statics (P-256's
/// base-point table with `table-signing`) with a fixed, public key: run at
/// build time for the snapshot, or by nothing.
pub fn build_tables() {
    es256::build_table();
}

/// The private key of one algorithm.
enum SecretKey {
    Es256(es256::SecretKey),
    EdDsa(eddsa::SecretKey),
    Rs256(rs256::SecretKey),
}

/// How the signer names its key in each token's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// `kid` and `x5c`: registries that trust a certificate bundle.
    KidAndX5c,
    /// `kid` only: registries that trust the JWKS.
    KidOnly,
}

/// The signing key with its certificate chain. Its `Debug` never shows the key.
///
/// Loading costs no elliptic-curve arithmetic for ES256: the public key
/// comes from the certificate, so each token costs exactly one scalar
/// multiplication (the signature's). [`Signer::is_pair`] checks that key and
/// certificate belong together; for EdDSA and RS256 loading checks it
/// already, at no extra cost.
pub struct Signer {
    secret: SecretKey,
    public: PublicKey,
    /// Base64 (standard, padded) DER certificates, leaf first, as `x5c` wants.
    chain: Vec<String>,
    header: Header,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.public.algorithm().name())
            .field("kid", &self.public.kid())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Signer {
    /// Reads a PKCS#8 `PRIVATE KEY` PEM of `algorithm` and the PEM
    /// certificate chain, leaf first; the leaf's public key is the one
    /// published. A key or certificate of another algorithm is refused.
    pub fn from_pem(
        algorithm: Algorithm,
        key_pem: &str,
        cert_pem: &str,
        header: Header,
    ) -> Result<Self, KeyError> {
        let key_der = pem::blocks(key_pem, "PRIVATE KEY")?
            .into_iter()
            .next()
            .ok_or(algorithm.wrong_key())?;
        let secret = secret_key(algorithm, &key_der)?;

        let certificates = pem::blocks(cert_pem, "CERTIFICATE")?;
        let leaf = certificates
            .first()
            .ok_or(KeyError("signing_cert holds no certificate"))?;
        let public = PublicKey::from_spki_der(&pem::certificate_spki(leaf)?)
            .map_err(|_| KeyError("signing_cert holds no P-256, Ed25519 or RSA public key"))?;
        if public.algorithm() != algorithm {
            return Err(KeyError(
                "signing_cert's key is not of signing_alg's algorithm",
            ));
        }
        let signer = Self {
            secret,
            public,
            chain: certificates
                .iter()
                .map(|der| STANDARD.encode(der))
                .collect(),
            header,
        };
        if signer.is_pair_free() && !signer.is_pair() {
            return Err(NOT_A_PAIR);
        }
        Ok(signer)
    }

    /// Whether [`Signer::is_pair`] costs nothing (EdDSA, RS256: loading
    /// checked it already) or a scalar multiplication (ES256).
    pub fn is_pair_free(&self) -> bool {
        !matches!(self.secret, SecretKey::Es256(_))
    }

    /// Whether the leaf certificate certifies this private key. A
    /// mismatched pair signs tokens no registry accepts.
    pub fn is_pair(&self) -> bool {
        let derived = match &self.secret {
            SecretKey::Es256(key) => key.public_key().map(Material::P256),
            SecretKey::EdDsa(key) => Some(Material::Ed25519(key.public_key())),
            SecretKey::Rs256(key) => Some(Material::Rsa(key.public_key())),
        };
        derived.as_ref() == Some(&self.public.material)
    }

    /// The public half, for the JWKS.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs the token: header with `alg`, `typ`, `kid` (and `x5c`), then
    /// the claims.
    pub fn sign(&self, token: &TokenClaims<'_>) -> Result<String, KeyError> {
        let mut header = serde_json::json!({
            "alg": self.public.algorithm().name(),
            "typ": "JWT",
            "kid": self.public.kid(),
        });
        if self.header == Header::KidAndX5c {
            header["x5c"] = serde_json::json!(self.chain);
        }
        let header = serde_json::to_vec(&header).map_err(|_| KeyError("header encoding"))?;
        let claims = serde_json::to_vec(token).map_err(|_| KeyError("claims encoding"))?;
        let mut jws = URL_SAFE_NO_PAD.encode(header);
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(claims));
        let signature = match &self.secret {
            SecretKey::Es256(key) => key.sign(jws.as_bytes()),
            SecretKey::EdDsa(key) => Some(key.sign(jws.as_bytes())),
            SecretKey::Rs256(key) => key.sign(jws.as_bytes()),
        }
        .ok_or(KeyError("signature"))?;
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jws)
    }
}

/// The private key of `algorithm` in a PKCS#8 DER document.
fn secret_key(algorithm: Algorithm, der: &[u8]) -> Result<SecretKey, KeyError> {
    let wrong = algorithm.wrong_key();
    let info = PrivateKeyInfo::from_der(der).map_err(|_| wrong.clone())?;
    match algorithm {
        Algorithm::Es256 => {
            let curve = info.algorithm.parameters_oid().ok();
            if info.algorithm.oid != EC_PUBLIC_KEY || curve != Some(P256_CURVE) {
                return Err(wrong);
            }
            let ec_key =
                sec1::EcPrivateKey::try_from(info.private_key).map_err(|_| wrong.clone())?;
            es256::SecretKey::from_slice(ec_key.private_key)
                .map(SecretKey::Es256)
                .ok_or(wrong)
        }
        Algorithm::EdDsa => {
            // RFC 8410: the key is an OCTET STRING holding the 32-byte seed.
            if info.algorithm.oid != ED25519 {
                return Err(wrong);
            }
            let seed = info
                .private_key
                .strip_prefix(&[0x04, 0x20])
                .ok_or(wrong.clone())?;
            eddsa::SecretKey::from_seed(seed)
                .map(SecretKey::EdDsa)
                .ok_or(wrong)
        }
        Algorithm::Rs256 => {
            if info.algorithm.oid != RSA_ENCRYPTION {
                return Err(wrong);
            }
            let key = rsa::RsaPrivateKey::try_from(info).map_err(|_| wrong.clone())?;
            if rsa::traits::PublicKeyParts::n(&key).bits() < MIN_RSA_BITS {
                return Err(wrong);
            }
            Ok(SecretKey::Rs256(rs256::SecretKey::new(key)))
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is how a test fails"
)]
mod tests;
