//! The password-failure lock: repeated wrong passwords for one account lock
//! its password logins for a while. Token logins never look at it, so
//! parallel CI pulls cannot lock anyone out.

use crate::records::{self, LockoutRecord};
use crate::store::Store;
use crate::Error;

/// Settings of the password-failure lock.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    /// Failures within `seconds` that lock password logins for `seconds`.
    pub threshold: u32,
    pub seconds: u64,
}

/// Whether `record` locks password logins at `now`.
pub(super) fn is_locked(record: Option<&LockoutRecord>, now: u64) -> bool {
    record
        .and_then(|record| record.locked_until)
        .is_some_and(|until| now < until)
}

/// Counts one more password failure. Several instances sharing the store
/// may race on this read-modify-write; the count can then lag by the number
/// of concurrent failures, which delays the lock by as many attempts but
/// never locks anyone wrongly.
pub(super) fn record_failure(
    store: &dyn Store,
    key: &str,
    previous: Option<LockoutRecord>,
    lockout: Lockout,
    now: u64,
) -> Result<(), Error> {
    let mut record = match previous {
        Some(record) if now < record.since.saturating_add(lockout.seconds) => record,
        _ => LockoutRecord {
            v: records::VERSION,
            failures: 0,
            since: now,
            locked_until: None,
        },
    };
    record.failures = record.failures.saturating_add(1);
    if lockout.threshold > 0 && record.failures >= lockout.threshold {
        record.locked_until = Some(now.saturating_add(lockout.seconds));
    }
    records::save(store, key, &record)?;
    Ok(())
}
