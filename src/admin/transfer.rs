//! Moving the store: `GET /admin/store/export` hands out every durable
//! record in pages, `POST /admin/store/import` writes a batch of them back,
//! so `scopegate store export` / `import` can back up a store or move it to
//! another backend (SQLite to Redis) through any instance.
//!
//! Durable records are users, API-token and refresh-token digests with their
//! bookkeeping (`last-used/`, `refresh-of/`), and on request the OIDC key
//! caches (`jwks/`). Lockout counters, failure windows and verified-password
//! markers are never exported and never imported: they are per-store state
//! that grants nothing and is rebuilt on use.
//!
//! A record travels as `{"key": "...", "record": {...}}`, the stored JSON
//! value itself. An import checks the whole batch first (known key shape,
//! a record this build reads, version included) and writes nothing when any
//! record fails; records equal to what the store holds are left alone, so
//! importing the same file twice changes nothing the second time.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::authenticate::is_valid_account;
use crate::oidc::jwks::JwksRecord;
use crate::records::{
    self, LastUsedRecord, RefreshIndexRecord, RefreshRecord, TokenRecord, UserRecord,
};
use crate::store::Store;
use crate::Error;

/// Most records in one export page.
pub const MAX_PAGE: usize = 500;

/// The kinds of durable record, by key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Token,
    LastUsed,
    Refresh,
    RefreshIndex,
    OidcKeys,
}

const KINDS: &[(&str, Kind)] = &[
    ("user/", Kind::User),
    ("token/", Kind::Token),
    ("last-used/", Kind::LastUsed),
    ("refresh/", Kind::Refresh),
    ("refresh-of/", Kind::RefreshIndex),
    ("jwks/", Kind::OidcKeys),
];

impl Kind {
    /// The kind of `key` and the name after its prefix, when the key is one
    /// of a durable record with a well-formed name.
    fn of(key: &str) -> Option<Kind> {
        let (prefix, kind) = KINDS.iter().find(|(prefix, _)| key.starts_with(prefix))?;
        let name = &key[prefix.len()..];
        let is_digest = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        let is_well_formed = match kind {
            Kind::User | Kind::RefreshIndex => is_valid_account(name),
            Kind::Token | Kind::LastUsed | Kind::Refresh => is_digest,
            Kind::OidcKeys => {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            }
        };
        is_well_formed.then_some(*kind)
    }

    /// Whether `bytes` is a record of this kind that this build reads.
    fn check(self, key: &str, bytes: &[u8]) -> Result<(), String> {
        let checked = match self {
            Kind::User => records::decode::<UserRecord>(key, bytes).map(drop),
            Kind::Token => records::decode::<TokenRecord>(key, bytes).map(drop),
            Kind::LastUsed => records::decode::<LastUsedRecord>(key, bytes).map(drop),
            Kind::Refresh => records::decode::<RefreshRecord>(key, bytes).map(drop),
            Kind::RefreshIndex => records::decode::<RefreshIndexRecord>(key, bytes).map(drop),
            Kind::OidcKeys => records::decode::<JwksRecord>(key, bytes).map(drop),
        };
        checked.map_err(|error| error.to_string())
    }
}

/// One record as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub key: String,
    pub record: Value,
}

/// A batch to import.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub records: Vec<Entry>,
}

/// One page of the export: the records whose keys sort after `after`, at
/// most `limit` (1 to [`MAX_PAGE`]), with OIDC key caches when
/// `with_oidc_keys`. The answer's `next` is the key to ask after, or null on
/// the last page. A record that does not read is an error naming its key:
/// an export never silently leaves a record behind.
pub fn export(
    store: &dyn Store,
    after: Option<&str>,
    limit: usize,
    with_oidc_keys: bool,
) -> Result<Value, Error> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let mut keys = Vec::new();
    for (prefix, kind) in KINDS {
        if *kind == Kind::OidcKeys && !with_oidc_keys {
            continue;
        }
        keys.extend(
            store
                .keys(prefix)?
                .into_iter()
                .filter(|key| Kind::of(key) == Some(*kind)),
        );
    }
    keys.sort();
    keys.retain(|key| after.is_none_or(|after| key.as_str() > after));
    let is_last = keys.len() <= limit;
    keys.truncate(limit);
    let mut entries = Vec::with_capacity(keys.len());
    for key in &keys {
        // A key listed a moment ago may be gone (revoked meanwhile): skip it.
        let Some(bytes) = store.get(key)? else {
            continue;
        };
        let record = serde_json::from_slice(&bytes)
            .map_err(|error| Error::unavailable(format!("record {key} does not parse: {error}")))?;
        entries.push(Entry {
            key: key.clone(),
            record,
        });
    }
    let next = match (is_last, keys.last()) {
        (false, Some(last)) => json!(last),
        _ => Value::Null,
    };
    Ok(json!({ "records": entries, "next": next }))
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// Records the store did not have.
    pub written: usize,
    /// Records the store had with another value, now replaced.
    pub replaced: usize,
    /// Records the store already had exactly.
    pub unchanged: usize,
}

/// Writes `batch` into `store` after checking every record of it: an
/// unknown key, a lockout or marker key, or a record this build does not
/// read (another version) refuses the whole batch with a 400 naming the
/// record's position and key, and nothing is written.
pub fn import(store: &dyn Store, batch: &Batch) -> Result<Imported, Error> {
    let mut checked = Vec::with_capacity(batch.records.len());
    for (index, entry) in batch.records.iter().enumerate() {
        let refuse = |why: String| {
            Error::bad_request(format!("record {} ({}): {why}", index + 1, entry.key))
        };
        let kind = Kind::of(&entry.key)
            .ok_or_else(|| refuse("not a key of a durable record".to_string()))?;
        let bytes = serde_json::to_vec(&entry.record).map_err(|error| refuse(error.to_string()))?;
        kind.check(&entry.key, &bytes).map_err(refuse)?;
        checked.push((entry, bytes));
    }
    let mut imported = Imported::default();
    for (entry, bytes) in checked {
        let existing = store.get(&entry.key)?;
        let existing: Option<Value> =
            existing.and_then(|bytes| serde_json::from_slice(&bytes).ok());
        match existing {
            Some(value) if value == entry.record => imported.unchanged += 1,
            Some(_) => {
                store.set(&entry.key, &bytes)?;
                imported.replaced += 1;
            }
            None => {
                store.set(&entry.key, &bytes)?;
                imported.written += 1;
            }
        }
    }
    Ok(imported)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn seeded() -> MemoryStore {
        let store = MemoryStore::new();
        let rows: &[(&str, &str)] = &[
            ("user/alice", r#"{"v":1,"password":"p","groups":["team"]}"#),
            ("user/bob", r#"{"v":1,"password":"q"}"#),
            (
                &format!("token/{DIGEST}"),
                r#"{"v":1,"kind":"deploy","owner":"alice","name":"ci","created_at":1}"#,
            ),
            (&format!("last-used/{DIGEST}"), r#"{"v":1,"at":7}"#),
            ("lockout/alice", r#"{"v":1,"until":99}"#),
            ("verified/whatever", r#"{"v":1}"#),
            (
                "jwks/github",
                r#"{"v":1,"issuer":"i","jwks_url":"u","fetched_at":0,"checked_at":0,"keys":[]}"#,
            ),
        ];
        for (key, value) in rows {
            store.set(key, value.as_bytes()).unwrap();
        }
        store.increment("failures/alice/0", 3).unwrap();
        store
    }

    fn keys(page: &Value) -> Vec<String> {
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["key"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn export_pages_through_durable_records_only() {
        let store = seeded();
        let first = export(&store, None, 2, false).unwrap();
        assert_eq!(
            keys(&first),
            [format!("last-used/{DIGEST}"), format!("token/{DIGEST}")]
        );
        let next = first["next"].as_str().unwrap();
        let second = export(&store, Some(next), 2, false).unwrap();
        assert_eq!(keys(&second), ["user/alice", "user/bob"]);
        // Exactly as many as remain: the last page says so.
        assert_eq!(second["next"], Value::Null);
        let with_keys = export(&store, None, MAX_PAGE, true).unwrap();
        assert!(keys(&with_keys).contains(&"jwks/github".to_string()));
        assert_eq!(keys(&with_keys).len(), 5);
        assert!(export(&store, None, 0, false).is_err());
        assert!(export(&store, None, MAX_PAGE + 1, false).is_err());
    }

    #[test]
    fn an_export_imports_into_an_empty_store_and_a_second_import_changes_nothing() {
        let source = seeded();
        let page = export(&source, None, MAX_PAGE, true).unwrap();
        let batch = Batch {
            records: serde_json::from_value(page["records"].clone()).unwrap(),
        };
        let target = MemoryStore::new();
        let first = import(&target, &batch).unwrap();
        assert_eq!(first.written, 5);
        let writes = target.writes();
        let second = import(&target, &batch).unwrap();
        assert_eq!(
            second,
            Imported {
                written: 0,
                replaced: 0,
                unchanged: 5
            }
        );
        assert_eq!(target.writes(), writes, "a second import writes nothing");
        assert_eq!(
            target
                .get("user/alice")
                .unwrap()
                .map(|b| serde_json::from_slice::<Value>(&b).unwrap()),
            source
                .get("user/alice")
                .unwrap()
                .map(|b| serde_json::from_slice::<Value>(&b).unwrap())
        );
        assert!(target.get("lockout/alice").unwrap().is_none());
    }

    #[test]
    fn a_bad_record_refuses_the_whole_batch_and_names_it() {
        let cases: &[(&str, Value, &str)] = &[
            ("user/carol", json!({"v": 2, "password": "p"}), "version 2"),
            (
                "lockout/alice",
                json!({"v": 1, "until": 9}),
                "not a key of a durable record",
            ),
            (
                "verified/x",
                json!({"v": 1}),
                "not a key of a durable record",
            ),
            (
                "token/short",
                json!({"v": 1}),
                "not a key of a durable record",
            ),
            (
                "user/Alice!",
                json!({"v": 1, "password": "p"}),
                "not a key of a durable record",
            ),
            (
                "user/dave",
                json!({"v": 1, "password": "p", "admin": true}),
                "admin",
            ),
        ];
        for (key, record, reason) in cases {
            let store = MemoryStore::new();
            let batch = Batch {
                records: vec![
                    Entry {
                        key: "user/fine".to_string(),
                        record: json!({"v": 1, "password": "p"}),
                    },
                    Entry {
                        key: key.to_string(),
                        record: record.clone(),
                    },
                ],
            };
            let error = import(&store, &batch).unwrap_err();
            let text = format!("{error:?}");
            assert!(
                text.contains("record 2") && text.contains(reason),
                "{key}: {text}"
            );
            assert_eq!(store.writes(), 0, "{key}: nothing written");
        }
    }

    #[test]
    fn an_import_replaces_a_record_that_differs() {
        let store = MemoryStore::new();
        store
            .set("user/alice", br#"{"v":1,"password":"old"}"#)
            .unwrap();
        let batch = Batch {
            records: vec![Entry {
                key: "user/alice".to_string(),
                record: json!({"v": 1, "password": "new"}),
            }],
        };
        assert_eq!(import(&store, &batch).unwrap().replaced, 1);
        let stored: UserRecord =
            records::decode("user/alice", &store.get("user/alice").unwrap().unwrap()).unwrap();
        assert_eq!(stored.password, "new");
    }
}
