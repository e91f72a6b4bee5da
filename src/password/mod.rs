//! Password hashing with argon2id: the one deliberately slow thing scopegate
//! does, and the same amount of it whoever the caller is.
//!
//! New hashes use [`PARAMS`]: m = 19 MiB, t = 2, p = 1 (the OWASP minimum for
//! argon2id), which keeps one verification within an edge function's CPU and
//! memory budget. Stored PHC strings (imported through the admin API) are
//! accepted only within a narrow band of equal cost ([`check_phc`]); every
//! password check, whether the account exists or not, spends [`WORK`]:
//! a cheaper stored hash is padded up to it. A stored hash outside the band
//! is refused without being run, so no stored value can make a request
//! allocate without bound or panic.
//!
//! Imported bcrypt hashes are accepted too ([`bcrypt`]), within a bounded
//! cost, and replaced by argon2id on the first successful login.

pub mod bcrypt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::records::{self, VerifiedRecord};
use crate::store::Store;
use crate::Error;

/// Memory cost in KiB, iterations, parallelism.
pub const PARAMS: (u32, u32, u32) = (19 * 1024, 2, 1);
/// The work of one password check, in KiB of memory times passes (m × t):
/// that of [`PARAMS`].
pub const WORK: u64 = PARAMS.0 as u64 * PARAMS.1 as u64;
/// The least work a stored hash may take: OWASP's cheapest equivalent
/// argon2id setting (m = 7 MiB, t = 5). Together with [`WORK`] this admits
/// OWASP's equivalent settings m=19456,t=2 / 12288,3 / 9216,4 / 7168,5.
pub const MIN_WORK: u64 = 7 * 1024 * 5;
/// Most lanes accepted. Lanes run one after another in the component, and
/// four lanes measured about 5% slower than one for the same m × t (see
/// `examples/password_paths.rs`): enough to tell paths apart, so one only.
pub const MAX_PARALLELISM: u32 = 1;
/// Accepted output lengths of a stored hash, in bytes.
pub const OUTPUT_LEN: std::ops::RangeInclusive<usize> = 16..=64;

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

/// The work (m × t) of a stored hash whose parameters are within bounds.
struct Bounded {
    work: u64,
}

/// Checks a parsed PHC string against the accepted band; the error says
/// which bound it breaks. Reads only the parameter fields: nothing is
/// allocated or hashed here.
fn bounded(hash: &PasswordHash<'_>) -> Result<Bounded, String> {
    if !matches!(hash.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d") {
        return Err(format!("algorithm {} is not argon2", hash.algorithm));
    }
    if hash.version.is_some_and(|version| version != 0x13) {
        return Err("argon2 version must be 19 (v=19)".to_string());
    }
    let decimal = |name: &str| {
        hash.params
            .get_decimal(name)
            .ok_or_else(|| format!("parameter {name} is missing"))
    };
    let (memory, iterations, parallelism) = (decimal("m")?, decimal("t")?, decimal("p")?);
    if !(1..=MAX_PARALLELISM).contains(&parallelism) {
        return Err(format!(
            "p={parallelism} is not within 1..={MAX_PARALLELISM}"
        ));
    }
    if iterations == 0 || memory < 8 * parallelism {
        return Err(format!(
            "m={memory},t={iterations} is not a valid argon2 cost"
        ));
    }
    let work = u64::from(memory) * u64::from(iterations);
    if !(MIN_WORK..=WORK).contains(&work) {
        return Err(format!(
            "m*t = {work} KiB-passes is outside {MIN_WORK}..={WORK} (e.g. m=19456,t=2)"
        ));
    }
    match &hash.hash {
        Some(output) if OUTPUT_LEN.contains(&output.len()) => {}
        Some(output) => {
            return Err(format!(
                "hash length {} is not 16 to 64 bytes",
                output.len()
            ))
        }
        None => return Err("the PHC string has no hash".to_string()),
    }
    if hash.salt.is_none() {
        return Err("the PHC string has no salt".to_string());
    }
    Ok(Bounded { work })
}

/// Checks that `phc` is an argon2 PHC string within the accepted band, or
/// a bcrypt hash within its costs (see the module doc); the error names the
/// offending part, for the admin.
pub fn check_phc(phc: &str) -> Result<(), String> {
    if bcrypt::is_bcrypt(phc) {
        return bcrypt::check(phc).map(|_| ());
    }
    let hash = PasswordHash::new(phc).map_err(|error| format!("not a PHC string: {error}"))?;
    bounded(&hash).map(|_| ())
}

/// Whether a stored hash should be replaced by a new argon2id one once the
/// password is known to match: bcrypt hashes are imports to fade out.
pub fn needs_rehash(stored: &str) -> bool {
    bcrypt::is_bcrypt(stored)
}

/// Whether `phc` is accepted by [`check_phc`].
pub fn is_valid_phc(phc: &str) -> bool {
    check_phc(phc).is_ok()
}

/// Whether `password` matches the stored PHC string, after exactly
/// [`WORK`] (a hash cheaper than that is padded), or the stored bcrypt hash
/// after its own cost. An unparseable stored
/// hash is a store problem (503); a hash outside the accepted band is a
/// 401 after the same work, never run with its own parameters.
pub fn verify(password: &str, phc: &str) -> Result<bool, Error> {
    if bcrypt::is_bcrypt(phc) {
        return bcrypt::verify(password, phc);
    }
    let hash = PasswordHash::new(phc)
        .map_err(|_| Error::unavailable("stored password hash is not a PHC string"))?;
    let Ok(Bounded { work }) = bounded(&hash) else {
        waste_equal_work(password);
        return Err(Error::Unauthorized(
            "stored password hash is outside the accepted argon2 parameters; reset the password",
        ));
    };
    let is_match = Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok();
    spend(password, WORK.saturating_sub(work));
    Ok(is_match)
}

/// Spends the same work as [`verify`], for callers that do not exist, are
/// disabled or are locked: their 401 must not come back faster than a
/// wrong password's.
pub fn waste_equal_work(password: &str) {
    spend(password, WORK);
}

/// Runs argon2id over `work` KiB-passes (m = `work`, t = 1), the result
/// discarded: only the time spent matters. Less than argon2's minimum of
/// 8 KiB is not worth a run.
fn spend(password: &str, work: u64) {
    if work < 8 {
        return;
    }
    let (memory, iterations) = if work == WORK {
        (PARAMS.0, PARAMS.1)
    } else {
        (u32::try_from(work).unwrap_or(PARAMS.0), 1)
    };
    let Ok(params) = Params::new(memory, iterations, 1, None) else {
        return;
    };
    let mut out = [0u8; 32];
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    // The result is discarded on purpose; only the time spent matters.
    let _ = hasher.hash_password_into(password.as_bytes(), b"scopegate-no-user", &mut out);
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
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
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
            "$2b$13$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0",
            "$argon2id$v=19$m=8,t=1,p=1",
        ] {
            assert!(!is_valid_phc(phc), "{phc}");
        }
        assert!(verify("x", "plain").is_err());
    }

    const SALT_AND_HASH: &str =
        "c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn stored_parameters_are_bounded() {
        // (parameters, accepted, reason fragment when refused)
        let cases = [
            ("m=19456,t=2,p=1", true, ""),
            ("m=12288,t=3,p=1", true, ""),
            ("m=9216,t=4,p=1", true, ""),
            ("m=7168,t=5,p=1", true, ""),
            ("m=19456,t=2,p=4", false, "p=4"),
            // argon2-cffi's default: five times the work of the dummy path.
            ("m=65536,t=3,p=4", false, "p=4"),
            ("m=262144,t=4,p=1", false, "outside"),
            // Panicked with "capacity overflow" in the component before.
            ("m=4000000,t=1,p=1", false, "outside"),
            ("m=4294967295,t=4294967295,p=1", false, "outside"),
            ("m=4096,t=1,p=1", false, "outside"),
            ("m=19456,t=2,p=5", false, "p=5"),
            ("m=19456,t=0,p=1", false, "not a valid"),
            ("m=19456,p=1", false, "t is missing"),
        ];
        for (parameters, accepted, reason) in cases {
            let phc = format!("$argon2id$v=19${parameters}${SALT_AND_HASH}");
            match check_phc(&phc) {
                Ok(()) => assert!(accepted, "{parameters} accepted"),
                Err(error) => {
                    assert!(!accepted, "{parameters} refused: {error}");
                    assert!(error.contains(reason), "{parameters}: {error}");
                    // Verification refuses it as a 401, without running it.
                    assert!(
                        matches!(verify("pw", &phc), Err(Error::Unauthorized(_))),
                        "{parameters}"
                    );
                }
            }
        }
        assert!(check_phc(&format!("$argon2id$v=16$m=19456,t=2,p=1${SALT_AND_HASH}")).is_err());
        assert!(
            check_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$QUFB").is_err(),
            "3-byte hash"
        );
    }

    #[test]
    fn hashes_within_the_band_verify() {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        for (memory, iterations) in [(7168, 5), (12288, 3)] {
            let params = Params::new(memory, iterations, 1, None).unwrap();
            let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"imported", &salt)
                .unwrap()
                .to_string();
            assert!(is_valid_phc(&phc), "{phc}");
            assert!(verify("imported", &phc).unwrap());
            assert!(!verify("other", &phc).unwrap());
        }
    }
}
