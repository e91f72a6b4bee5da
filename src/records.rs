//! What scopegate keeps in the key-value store: versioned JSON records.
//!
//! Key layout (one key lookup per credential check):
//! - `user/<account>`: [`UserRecord`]
//! - `token/<sha256 hex of the secret>`: [`TokenRecord`] (personal, deploy, job)
//! - `refresh/<sha256 hex of the secret>`: [`RefreshRecord`]
//! - `last-used/<sha256 hex>`: [`LastUsedRecord`] of an API token
//! - `refresh/<sha256 hex of the secret>`: [`RefreshRecord`]
//! - `refresh-of/<account>`: [`RefreshIndexRecord`], an account's refresh tokens
//! - `lockout/<account>`: [`LockoutRecord`], present only while locked
//! - `failures/<account>/<window start>`: a counter of password failures
//!   (`Store::increment`), present only after failures
//! - `verified/<keyed MAC>`: [`VerifiedRecord`], a recently verified password
//!
//! Every record carries `"v": 1`. A record that does not parse, or carries a
//! version this build does not know, is a [`RecordError`]: the request fails
//! closed with a 503 and the key in the log, never a panic and never a grant.
//!
//! The authentication path never writes a user or token record: what it
//! writes (`last-used/`, `lockout/`, `failures/`, `verified/`, `refresh/`, `refresh-of/`)
//! is bookkeeping that grants nothing by itself, so a write racing an admin
//! deletion cannot bring a credential back.
//!
//! Identity stamps: [`UserRecord::id`] and [`UserRecord::password_epoch`]
//! are random values the admin API sets. Records written before they
//! existed have neither; an absent stamp equals only another absent stamp,
//! so an old token still works for its old (never re-created) owner, and
//! nothing this version writes can match it by accident.

use scopegate_policy::CredentialKind;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::store::{Store, StoreError};

/// The only record version this build reads and writes.
pub const VERSION: u32 = 1;

/// The store key of a user record.
pub fn user_key(account: &str) -> String {
    format!("user/{account}")
}

/// The store key of an API token record, from the secret's digest.
pub fn token_key(digest: &str) -> String {
    format!("token/{digest}")
}

/// The store key of a refresh token record, from the secret's digest.
pub fn refresh_key(digest: &str) -> String {
    format!("refresh/{digest}")
}

/// The store key of an API token's last use, from the secret's digest.
pub fn last_used_key(digest: &str) -> String {
    format!("last-used/{digest}")
}

/// The store key of the list of an account's refresh tokens.
pub fn refresh_index_key(account: &str) -> String {
    format!("refresh-of/{account}")
}

/// The store key of an account's password lock ([`LockoutRecord`]).
pub fn lockout_key(account: &str) -> String {
    format!("lockout/{account}")
}

/// The prefix of an account's password-failure counters.
pub fn failures_prefix(account: &str) -> String {
    format!("failures/{account}/")
}

/// The store key of an account's password-failure counter for the window
/// that starts at `window_start` (a counter: see `Store::increment`).
pub fn failures_key(account: &str, window_start: u64) -> String {
    format!("{}{window_start}", failures_prefix(account))
}

/// A user who logs in with a password.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub v: u32,
    /// argon2id PHC string, or an imported bcrypt hash until the next login.
    pub password: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub created_at: u64,
    /// Random id given when the user is created, never changed: API tokens
    /// carry it, so a user deleted and created again under the same name
    /// does not inherit the old user's tokens. `None` on records written
    /// before ids existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Random value replaced whenever the password is set and whenever the
    /// user is disabled: refresh tokens obtained with the password carry it
    /// and die when it changes. `None` on records written before epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_epoch: Option<String>,
}

/// A personal, deploy or job token. The secret itself is never stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    pub v: u32,
    pub kind: CredentialKind,
    /// The account the token acts as (`sub` of its tokens): an existing user.
    pub owner: String,
    /// [`UserRecord::id`] of the owner when the token was created; the token
    /// is refused when the owner's record carries another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    pub name: String,
    /// Scope limits in policy pattern syntax; empty means no limit beyond policy.
    #[serde(default)]
    pub limits: Vec<String>,
    /// Unix seconds after which the token is refused; `None` never expires.
    #[serde(default)]
    pub expires_at: Option<u64>,
    pub created_at: u64,
    /// Last use as written by builds that kept it in the token record; now
    /// read only (see [`LastUsedRecord`]), and never written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<u64>,
}

/// When an API token was last used, under its own key so that writing it
/// can never re-create a revoked token record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LastUsedRecord {
    pub v: u32,
    /// Unix seconds, updated at most once per
    /// [`crate::authenticate::LAST_USED_RESOLUTION`].
    pub at: u64,
}

/// A refresh token, bound to the account, service and credential it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RefreshRecord {
    pub v: u32,
    pub account: String,
    pub service: String,
    pub kind: CredentialKind,
    /// Digest of the API token this refresh token was issued through; the
    /// refresh token dies with it and keeps its limits.
    #[serde(default)]
    pub via_token: Option<String>,
    /// For a refresh token obtained with a password: the user's
    /// [`UserRecord::password_epoch`] then. It must still match at use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_epoch: Option<String>,
    pub expires_at: u64,
    pub created_at: u64,
}

/// The refresh tokens issued to one account, oldest first, so the count can
/// be capped without scanning the store. It may lag behind the records
/// (a concurrent issue can drop an entry; an admin revocation leaves one
/// behind); it is pruned against them on every issue and grants nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RefreshIndexRecord {
    pub v: u32,
    pub tokens: Vec<RefreshIndexEntry>,
}

/// One entry of a [`RefreshIndexRecord`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RefreshIndexEntry {
    /// Digest of the refresh token (its `refresh/` key without the prefix).
    pub id: String,
    pub expires_at: u64,
}

/// Recent password failures of one account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LockoutRecord {
    pub v: u32,
    pub failures: u32,
    /// Start of the window in which `failures` were counted.
    pub since: u64,
    /// Password logins are refused until then.
    #[serde(default)]
    pub locked_until: Option<u64>,
}

/// A password verified recently: see `password::cache_marker_key`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VerifiedRecord {
    pub v: u32,
    pub expires_at: u64,
}

/// A stored value that this build cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unreadable record {}: {}", self.key, self.reason)
    }
}

impl From<RecordError> for crate::Error {
    fn from(error: RecordError) -> Self {
        crate::Error::unavailable(error)
    }
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// Decodes a record, checking its version first so that a newer record
/// reports "version 2" rather than a confusing field error.
pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, RecordError> {
    let error = |reason: String| RecordError {
        key: key.to_string(),
        reason,
    };
    let version: VersionOnly =
        serde_json::from_slice(bytes).map_err(|e| error(format!("not a record: {e}")))?;
    if version.v != VERSION {
        return Err(error(format!(
            "record version {} is not supported by this build (expects {VERSION})",
            version.v
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| error(e.to_string()))
}

/// Encodes a record for the store.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Serializing these plain structs into a Vec cannot fail.
    serde_json::to_vec(record).unwrap_or_default()
}

/// Reads and decodes the record under `key`.
pub fn load<T: DeserializeOwned>(store: &dyn Store, key: &str) -> Result<Option<T>, crate::Error> {
    match store.get(key)? {
        None => Ok(None),
        Some(bytes) => Ok(Some(decode(key, &bytes)?)),
    }
}

/// Encodes and writes `record` under `key`.
pub fn save<T: Serialize>(store: &dyn Store, key: &str, record: &T) -> Result<(), StoreError> {
    store.set(key, &encode(record))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn user_record_round_trips() {
        let user = UserRecord {
            v: VERSION,
            password: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            groups: vec!["team".into()],
            disabled: false,
            created_at: 5,
            id: Some("u1".into()),
            password_epoch: None,
        };
        let decoded: UserRecord = decode("user/a", &encode(&user)).unwrap();
        assert_eq!(decoded, user);
    }

    #[test]
    fn records_without_stamps_still_read_and_write_the_same() {
        let legacy = br#"{"v":1,"kind":"deploy","owner":"ci","name":"x","limits":[],"expires_at":null,"created_at":0,"last_used":7}"#;
        let token: TokenRecord = decode("token/a", legacy).unwrap();
        assert_eq!(token.owner_id, None);
        assert_eq!(token.last_used, Some(7));
        let user: UserRecord = decode("user/a", br#"{"v":1,"password":"p"}"#).unwrap();
        assert_eq!((user.id, user.password_epoch), (None, None));
        assert_eq!(
            String::from_utf8(encode(&UserRecord {
                v: VERSION,
                password: "p".into(),
                groups: vec![],
                disabled: false,
                created_at: 0,
                id: None,
                password_epoch: None,
            }))
            .unwrap(),
            r#"{"v":1,"password":"p","groups":[],"disabled":false,"created_at":0}"#,
            "absent stamps are not written"
        );
    }

    #[test]
    fn unreadable_records_are_typed_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "not a record"),
            (b"[1,2]", "not a record"),
            (
                b"{\"v\":2,\"password\":\"x\"}",
                "record version 2 is not supported",
            ),
            (b"{\"v\":1}", "missing field"),
            (
                b"{\"v\":1,\"password\":\"x\",\"admin\":true}",
                "unknown field",
            ),
            (b"\xff\xfe", "not a record"),
        ];
        for (bytes, expected) in cases {
            let error = decode::<UserRecord>("user/a", bytes).unwrap_err();
            assert!(error.reason.contains(expected), "{bytes:?}: {error}");
            assert_eq!(error.key, "user/a");
        }
    }
}
