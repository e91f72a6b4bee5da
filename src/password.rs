//! Password hashing with argon2id: the one deliberately slow thing scopegate
//! does.
//!
//! New hashes use [`PARAMS`]: m = 19 MiB, t = 2, p = 1 (the OWASP minimum for
//! argon2id), which keeps one verification within an edge function's CPU and
//! memory budget. Stored PHC strings with other parameters verify with their
//! own parameters.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::records::{self, VerifiedRecord};
use crate::store::Store;
use crate::Error;

/// Memory cost in KiB, iterations, parallelism.
pub const PARAMS: (u32, u32, u32) = (19 * 1024, 2, 1);

fn hasher() -> Result<Argon2<'static>, Error> {
    let (memory, iterations, parallelism) = PARAMS;
    let params = Params::new(memory, iterations, parallelism, None)
        .map_err(|error| Error::unavailable(format!("argon2 parameters: {error}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with a fresh random salt into a PHC string.
pub fn hash(password: &str) -> Result<String, Error> {
    let salt_bytes = crate::secret::random_bytes(16)?;
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|error| Error::unavailable(format!("salt: {error}")))?;
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| Error::unavailable(format!("argon2: {error}")))
}

/// Checks that `phc` is an argon2 PHC string this build can verify.
pub fn is_valid_phc(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        matches!(hash.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d") && hash.hash.is_some()
    })
}

/// Whether `password` matches the stored PHC string. An unparseable stored
/// hash is a store problem (503), not a wrong password.
pub fn verify(password: &str, phc: &str) -> Result<bool, Error> {
    let hash = PasswordHash::new(phc)
        .map_err(|_| Error::unavailable("stored password hash is not a PHC string"))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok())
}

/// Spends the same work as [`verify`] with default parameters, for callers
/// that do not exist, are disabled or are locked: their 401 must not come
/// back faster than a wrong password's.
pub fn waste_equal_work(password: &str) {
    let mut out = [0u8; 32];
    if let Ok(hasher) = hasher() {
        // The result is discarded on purpose; only the time spent matters.
        let _ = hasher.hash_password_into(password.as_bytes(), b"scopegate-no-user", &mut out);
    }
}

/// The store key that remembers a verified password: `verified/` and the
/// HMAC-SHA256, under the deployment's secret `cache_key`, of the account,
/// the password and the stored PHC string.
///
/// Only someone who knows the secret key can test a password guess against
/// it (unlike a fast unsalted hash, the store alone reveals nothing), and a
/// password change (new PHC) makes every old marker useless.
pub fn cache_marker_key(cache_key: &[u8; 32], account: &str, password: &str, phc: &str) -> String {
    // HMAC takes keys of any length: new_from_slice cannot fail here.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(cache_key) else {
        return String::new();
    };
    for part in [account, password, phc] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    format!(
        "verified/{}",
        crate::secret::hex(&mac.finalize().into_bytes())
    )
}

/// Whether `marker` says this password was verified and has not expired.
pub fn is_remembered(store: &dyn Store, marker: &str, now: u64) -> Result<bool, Error> {
    if marker.is_empty() {
        return Ok(false);
    }
    let record: Option<VerifiedRecord> = records::load(store, marker)?;
    Ok(record.is_some_and(|record| now < record.expires_at))
}

/// Remembers a verified password until `expires_at` (one store write, only
/// after a full argon2 verification).
pub fn remember(store: &dyn Store, marker: &str, expires_at: u64) -> Result<(), Error> {
    if marker.is_empty() {
        return Ok(());
    }
    let record = VerifiedRecord {
        v: records::VERSION,
        expires_at,
    };
    records::save(store, marker, &record)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(is_valid_phc(&phc));
        assert!(verify("correct horse", &phc).unwrap());
        assert!(!verify("wrong horse", &phc).unwrap());
    }

    #[test]
    fn markers_depend_on_key_account_password_and_hash() {
        let key = [7u8; 32];
        let base = cache_marker_key(&key, "alice", "pw", "$argon2id$a");
        assert!(base.starts_with("verified/"));
        assert_eq!(base.len(), "verified/".len() + 64);
        for other in [
            cache_marker_key(&[8u8; 32], "alice", "pw", "$argon2id$a"),
            cache_marker_key(&key, "alicE", "pw", "$argon2id$a"),
            cache_marker_key(&key, "alice", "pw2", "$argon2id$a"),
            cache_marker_key(&key, "alice", "pw", "$argon2id$b"),
            cache_marker_key(&key, "alicep", "w", "$argon2id$a"),
        ] {
            assert_ne!(other, base);
        }
    }

    #[test]
    fn foreign_hashes_are_not_valid() {
        for phc in [
            "",
            "plain",
            "$2b$12$abcdefghijklmnopqrstuv",
            "$argon2id$v=19$m=8,t=1,p=1",
        ] {
            assert!(!is_valid_phc(phc), "{phc}");
        }
        assert!(verify("x", "plain").is_err());
    }
}
