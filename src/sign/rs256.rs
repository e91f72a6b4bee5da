//! RS256: RSASSA-PKCS1-v1_5 over SHA-256, from RustCrypto's `rsa` (the
//! implementation jwt-simple already brings), for verifiers that take RSA
//! only. Keys of at least 2048 bits.
//!
//! `rsa` 0.9's arithmetic is not constant-time (RUSTSEC-2023-0071), so
//! every signature is blinded with fresh randomness from the host, which
//! hides the private exponent's timing from whoever measures the server.
//! A 2048-bit signature costs ~10 ms in the component: ES256 or EdDSA are
//! the fast choices.

use rand_core::SeedableRng as _;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use sha2::Sha256;

pub struct SecretKey(SigningKey<Sha256>);

impl SecretKey {
    pub fn new(key: rsa::RsaPrivateKey) -> Self {
        Self(SigningKey::new(key))
    }

    /// Signs with a blinding factor drawn from a ChaCha20 generator seeded
    /// by the host's random source for this signature alone.
    pub fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).ok()?;
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        let signature = self.0.try_sign_with_rng(&mut rng, message).ok()?;
        Some(signature.to_vec())
    }

    pub fn public_key(&self) -> rsa::RsaPublicKey {
        AsRef::<rsa::RsaPrivateKey>::as_ref(&self.0).to_public_key()
    }
}
