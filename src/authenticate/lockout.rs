//! The password-failure lock: `threshold` wrong passwords for one account
//! within one window of `seconds` lock its password logins for `seconds`.
//! Token logins never look at it, so parallel CI pulls cannot lock anyone
//! out.
//!
//! Failures are counted with the store's atomic increment, so however many
//! instances take failures for one account at the same time, each is
//! counted once: the lock engages at exactly the threshold-th failure of a
//! window, never earlier and never later. Windows are fixed (they start at
//! multiples of `seconds`), so a burst that straddles two windows is counted
//! in both halves.

use crate::records::{self, LockoutRecord};
use crate::store::Store;
use crate::Error;

/// Settings of the password-failure lock.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    /// Failures within one window of `seconds` that lock password logins
    /// for `seconds`; 0 turns the lock off.
    pub threshold: u32,
    pub seconds: u64,
}

impl Lockout {
    /// The start of the counting window that holds `now`.
    fn window_start(self, now: u64) -> u64 {
        let seconds = self.seconds.max(1);
        now - now % seconds
    }
}

/// Whether `record` locks password logins at `now`.
pub(super) fn is_locked(record: Option<&LockoutRecord>, now: u64) -> bool {
    record
        .and_then(|record| record.locked_until)
        .is_some_and(|until| now < until)
}

/// Counts one more password failure for `account`; the failure that reaches
/// the threshold writes the lock. The first failure of a window removes the
/// previous window's counter, so an account keeps at most two.
pub(super) fn record_failure(
    store: &dyn Store,
    account: &str,
    lockout: Lockout,
    now: u64,
) -> Result<(), Error> {
    if lockout.threshold == 0 {
        return Ok(());
    }
    let window = lockout.window_start(now);
    let failures = store.increment(&records::failures_key(account, window), 1)?;
    if failures == 1 && window >= lockout.seconds {
        store.delete(&records::failures_key(account, window - lockout.seconds))?;
    }
    if failures >= i64::from(lockout.threshold) {
        let record = LockoutRecord {
            v: records::VERSION,
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
            since: window,
            locked_until: Some(now.saturating_add(lockout.seconds)),
        };
        records::save(store, &records::lockout_key(account), &record)?;
    }
    Ok(())
}

/// The key of the one counter that refusals without an account to count
/// against (unknown user, disabled or locked account, dead API token)
/// increment, so that every refusal costs the same store write as a wrong
/// password, and the store never grows with the names tried. No account
/// name contains a `-` followed by nothing else under `failures/`.
pub const DECOY_KEY: &str = "failures/-";

/// Spends the store work of [`record_failure`] on [`DECOY_KEY`].
pub(super) fn count_decoy(store: &dyn Store, lockout: Lockout) -> Result<(), Error> {
    if lockout.threshold > 0 {
        store.increment(DECOY_KEY, 1)?;
    }
    Ok(())
}

/// Forgets the failures of `account`'s current window after a right
/// password. Reads the counter only to see whether there is one, so a
/// login without failures writes nothing.
pub(super) fn clear_failures(
    store: &dyn Store,
    account: &str,
    lockout: Lockout,
    now: u64,
) -> Result<(), Error> {
    let key = records::failures_key(account, lockout.window_start(now));
    if store.get(&key)?.is_some() {
        store.delete(&key)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const LOCKOUT: Lockout = Lockout {
        threshold: 3,
        seconds: 100,
    };

    fn lock(store: &MemoryStore) -> Option<LockoutRecord> {
        records::load(store, &records::lockout_key("a")).unwrap()
    }

    #[test]
    fn the_threshold_th_failure_of_a_window_locks() {
        let store = MemoryStore::new();
        record_failure(&store, "a", LOCKOUT, 110).unwrap();
        record_failure(&store, "a", LOCKOUT, 150).unwrap();
        assert_eq!(lock(&store), None, "two failures do not lock");
        record_failure(&store, "a", LOCKOUT, 199).unwrap();
        let record = lock(&store).unwrap();
        assert_eq!(record.locked_until, Some(299));
        assert!(is_locked(Some(&record), 298));
        assert!(!is_locked(Some(&record), 299));
    }

    #[test]
    fn windows_are_counted_apart_and_old_counters_removed() {
        let store = MemoryStore::new();
        record_failure(&store, "a", LOCKOUT, 150).unwrap();
        record_failure(&store, "a", LOCKOUT, 199).unwrap();
        record_failure(&store, "a", LOCKOUT, 200).unwrap();
        assert_eq!(lock(&store), None, "2 + 1 in two windows");
        assert!(store.get("failures/a/100").unwrap().is_none(), "swept");
        assert!(store.get("failures/a/200").unwrap().is_some());
    }

    #[test]
    fn a_right_password_clears_the_window_and_writes_nothing_otherwise() {
        let store = MemoryStore::new();
        clear_failures(&store, "a", LOCKOUT, 150).unwrap();
        assert_eq!(store.writes(), 0);
        record_failure(&store, "a", LOCKOUT, 150).unwrap();
        record_failure(&store, "a", LOCKOUT, 160).unwrap();
        clear_failures(&store, "a", LOCKOUT, 170).unwrap();
        record_failure(&store, "a", LOCKOUT, 180).unwrap();
        record_failure(&store, "a", LOCKOUT, 190).unwrap();
        assert_eq!(lock(&store), None, "the count started again");
    }

    #[test]
    fn threshold_zero_counts_nothing() {
        let store = MemoryStore::new();
        let off = Lockout {
            threshold: 0,
            seconds: 100,
        };
        for now in 0..10 {
            record_failure(&store, "a", off, now).unwrap();
        }
        assert_eq!(store.writes(), 0);
    }
}
