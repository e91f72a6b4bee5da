//! Issuing refresh tokens (checking them is in `authenticate::refresh`).
//!
//! An account holds at most [`MAX_PER_ACCOUNT`] live refresh tokens: each
//! new one revokes the oldest beyond that, and expired ones are dropped on
//! the way. The count lives in one index record per account, so issuing
//! never scans the store.

use crate::authenticate::{Authenticated, REFRESH_PREFIX};
use crate::records::{self, RefreshIndexEntry, RefreshIndexRecord, RefreshRecord};
use crate::store::Store;
use crate::{secret, Error};

/// Live refresh tokens one account may hold: one per machine and client an
/// account typically logs in from, with room to spare.
pub const MAX_PER_ACCOUNT: usize = 20;

/// Creates a refresh token for `caller` and `service`, valid for `ttl`
/// seconds, and stores its digest, bound to the credential it came from
/// (the API token, or the user's password epoch). Anonymous callers get
/// none. Revokes the account's oldest refresh tokens beyond
/// [`MAX_PER_ACCOUNT`].
pub fn issue(
    store: &dyn Store,
    caller: &Authenticated,
    service: &str,
    now: u64,
    ttl: u64,
) -> Result<String, Error> {
    let (Some(account), Some(kind)) = (caller.account(), caller.kind()) else {
        return Err(Error::bad_request(
            "a refresh token needs an authenticated caller",
        ));
    };
    let token = secret::new_token(REFRESH_PREFIX)?;
    let digest = secret::digest_hex(&token);
    let record = RefreshRecord {
        v: records::VERSION,
        account: account.to_string(),
        service: service.to_string(),
        kind,
        via_token: caller.via_token().map(str::to_string),
        password_epoch: caller.password_epoch().map(str::to_string),
        expires_at: now.saturating_add(ttl),
        created_at: now,
    };
    let index_key = records::refresh_index_key(account);
    let index: Option<RefreshIndexRecord> = records::load(store, &index_key)?;
    let mut entries = live_entries(store, index.map(|index| index.tokens), now)?;
    while entries.len() >= MAX_PER_ACCOUNT {
        let oldest = entries.remove(0);
        store.delete(&records::refresh_key(&oldest.id))?;
    }
    entries.push(RefreshIndexEntry {
        id: digest.clone(),
        expires_at: record.expires_at,
    });
    records::save(store, &records::refresh_key(&digest), &record)?;
    let index = RefreshIndexRecord {
        v: records::VERSION,
        tokens: entries,
    };
    records::save(store, &index_key, &index)?;
    Ok(token)
}

/// The entries whose refresh token still exists and has not expired;
/// expired ones are deleted from the store on the way.
fn live_entries(
    store: &dyn Store,
    entries: Option<Vec<RefreshIndexEntry>>,
    now: u64,
) -> Result<Vec<RefreshIndexEntry>, Error> {
    let mut live = Vec::new();
    for entry in entries.unwrap_or_default() {
        let key = records::refresh_key(&entry.id);
        if now >= entry.expires_at {
            store.delete(&key)?;
        } else if store.get(&key)?.is_some() {
            live.push(entry);
        }
    }
    Ok(live)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;
    use crate::authenticate::{
        authenticate_refresh, authenticate_secret, Lockout, PasswordSettings,
    };
    use crate::records::{encode, UserRecord};
    use crate::store::MemoryStore;

    const NOW: u64 = 1_800_000_000;
    const SETTINGS: PasswordSettings = PasswordSettings {
        lockout: Lockout {
            threshold: 0,
            seconds: 0,
        },
        cache_key: Some([3; 32]),
        cache_seconds: 10_000,
    };

    fn alice(store: &MemoryStore) -> Authenticated {
        let user = UserRecord {
            v: records::VERSION,
            password: crate::password::hash("right").unwrap(),
            groups: vec![],
            disabled: false,
            created_at: 0,
            id: Some("a".into()),
            password_epoch: Some("e".into()),
        };
        store.set("user/alice", &encode(&user)).unwrap();
        authenticate_secret(
            "alice",
            "right",
            store,
            &SETTINGS,
            &crate::authenticate::tests_support::workloads(),
            NOW,
        )
        .unwrap()
    }

    #[test]
    fn the_oldest_beyond_the_cap_are_revoked() {
        let store = MemoryStore::new();
        let caller = alice(&store);
        let tokens: Vec<String> = (0..MAX_PER_ACCOUNT + 5)
            .map(|i| issue(&store, &caller, "reg", NOW + i as u64, 1000).unwrap())
            .collect();
        assert_eq!(store.keys("refresh/").unwrap().len(), MAX_PER_ACCOUNT);
        for (i, token) in tokens.iter().enumerate() {
            assert_eq!(
                authenticate_refresh(token, "reg", &store, NOW + 30).is_ok(),
                i >= 5,
                "token {i}"
            );
        }
    }

    #[test]
    fn expired_and_revoked_ones_leave_the_index() {
        let store = MemoryStore::new();
        let caller = alice(&store);
        let short = issue(&store, &caller, "reg", NOW, 10).unwrap();
        let revoked = issue(&store, &caller, "reg", NOW, 1000).unwrap();
        store
            .delete(&records::refresh_key(&secret::digest_hex(&revoked)))
            .unwrap();
        let kept = issue(&store, &caller, "reg", NOW + 20, 1000).unwrap();
        let index: RefreshIndexRecord = records::load(&store, "refresh-of/alice").unwrap().unwrap();
        assert_eq!(index.tokens.len(), 1);
        assert_eq!(index.tokens[0].id, secret::digest_hex(&kept));
        assert_eq!(
            store
                .get(&records::refresh_key(&secret::digest_hex(&short)))
                .unwrap(),
            None,
            "expired record purged"
        );
    }
}
