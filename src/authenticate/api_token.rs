//! API tokens (personal, deploy, job): one key lookup by the secret's
//! digest, then the owner, who must still be the user the token was made
//! for.

use scopegate_policy::ScopeLimit;

use super::lockout::Lockout;
use super::{refuse, Authenticated, Via};
use crate::records::{self, LastUsedRecord, TokenRecord, UserRecord};
use crate::store::Store;
use crate::{secret, Error};

/// `last_used` of an API token is written at most this often (seconds), so
/// a busy CI token costs one store write an hour, not one per pull.
pub const LAST_USED_RESOLUTION: u64 = 3600;

/// A live API token: its record, its owner's groups and its parsed limits.
pub(super) struct LiveToken {
    pub record: TokenRecord,
    pub groups: Vec<String>,
    pub limits: Option<Vec<ScopeLimit>>,
}

/// Loads the token with this digest and checks that it is live: present,
/// not expired, and its owner an enabled user whose id is the one the token
/// was created for (a user deleted and created again is someone else).
pub(super) fn live_token(store: &dyn Store, digest: &str, now: u64) -> Result<LiveToken, Error> {
    let key = records::token_key(digest);
    let record: Option<TokenRecord> = records::load(store, &key)?;
    let Some(record) = record else {
        return Err(Error::Unauthorized("unknown or revoked token"));
    };
    if record.expires_at.is_some_and(|expiry| now >= expiry) {
        return Err(Error::Unauthorized("expired token"));
    }
    let owner: Option<UserRecord> = records::load(store, &records::user_key(&record.owner))?;
    let groups = match owner {
        None => return Err(Error::Unauthorized("token owner does not exist")),
        Some(owner) if owner.id != record.owner_id => {
            return Err(Error::Unauthorized(
                "token owner was deleted and created again",
            ))
        }
        Some(owner) if owner.disabled => return Err(Error::Unauthorized("token owner disabled")),
        Some(owner) => owner.groups,
    };
    let limits = parse_limits(&key, &record.limits)?;
    Ok(LiveToken {
        record,
        groups,
        limits,
    })
}

/// Checks an API token presented as a password; a token that is not live
/// costs the same work as a wrong password. Its last use is written
/// under its own key (at most once per [`LAST_USED_RESOLUTION`]), never
/// into the token record: a revocation racing this write stays a revocation.
pub(super) fn authenticate_api_token(
    secret: &str,
    store: &dyn Store,
    lockout: Lockout,
    now: u64,
) -> Result<Authenticated, Error> {
    let digest = secret::digest_hex(secret);
    let LiveToken {
        record,
        groups,
        limits,
    } = match live_token(store, &digest, now) {
        Ok(live) => live,
        // No 401 comes back sooner than a wrong password's.
        Err(Error::Unauthorized(reason)) => return Err(refuse(store, lockout, secret, reason)),
        Err(error) => return Err(error),
    };
    let last_used_key = records::last_used_key(&digest);
    let last_used: Option<LastUsedRecord> = records::load(store, &last_used_key)?;
    let last = last_used.map(|used| used.at).or(record.last_used);
    if last.is_none_or(|last| now >= last.saturating_add(LAST_USED_RESOLUTION)) {
        let used = LastUsedRecord {
            v: records::VERSION,
            at: now,
        };
        records::save(store, &last_used_key, &used)?;
    }
    Ok(Authenticated::new(
        record.owner,
        groups,
        record.kind,
        limits,
        Via::Token { digest },
    ))
}

fn parse_limits(key: &str, limits: &[String]) -> Result<Option<Vec<ScopeLimit>>, Error> {
    if limits.is_empty() {
        return Ok(None);
    }
    limits
        .iter()
        .map(|limit| {
            ScopeLimit::parse(limit).map_err(|error| {
                Error::unavailable(format!("unreadable limit in record {key}: {error}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
