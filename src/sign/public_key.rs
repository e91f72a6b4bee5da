//! Public keys of every signing algorithm: read from a SubjectPublicKeyInfo
//! (a certificate's, or `previous_public_key`), published as a JWK, named by
//! their RFC 7638 thumbprint.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::pkcs8::der::{Decode as _, Encode as _};
use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
use p256::pkcs8::ObjectIdentifier;
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest, Sha256};

use super::{Algorithm, KeyError};

/// id-ecPublicKey (RFC 5480).
pub(super) const EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 (P-256).
pub(super) const P256_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// id-Ed25519 (RFC 8410).
pub(super) const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// rsaEncryption (RFC 8017).
pub(super) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The smallest RSA modulus scopegate signs with or publishes.
pub const MIN_RSA_BITS: usize = 2048;

/// The key material of one public key.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Material {
    /// An uncompressed SEC1 point, checked to be on the curve.
    P256(super::es256::Point),
    Ed25519([u8; 32]),
    Rsa(rsa::RsaPublicKey),
}

/// A public key with its RFC 7638 thumbprint.
#[derive(Clone)]
pub struct PublicKey {
    pub(super) material: Material,
    kid: String,
}

impl PublicKey {
    /// Reads a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM of any signing
    /// algorithm: P-256, Ed25519 or RSA.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = super::pem::blocks(pem, "PUBLIC KEY")?
            .into_iter()
            .next()
            .ok_or(KeyError("public key is not a SubjectPublicKeyInfo PEM"))?;
        Self::from_spki_der(&der)
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|_| KeyError("public key is not a SubjectPublicKeyInfo"))?;
        let bits = info
            .subject_public_key
            .as_bytes()
            .ok_or(KeyError("public key has unused bits"))?;
        let material = match info.algorithm.oid {
            EC_PUBLIC_KEY => {
                let curve = info.algorithm.parameters_oid().ok();
                if curve != Some(P256_CURVE) {
                    return Err(KeyError("an EC public key must be on P-256"));
                }
                Material::P256(
                    super::es256::point(bits).ok_or(KeyError("invalid P-256 public key"))?,
                )
            }
            ED25519 => Material::Ed25519(
                bits.try_into()
                    .map_err(|_| KeyError("invalid Ed25519 public key"))?,
            ),
            RSA_ENCRYPTION => {
                let key = rsa::RsaPublicKey::try_from(info)
                    .map_err(|_| KeyError("invalid RSA public key"))?;
                if key.n().bits() < MIN_RSA_BITS {
                    return Err(KeyError("an RSA key must have at least 2048 bits"));
                }
                Material::Rsa(key)
            }
            _ => {
                return Err(KeyError(
                    "public key is neither P-256, Ed25519 nor RSA (see signing_alg)",
                ))
            }
        };
        Ok(Self::new(material))
    }

    pub(super) fn new(material: Material) -> Self {
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input(&material).as_bytes()));
        Self { material, kid }
    }

    /// The RFC 7638 thumbprint, used as `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            Material::P256(_) => Algorithm::Es256,
            Material::Ed25519(_) => Algorithm::EdDsa,
            Material::Rsa(_) => Algorithm::Rs256,
        }
    }

    /// This key as a JWK for `/.well-known/jwks.json`.
    pub fn jwk(&self) -> serde_json::Value {
        let mut jwk = members(&self.material);
        jwk.insert("kid".into(), self.kid.clone().into());
        jwk.insert("use".into(), "sig".into());
        jwk.insert("alg".into(), self.algorithm().name().into());
        serde_json::Value::Object(jwk)
    }

    /// The DER SubjectPublicKeyInfo (for tests and tools).
    pub fn to_spki_der(&self) -> Result<Vec<u8>, KeyError> {
        use p256::pkcs8::der::asn1::{AnyRef, BitStringRef};
        use p256::pkcs8::spki::AlgorithmIdentifierRef;
        use p256::pkcs8::EncodePublicKey as _;
        let encoding = KeyError("public key encoding");
        let (oid, parameters, bits): (_, Option<AnyRef<'_>>, &[u8]) = match &self.material {
            Material::Rsa(key) => {
                return key
                    .to_public_key_der()
                    .map(|document| document.as_bytes().to_vec())
                    .map_err(|_| encoding)
            }
            Material::P256(point) => (EC_PUBLIC_KEY, Some((&P256_CURVE).into()), point),
            Material::Ed25519(point) => (ED25519, None, point),
        };
        SubjectPublicKeyInfoRef {
            algorithm: AlgorithmIdentifierRef { oid, parameters },
            subject_public_key: BitStringRef::from_bytes(bits).map_err(|_| encoding.clone())?,
        }
        .to_der()
        .map_err(|_| encoding)
    }
}

/// The JWK members that identify the key (RFC 7518, RFC 8037).
fn members(material: &Material) -> serde_json::Map<String, serde_json::Value> {
    let mut jwk = serde_json::Map::new();
    match material {
        Material::P256(point) => {
            // 0x04, then the 32-byte X and Y (RFC 7518, 6.2.1: full length).
            jwk.insert("kty".into(), "EC".into());
            jwk.insert("crv".into(), "P-256".into());
            jwk.insert("x".into(), URL_SAFE_NO_PAD.encode(&point[1..33]).into());
            jwk.insert("y".into(), URL_SAFE_NO_PAD.encode(&point[33..]).into());
        }
        Material::Ed25519(point) => {
            jwk.insert("kty".into(), "OKP".into());
            jwk.insert("crv".into(), "Ed25519".into());
            jwk.insert("x".into(), URL_SAFE_NO_PAD.encode(point).into());
        }
        Material::Rsa(key) => {
            jwk.insert("kty".into(), "RSA".into());
            jwk.insert(
                "n".into(),
                URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()).into(),
            );
            jwk.insert(
                "e".into(),
                URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()).into(),
            );
        }
    }
    jwk
}

/// RFC 7638: the required members only, in lexicographic order, no spaces.
/// serde_json's map keeps its keys sorted, so serialising them gives it.
fn thumbprint_input(material: &Material) -> String {
    serde_json::Value::Object(members(material)).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_follow_rfc_7638_and_8037() {
        // RFC 8037, appendix A.3: the thumbprint of its Ed25519 example key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let key = PublicKey::new(Material::Ed25519(x.try_into().unwrap()));
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_eq!(key.jwk()["kty"], "OKP");
        assert_eq!(key.jwk()["alg"], "EdDSA");
    }

    #[test]
    fn an_rsa_thumbprint_hashes_e_kty_n_in_that_order() {
        // RFC 7638, section 3.1's example key.
        let n = URL_SAFE_NO_PAD.decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw").unwrap();
        let key = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&n),
            rsa::BigUint::from(65_537u32),
        )
        .unwrap();
        let key = PublicKey::new(Material::Rsa(key));
        assert_eq!(key.kid(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn spki_round_trips_for_every_algorithm() {
        let p256 = PublicKey::from_pem(include_str!("../../dev/signing-cert.pem"));
        assert!(p256.is_err(), "a certificate is not a public key PEM");
        let ed = PublicKey::new(Material::Ed25519([9; 32]));
        let again = PublicKey::from_spki_der(&ed.to_spki_der().unwrap()).unwrap();
        assert_eq!(again.kid(), ed.kid());
        assert_eq!(again.algorithm(), Algorithm::EdDsa);
    }

    #[test]
    fn small_rsa_keys_are_refused() {
        use rand_core::SeedableRng as _;
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([3; 32]);
        let small = rsa::RsaPrivateKey::new(&mut rng, 1024)
            .unwrap()
            .to_public_key();
        let der = PublicKey::new(Material::Rsa(small)).to_spki_der().unwrap();
        assert_eq!(
            PublicKey::from_spki_der(&der).err(),
            Some(KeyError("an RSA key must have at least 2048 bits"))
        );
    }
}
