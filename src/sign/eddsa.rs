//! EdDSA with Ed25519 (RFC 8032), from `ed25519-dalek`, whose
//! curve25519-dalek base-point table is a compile-time constant: a fresh
//! instance per request pays for no table.
//!
//! An Ed25519 signature hashes the public key, so loading the key derives
//! it (one fixed-base multiplication with that table): checking the pair
//! against the certificate costs nothing more.

use ed25519_dalek::Signer as _;

pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// The 32-byte seed of an RFC 8410 `CurvePrivateKey`.
    pub fn from_seed(seed: &[u8]) -> Option<Self> {
        let seed: &[u8; 32] = seed.try_into().ok()?;
        Some(Self(ed25519_dalek::SigningKey::from_bytes(seed)))
    }

    /// Deterministic, as RFC 8032 defines it.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_bytes().to_vec()
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
}
