//! Registry tokens cached per (registry, credential, scopes) in the user's cache directory
//! (`$XDG_CACHE_HOME/scopegate/tokens`, else `~/.cache/scopegate/tokens`), so a script
//! that asks again and again talks to the token server once every few minutes.
//!
//! Security-sensitive: cached tokens are bearer credentials. The directory is mode 0700
//! and each file 0600; a file name is a SHA-256 over the registry, the credential (itself
//! only as a digest) and the scopes, so neither names nor secrets show. A directory that
//! is already there is used only when it is the user's own and private (else the cache is
//! skipped with a warning, and the directory left alone), and entries are opened without
//! following symlinks.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::private_files::{
    check_private_dir, create_private_dir, read_no_follow, scopegate_directory, write_private,
};

/// A cached token is not handed out later than this many seconds before its `exp`.
pub const EXPIRY_MARGIN_SECS: u64 = 30;

/// What one cache file holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// Format version; other versions are ignored.
    pub v: u32,
    pub token: String,
    /// When the token was fetched, in Unix seconds.
    pub fetched_at: u64,
    /// When the token expires, in Unix seconds.
    pub expires_at: u64,
    pub realm: String,
    pub service: String,
}

impl Entry {
    /// Whether the entry may be handed out at `now`: until [`EXPIRY_MARGIN_SECS`] before
    /// it expires, and at most `ttl` seconds after it was fetched.
    pub fn is_fresh(&self, now: u64, ttl: u64) -> bool {
        now >= self.fetched_at
            && now < self.fetched_at.saturating_add(ttl)
            && now.saturating_add(EXPIRY_MARGIN_SECS) < self.expires_at
    }
}

/// The token cache directory, or `None` when neither `XDG_CACHE_HOME` nor `HOME` is set.
pub fn directory() -> Option<PathBuf> {
    scopegate_directory("XDG_CACHE_HOME", ".cache", "tokens")
}

/// The token cache directory if it may be used: missing (it will be created private), or
/// owned by the current user with no access for group or others. Otherwise `None`, with a
/// warning on stderr saying why.
pub fn private_directory() -> Option<PathBuf> {
    let dir = directory()?;
    match check_private_dir(&dir) {
        Ok(()) => Some(dir),
        Err(error) => {
            eprintln!("warning: not using the token cache: {error:#}");
            None
        }
    }
}

/// The cache file for `registry`, a credential identity (see `Credential::cache_identity`)
/// and the scopes in canonical form.
pub fn file_for(dir: &Path, registry: &str, credential: &str, scopes: &[String]) -> PathBuf {
    let mut sorted: Vec<&str> = scopes.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut hasher = Sha256::new();
    for part in [registry, credential].into_iter().chain(sorted) {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let name: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    dir.join(format!("{name}.json"))
}

/// The entry in `file` if it is there, readable, of this version and fresh at `now`.
/// Anything else is a miss: the cache never makes a command fail.
/// A symlink, or a token no realm could have given (see `check_token_text`), is a miss too.
pub fn read(file: &Path, now: u64, ttl: u64) -> Option<Entry> {
    let text = read_no_follow(file).ok()?;
    let entry: Entry = serde_json::from_slice(&text).ok()?;
    (entry.v == 1
        && entry.is_fresh(now, ttl)
        && super::token_flow::check_token_text(&entry.token).is_ok())
    .then_some(entry)
}

/// Stores `entry` in `file`, creating the directory (0700) as needed.
pub fn write(file: &Path, entry: &Entry) -> Result<()> {
    if let Some(dir) = file.parent() {
        create_private_dir(dir)?;
    }
    let text = serde_json::to_vec(entry).context("encoding a cache entry")?;
    write_private(file, &text)
}

/// Removes the entries in `dir` whose token has expired by `now` (and leftovers that are
/// not entries), so bearer tokens do not pile up on disk. Best effort: errors are ignored.
pub fn prune(dir: &Path, now: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for file in entries.flatten().map(|entry| entry.path()) {
        if file.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let is_expired = read_no_follow(&file)
            .ok()
            .and_then(|text| serde_json::from_slice::<Entry>(&text).ok())
            .is_none_or(|entry| entry.expires_at <= now);
        if is_expired {
            let _ = std::fs::remove_file(&file);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests: a panic is how a test fails"
    )]

    use super::*;

    fn entry(fetched_at: u64, expires_at: u64) -> Entry {
        Entry {
            v: 1,
            token: "t".into(),
            fetched_at,
            expires_at,
            realm: "https://auth/token".into(),
            service: "s".into(),
        }
    }

    #[test]
    fn freshness_is_the_ttl_and_thirty_seconds_before_exp() {
        // (fetched_at, expires_at, now, ttl, fresh)
        let cases = [
            (1000, 1300, 1000, 180, true),
            (1000, 1300, 1179, 180, true),
            (1000, 1300, 1180, 180, false), // the TTL is over
            (1000, 1100, 1069, 180, true),
            (1000, 1100, 1070, 180, false), // 30 s before exp
            (1000, 1300, 999, 180, false),  // fetched in the future: a clock jump
            (1000, 1300, 1000, 0, false),
        ];
        for (fetched_at, expires_at, now, ttl, fresh) in cases {
            assert_eq!(
                entry(fetched_at, expires_at).is_fresh(now, ttl),
                fresh,
                "{fetched_at} {expires_at} {now} {ttl}"
            );
        }
    }

    #[test]
    fn files_differ_per_registry_credential_and_scopes_but_not_scope_order() {
        let dir = Path::new("/c");
        let a = file_for(dir, "r", "basic:alice", &["x".into(), "y".into()]);
        assert_eq!(
            a,
            file_for(dir, "r", "basic:alice", &["y".into(), "x".into()])
        );
        assert_ne!(
            a,
            file_for(dir, "r2", "basic:alice", &["x".into(), "y".into()])
        );
        assert_ne!(
            a,
            file_for(dir, "r", "basic:bob", &["x".into(), "y".into()])
        );
        assert_ne!(a, file_for(dir, "r", "basic:alice", &["x".into()]));
        // Length-prefixed: moving a boundary changes the name.
        assert_ne!(file_for(dir, "ab", "c", &[]), file_for(dir, "a", "bc", &[]));
    }

    #[test]
    fn written_entries_are_private_and_read_back_while_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens").join("x.json");
        write(&file, &entry(1000, 1300)).unwrap();
        assert_eq!(read(&file, 1010, 180), Some(entry(1000, 1300)));
        assert_eq!(read(&file, 1200, 180), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&file), 0o600);
            assert_eq!(mode(file.parent().unwrap()), 0o700);
        }
        std::fs::write(&file, "garbage").unwrap();
        assert_eq!(read(&file, 1010, 180), None);
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_and_unprintable_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere.json");
        write(&elsewhere, &entry(1000, 1300)).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        assert_eq!(read(&elsewhere, 1010, 180), Some(entry(1000, 1300)));
        assert_eq!(read(&link, 1010, 180), None);
        let hostile = dir.path().join("hostile.json");
        let mut planted = entry(1000, 1300);
        planted.token = "t\r\nX-Injected: yes".into();
        write(&hostile, &planted).unwrap();
        assert_eq!(read(&hostile, 1010, 180), None);
    }

    #[test]
    fn pruning_removes_expired_and_broken_entries_only() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.json");
        let expired = dir.path().join("expired.json");
        let broken = dir.path().join("broken.json");
        let other = dir.path().join("notes.txt");
        write(&live, &entry(1000, 1300)).unwrap();
        write(&expired, &entry(900, 1200)).unwrap();
        std::fs::write(&broken, "{").unwrap();
        std::fs::write(&other, "kept").unwrap();
        prune(dir.path(), 1250);
        assert!(live.exists() && other.exists());
        assert!(!expired.exists() && !broken.exists());
    }
}
