//! Password logins: a user record, the failure lock, and one argon2 check
//! (or a recent verification remembered under a keyed MAC).

use scopegate_policy::CredentialKind;

use super::lockout::{clear_failures, is_locked, record_failure};
use super::{is_valid_account, refuse, Authenticated, PasswordSettings, Via};
use crate::records::{self, LockoutRecord, UserRecord};
use crate::store::Store;
use crate::{password, Error};

/// Checks `username` and `password`. Every refusal spends the same work
/// (one argon2 run of [`password::WORK`] and one counted failure) and is
/// the same 401 to the client.
///
/// Writes only bookkeeping that grants nothing: the failure count (and the
/// lock), a marker for a verified password, and, once, the user record
/// with an imported bcrypt hash replaced by argon2id ([`rehash`]).
pub(super) fn authenticate_password(
    username: &str,
    password: &str,
    store: &dyn Store,
    settings: &PasswordSettings,
    now: u64,
) -> Result<Authenticated, Error> {
    let lockout = settings.lockout;
    if !is_valid_account(username) {
        return Err(refuse(store, lockout, password, "unknown user"));
    }
    let lockout_key = records::lockout_key(username);
    let lock: Option<LockoutRecord> = records::load(store, &lockout_key)?;
    if is_locked(lock.as_ref(), now) {
        let reason = "account locked after repeated failures";
        return Err(refuse(store, lockout, password, reason));
    }
    let user: Option<UserRecord> = records::load(store, &records::user_key(username))?;
    let Some(user) = user else {
        return Err(refuse(store, lockout, password, "unknown user"));
    };
    if user.disabled {
        return Err(refuse(store, lockout, password, "account disabled"));
    }
    let marker = settings
        .cache_key
        .map(|key| password::cache_marker_key(&key, username, password, &user.password));
    let is_remembered = match &marker {
        Some(marker) => password::is_remembered(store, marker, now)?,
        None => false,
    };
    if !is_remembered {
        if !password::verify(password, &user.password)? {
            record_failure(store, username, settings.lockout, now)?;
            return Err(Error::Unauthorized("wrong password"));
        }
        if password::needs_rehash(&user.password) {
            rehash(store, username, password, &user);
        }
        if let Some(marker) = &marker {
            password::remember(store, marker, now.saturating_add(settings.cache_seconds))?;
        }
    }
    clear_failures(store, username, settings.lockout, now)?;
    if lock.is_some() {
        store.delete(&lockout_key)?;
    }
    Ok(Authenticated::new(
        username.to_string(),
        user.groups,
        CredentialKind::Password,
        None,
        Via::Password {
            epoch: user.password_epoch,
        },
    ))
}

/// Replaces `user`'s imported (bcrypt) hash by an argon2id hash of the
/// password just verified, keeping everything else, the password epoch
/// included: the password did not change, so its refresh tokens live on.
/// Only if the stored record is still the one verified (an admin may have
/// changed it meanwhile). Best effort: if the store or the randomness fail,
/// the login stands and the next one tries again.
fn rehash(store: &dyn Store, username: &str, password: &str, user: &UserRecord) {
    let key = records::user_key(username);
    let Ok(new_hash) = password::hash(password) else {
        return;
    };
    let current: Result<Option<UserRecord>, Error> = records::load(store, &key);
    if !matches!(&current, Ok(Some(current)) if current == user) {
        return;
    }
    let record = UserRecord {
        password: new_hash,
        ..user.clone()
    };
    let _ = records::save(store, &key, &record);
}
