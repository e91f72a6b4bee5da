//! bcrypt hashes, as htpasswd (`htpasswd -B`), cesanta/docker_auth and
//! GitLab store them: accepted so that users move to scopegate with their
//! passwords, then replaced by argon2id on their first successful login
//! (`authenticate/password.rs`), so imported hashes fade out.
//!
//! The cost is bounded to what real deployments use (`htpasswd -B` defaults
//! to 5, GitLab to 10): [`MIN_COST`] to [`MAX_COST`]. A higher cost is
//! refused at import and at login (a 401 saying why, after the same work
//! as an unknown user's refusal), so no stored value can make a request
//! run for seconds. A bcrypt check costs what its cost says, not argon2's
//! work; a refused password of a cost below [`PADDED_BELOW`] is followed by
//! an unknown user's work too, so that no refusal is much faster than an
//! unknown user's (cost 5 took 4 ms in the component, argon2's work 63 ms).
//! Costs from 10 up take about as long as argon2 or longer: the README
//! states the difference as the price of the transition.

use crate::Error;

/// The cheapest cost accepted (bcrypt's own minimum).
pub const MIN_COST: u32 = 4;
/// The dearest cost accepted: 2^12 rounds of the key schedule.
pub const MAX_COST: u32 = 12;
/// Refusals of hashes cheaper than this also spend an unknown user's work.
pub const PADDED_BELOW: u32 = 10;

/// Whether `stored` is a bcrypt hash (`$2a$`, `$2b$` or `$2y$`), valid or not.
pub fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| stored.starts_with(prefix))
}

/// The cost of a well-formed bcrypt hash within the accepted band; the
/// error names what is wrong, for the admin. Runs nothing.
pub fn check(stored: &str) -> Result<u32, String> {
    let rest = stored
        .get(4..)
        .filter(|_| is_bcrypt(stored))
        .ok_or_else(|| "not a bcrypt hash ($2a$, $2b$ or $2y$)".to_string())?;
    let (cost, salt_and_hash) = rest
        .split_once('$')
        .ok_or_else(|| "bcrypt hash has no cost".to_string())?;
    let cost: u32 = cost
        .parse()
        .ok()
        .filter(|_| cost.len() == 2)
        .ok_or_else(|| format!("bcrypt cost {cost:?} is not two digits"))?;
    if !(MIN_COST..=MAX_COST).contains(&cost) {
        return Err(format!(
            "bcrypt cost {cost} is outside {MIN_COST}..={MAX_COST}"
        ));
    }
    let is_base64 = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    if salt_and_hash.len() != 53 || !salt_and_hash.chars().all(is_base64) {
        return Err("bcrypt salt and hash must be 53 characters of bcrypt's base64".to_string());
    }
    Ok(cost)
}

/// Whether `password` matches the bcrypt hash `stored`. A hash outside the
/// band is a 401 after an unknown user's work, never run; a mismatch below
/// [`PADDED_BELOW`] spends that work too.
pub fn verify(password: &str, stored: &str) -> Result<bool, Error> {
    let Ok(cost) = check(stored) else {
        super::waste_equal_work(password);
        return Err(Error::Unauthorized(
            "stored bcrypt hash is outside the accepted costs; reset the password",
        ));
    };
    let is_match = ::bcrypt::verify(password, stored)
        .map_err(|_| Error::unavailable("stored bcrypt hash cannot be read"))?;
    if !is_match && cost < PADDED_BELOW {
        super::waste_equal_work(password);
    }
    Ok(is_match)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    /// `htpasswd -nbB alice alice-password` (Apache's htpasswd, cost 5).
    const HTPASSWD_ALICE: &str = "$2y$05$Sb7fX/NPr2mnOID/wCY1eeW3hJ/4/yudAXHJvB4f1YUVEq.M/zOBi";

    #[test]
    fn verifies_every_prefix_at_the_costs_deployments_use() {
        for cost in [4, 5, 10] {
            let hash = ::bcrypt::hash_with_salt("pw", cost, [9; 16]).unwrap();
            for version in [
                ::bcrypt::Version::TwoA,
                ::bcrypt::Version::TwoB,
                ::bcrypt::Version::TwoY,
            ] {
                let stored = hash.format_for_version(version);
                assert_eq!(check(&stored), Ok(cost), "{stored}");
                assert!(verify("pw", &stored).unwrap(), "{stored}");
                assert!(!verify("pW", &stored).unwrap(), "{stored}");
            }
        }
    }

    #[test]
    fn an_htpasswd_line_from_apache_verifies() {
        assert_eq!(check(HTPASSWD_ALICE), Ok(5));
        assert!(verify("alice-password", HTPASSWD_ALICE).unwrap());
        assert!(!verify("alice", HTPASSWD_ALICE).unwrap());
    }

    #[test]
    fn costs_outside_the_band_and_malformed_hashes_are_refused_unrun() {
        let salt_and_hash = &HTPASSWD_ALICE[7..];
        for (stored, reason) in [
            (format!("$2y$13${salt_and_hash}"), "outside"),
            (format!("$2y$31${salt_and_hash}"), "outside"),
            (format!("$2y$03${salt_and_hash}"), "outside"),
            (format!("$2y$5${salt_and_hash}"), "two digits"),
            (format!("$2y$xx${salt_and_hash}"), "two digits"),
            ("$2y$05$short".to_string(), "53 characters"),
            (format!("$2x$05${salt_and_hash}"), "not a bcrypt"),
            ("$2y$".to_string(), "no cost"),
        ] {
            let error = check(&stored).unwrap_err();
            assert!(error.contains(reason), "{stored}: {error}");
            assert!(
                matches!(verify("pw", &stored), Err(Error::Unauthorized(_))),
                "{stored}"
            );
        }
    }
}
