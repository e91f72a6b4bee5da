//! ES256: ECDSA on P-256 over SHA-256, deterministic (RFC 6979), from
//! RustCrypto's `p256` (the implementation jwt-simple itself uses).
//!
//! Two builds of the same algorithm:
//! - by default, p256 0.13 with no precomputed table: a fresh instance per
//!   request (the WASI 0.2 build) would build a table on every request,
//!   which costs more than the one scalar multiplication it saves;
//! - with the feature `table-signing` (the WASI 0.3 build, whose instances
//!   serve many requests), p256 0.14, whose base-point table is built once
//!   per instance on first use and makes each later signature ~3x cheaper.
//!
//! Loading the key derives no public key (a full scalar multiplication):
//! the public key comes from the certificate, and [`SecretKey::public_point`]
//! is computed only when the pair is checked.

#[cfg(not(feature = "table-signing"))]
use ecdsa::hazmat::{bits2field, SignPrimitive};
#[cfg(not(feature = "table-signing"))]
use p256::{NistP256, NonZeroScalar};
#[cfg(not(feature = "table-signing"))]
use sha2::{Digest, Sha256};

/// An uncompressed SEC1 point: 0x04, X, Y.
pub type Point = [u8; 65];

/// `bytes` as an uncompressed SEC1 point, if they are a valid P-256 public
/// key (compressed or not), checked by the P-256 this build signs with (so
/// that only one of the two versions is linked into a component).
pub fn point(bytes: &[u8]) -> Option<Point> {
    #[cfg(not(feature = "table-signing"))]
    {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        let key = p256::PublicKey::from_sec1_bytes(bytes).ok()?;
        key.to_encoded_point(false).as_bytes().try_into().ok()
    }
    #[cfg(feature = "table-signing")]
    {
        let key = p256_014::PublicKey::from_sec1_bytes(bytes).ok()?;
        key.to_sec1_bytes().as_ref().try_into().ok()
    }
}

#[cfg(not(feature = "table-signing"))]
pub struct SecretKey(NonZeroScalar);

#[cfg(not(feature = "table-signing"))]
impl SecretKey {
    /// The 32-byte big-endian scalar of a SEC1 `ECPrivateKey`.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        p256::SecretKey::from_slice(bytes)
            .ok()
            .map(|secret| Self(secret.to_nonzero_scalar()))
    }

    pub fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let digest = bits2field::<NistP256>(&Sha256::digest(message)).ok()?;
        let (signature, _) = (*self.0)
            .try_sign_prehashed_rfc6979::<Sha256>(&digest, &[])
            .ok()?;
        Some(signature.to_bytes().to_vec())
    }

    /// The public key (one scalar multiplication), as an uncompressed
    /// SEC1 point.
    pub fn public_key(&self) -> Option<Point> {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        let point = p256::PublicKey::from_secret_scalar(&self.0).to_encoded_point(false);
        point.as_bytes().try_into().ok()
    }
}

#[cfg(feature = "table-signing")]
pub struct SecretKey(p256_014::NonZeroScalar);

#[cfg(feature = "table-signing")]
impl SecretKey {
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        p256_014::SecretKey::from_slice(bytes)
            .ok()
            .map(|secret| Self(secret.to_nonzero_scalar()))
    }

    /// The same RFC 6979 ECDSA as p256's `SigningKey`, without deriving the
    /// public key (which `SigningKey::from_slice` does): its one scalar
    /// multiplication is the table-based `k×G`.
    pub fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        use sha2_011::Digest as _;
        let digest = sha2_011::Sha256::digest(message);
        let (signature, _) = ecdsa_017::hazmat::sign_prehashed_rfc6979::<
            p256_014::NistP256,
            sha2_011::Sha256,
        >(&self.0, &digest, &[]);
        Some(signature.to_bytes().to_vec())
    }

    /// The public key (one table-based multiplication), as an uncompressed
    /// SEC1 point.
    pub fn public_key(&self) -> Option<Point> {
        let point = p256_014::PublicKey::from_secret_scalar(&self.0);
        point.to_sec1_bytes().as_ref().try_into().ok()
    }
}

/// Builds p256 0.14's base-point table by signing once with the scalar 1
/// (public; see `src/entry/snapshot.rs`). Without `table-signing` there is
/// no table to build.
pub fn build_table() {
    #[cfg(feature = "table-signing")]
    if let Some(key) = SecretKey::from_slice(&{
        let mut one = [0u8; 32];
        one[31] = 1;
        one
    }) {
        let _ = key.sign(b"scopegate: build the base-point table");
    }
}
