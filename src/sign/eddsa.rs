//! EdDSA with Ed25519 (RFC 8032), from `ed25519-compact` (the implementation
//! jwt-simple already brings). Its base-point table is a compile-time
//! constant, so a fresh instance per request pays for no table.
//!
//! An Ed25519 signature hashes the public key, so loading the key derives
//! it (one fixed-base multiplication with that table): checking the pair
//! against the certificate costs nothing more.

pub struct SecretKey(ed25519_compact::KeyPair);

impl SecretKey {
    /// The 32-byte seed of an RFC 8410 `CurvePrivateKey`.
    pub fn from_seed(seed: &[u8]) -> Option<Self> {
        let seed = ed25519_compact::Seed::from_slice(seed).ok()?;
        Some(Self(ed25519_compact::KeyPair::from_seed(seed)))
    }

    /// Deterministic, as RFC 8032 defines it (no noise).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sk.sign(message, None).to_vec()
    }

    pub fn public_key(&self) -> [u8; 32] {
        *self.0.pk
    }
}
