//! ES256 signing in a loop, timed inside wasm.

use std::time::Instant;

use ecdsa::hazmat::{bits2field, SignPrimitive};
use jwt_simple::prelude::{
    Claims, Duration, ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::der::Decode as _;
use p256::pkcs8::PrivateKeyInfo;
use p256::{NistP256, NonZeroScalar};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The development key (public, in git), as scopegate's dev configuration uses.
const DEV_KEY: &str = include_str!("../../../dev/signing-key.pem");

/// About the length of scopegate's signing input (base64url of a header
/// carrying a one-certificate `x5c`, a dot, base64url of the claims).
const MESSAGE_LEN: usize = 1400;

/// What one signing route measured, in nanoseconds.
pub struct Timings {
    n: u32,
    key_load_ns: u128,
    first_ns: u128,
    warm_ns: u128,
    is_verified: bool,
}

impl Timings {
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"n":{},"key_load_ns":{},"first_ns":{},"warm_ns":{},"verified":{}}}"#,
            self.n, self.key_load_ns, self.first_ns, self.warm_ns, self.is_verified
        ) + "\n"
    }
}

/// The time of the first of `n` calls, and the mean of the others.
fn time_loop(
    n: u32,
    mut call: impl FnMut(u32) -> Result<(), String>,
) -> Result<(u128, u128), String> {
    let started = Instant::now();
    call(0)?;
    let first_ns = started.elapsed().as_nanos();
    let started = Instant::now();
    for i in 1..n {
        call(i)?;
    }
    let warm_ns = started.elapsed().as_nanos() / u128::from(n - 1);
    Ok((first_ns, warm_ns))
}

/// A JWT-sized message that differs in its first bytes for each `i`.
fn message(i: u32) -> Vec<u8> {
    let mut message = format!("{i:010}.").into_bytes();
    message.resize(MESSAGE_LEN, b'A');
    message
}

/// The secret scalar of a PKCS#8 P-256 PEM, read as scopegate reads it:
/// without curve arithmetic (`SecretKey::from_pkcs8_pem` would also check the
/// embedded public key, one scalar multiplication).
fn load_scalar(pem: &str) -> Result<NonZeroScalar, String> {
    let (_label, der) = p256::pkcs8::der::pem::decode_vec(pem.as_bytes())
        .map_err(|e| format!("dev key PEM: {e}"))?;
    let info = PrivateKeyInfo::from_der(&der).map_err(|e| format!("dev key PKCS#8: {e}"))?;
    let ec_key =
        sec1::EcPrivateKey::try_from(info.private_key).map_err(|e| format!("dev key SEC1: {e}"))?;
    let secret = p256::SecretKey::from_slice(ec_key.private_key)
        .map_err(|e| format!("dev key scalar: {e}"))?;
    Ok(secret.to_nonzero_scalar())
}

/// `n` signatures with scopegate's primitive: SHA-256, then deterministic
/// ECDSA (RFC 6979) on the secret scalar, as `Signer::sign` does.
pub fn sign_p256(n: u32) -> Result<Timings, String> {
    let started = Instant::now();
    let secret = load_scalar(DEV_KEY)?;
    let key_load_ns = started.elapsed().as_nanos();

    let mut last = None;
    let (first_ns, warm_ns) = time_loop(n, |i| {
        let digest = bits2field::<NistP256>(&Sha256::digest(message(i)))
            .map_err(|e| format!("digest: {e}"))?;
        let (signature, _) = (*secret)
            .try_sign_prehashed_rfc6979::<Sha256>(&digest, &[])
            .map_err(|e| format!("signature: {e}"))?;
        last = Some(signature.to_bytes());
        Ok(())
    })?;

    // Outside the timing: the last signature must verify.
    let public = VerifyingKey::from(&p256::PublicKey::from_secret_scalar(&secret));
    let is_verified = last
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .is_some_and(|signature| public.verify(&message(n - 1), &signature).is_ok());
    Ok(Timings {
        n,
        key_load_ns,
        first_ns,
        warm_ns,
        is_verified,
    })
}

/// Claims padded so the signing input is about [`MESSAGE_LEN`] long.
#[derive(Serialize, Deserialize)]
struct Padding {
    access: String,
}

/// `n` jwt-simple ES256 tokens (claims serialisation and base64 included,
/// as jwt-simple does them on every sign).
pub fn sign_jwt_simple(n: u32) -> Result<Timings, String> {
    let started = Instant::now();
    let key = ES256KeyPair::from_pem(DEV_KEY).map_err(|e| format!("dev key: {e}"))?;
    let key_load_ns = started.elapsed().as_nanos();

    let mut last = String::new();
    let (first_ns, warm_ns) = time_loop(n, |i| {
        let padding = Padding {
            access: String::from_utf8_lossy(&message(i)[..MESSAGE_LEN * 3 / 4 - 150]).into_owned(),
        };
        let claims = Claims::with_custom_claims(padding, Duration::from_secs(300));
        last = key.sign(claims).map_err(|e| format!("sign: {e}"))?;
        Ok(())
    })?;

    let is_verified = key
        .public_key()
        .verify_token::<Padding>(&last, None)
        .is_ok();
    Ok(Timings {
        n,
        key_load_ns,
        first_ns,
        warm_ns,
        is_verified,
    })
}

/// A GitHub-shaped RS256 ID token (expires in 2100) and the public JWK of
/// the 2048-bit key that signed it (made once with openssl; no private key
/// is kept), for the cost of an OIDC ID-token check.
const RS256_JWK: &str = include_str!("../fixtures/rs256-jwk.json");
const RS256_ID_TOKEN: &str = include_str!("../fixtures/rs256-id-token.jwt");

/// `n` jwt-simple RS256 verifications of an ID token, each from the JWK
/// text (as scopegate verifies one with its cached JWKS: parse the key,
/// check signature and claims). `key_load_ns` is one JWK parse on its own.
pub fn verify_rs256(n: u32) -> Result<Timings, String> {
    use jwt_simple::prelude::{RS256PublicKey, RSAPublicKeyLike as _, VerificationOptions};
    use std::collections::HashSet;

    let started = Instant::now();
    RS256PublicKey::from_jwk(RS256_JWK).map_err(|e| format!("JWK: {e}"))?;
    let key_load_ns = started.elapsed().as_nanos();
    let mut is_verified = true;
    let (first_ns, warm_ns) = time_loop(n, |_| {
        let key = RS256PublicKey::from_jwk(RS256_JWK).map_err(|e| format!("JWK: {e}"))?;
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from(["http://127.0.0.1:9/bench".to_string()])),
            allowed_audiences: Some(HashSet::from(["registry.example.com".to_string()])),
            ..VerificationOptions::default()
        };
        is_verified &= key
            .verify_token::<serde_json::Value>(RS256_ID_TOKEN, Some(options))
            .is_ok();
        Ok(())
    })?;
    Ok(Timings {
        n,
        key_load_ns,
        first_ns,
        warm_ns,
        is_verified,
    })
}

/// The scalar multiplications behind one signature, `n` of each, as JSON:
/// p256 0.13 `GENERATOR * k` (scopegate's, no table); p256 0.14 `point * k`
/// on a variable point (its 32-bit field arithmetic, no table); p256 0.14
/// `mul_by_generator` with its lazily built base-point table, the first call
/// (building the table) and warm.
pub fn scalar_multiplications(n: u32) -> Result<String, String> {
    use p256::elliptic_curve::ops::MulByGenerator as _;
    use p256_014::elliptic_curve::group::Group as _;

    let secret = load_scalar(DEV_KEY)?;
    let k013 = |i: u32| *secret + p256::Scalar::from(u64::from(i));
    let (_, p256_013_base_ns) = time_loop(n, |i| {
        std::hint::black_box(p256::ProjectivePoint::mul_by_generator(&k013(i)));
        Ok(())
    })?;

    let k014 = |i: u32| p256_014::Scalar::from(0x5eed_0000_u64 + u64::from(i));
    let started = Instant::now();
    let point = p256_014::ProjectivePoint::mul_by_generator(&k014(0));
    let p256_014_table_build_ns = started.elapsed().as_nanos();
    let (_, p256_014_base_table_ns) = time_loop(n, |i| {
        std::hint::black_box(p256_014::ProjectivePoint::mul_by_generator(&k014(i)));
        Ok(())
    })?;
    let (_, p256_014_variable_ns) = time_loop(n, |i| {
        std::hint::black_box(point * k014(i));
        Ok(())
    })?;
    Ok(format!(
        concat!(
            r#"{{"n":{},"p256_013_base_ns":{},"p256_014_variable_ns":{},"#,
            r#""p256_014_first_with_table_build_ns":{},"p256_014_base_table_ns":{}}}"#,
            "\n"
        ),
        n, p256_013_base_ns, p256_014_variable_ns, p256_014_table_build_ns, p256_014_base_table_ns
    ))
}
