//! Random secrets, their digests, and constant-time comparison.
//!
//! API and refresh tokens are 256-bit random values behind a prefix that
//! names their kind (`sgp_`, `sgd_`, `sgj_`, `sgr_`), so secret scanners can
//! recognise leaked ones. The store keeps only their SHA-256 digest.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Error;

/// `len` bytes from the operating system's (the host's) random source.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, Error> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|error| Error::unavailable(format!("random: {error}")))?;
    Ok(bytes)
}

/// `len` random bytes as lowercase hex (request ids, `jti`).
pub fn random_hex(len: usize) -> Result<String, Error> {
    Ok(hex(&random_bytes(len)?))
}

/// A new secret: `prefix` followed by 256 random bits, base64url.
pub fn new_token(prefix: &str) -> Result<String, Error> {
    Ok(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes(32)?)
    ))
}

/// The SHA-256 of `secret` as lowercase hex: what the store keeps.
pub fn digest_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Compares two strings in time that depends only on their lengths.
pub fn is_same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_prefix_and_256_bits() {
        let token = new_token("sgd_").unwrap();
        assert!(token.starts_with("sgd_"));
        assert_eq!(token.len(), 4 + 43);
        assert_ne!(token, new_token("sgd_").unwrap());
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            digest_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn comparison() {
        assert!(is_same("abc", "abc"));
        assert!(!is_same("abc", "abd"));
        assert!(!is_same("abc", "abcd"));
    }
}
