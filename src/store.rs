//! The key-value store seen by the core: a trait, so the request path is
//! tested natively with [`MemoryStore`] and runs on Spin's store in the
//! component.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

/// The store could not be used. Always mapped to a 503: never grant on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key-value store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for crate::Error {
    fn from(error: StoreError) -> Self {
        crate::Error::unavailable(error)
    }
}

/// Byte values under string keys, as Spin's key-value interface offers them.
///
/// Reads are cheap on every Spin backend; writes may cost milliseconds, so
/// the token path writes only on failures and bounded bookkeeping.
pub trait Store {
    /// The value under `key`, or `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` to `value`, replacing any previous value.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; removing a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key that starts with `prefix`. Used by the admin API only.
    fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Adds `delta` to the counter under `key` atomically and returns the
    /// new value (a missing key counts from 0): however many requests and
    /// instances count at once, none is lost. A counter's stored bytes are
    /// the backend's own (Spin's SQLite and Redis differ): read it only
    /// through `increment`, and only test with `get` whether it exists.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
}

/// An in-memory store for native tests and tools.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RefCell<BTreeMap<String, Vec<u8>>>,
    writes: RefCell<usize>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many `set` and `delete` calls were made, to check that a path
    /// does not write.
    pub fn writes(&self) -> usize {
        *self.writes.borrow()
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.entries.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        *self.writes.borrow_mut() += 1;
        self.entries
            .borrow_mut()
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        *self.writes.borrow_mut() += 1;
        self.entries.borrow_mut().remove(key);
        Ok(())
    }

    fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .entries
            .borrow()
            .keys()
            .filter(|key| key.starts_with(prefix))
            .cloned()
            .collect())
    }

    // One thread owns the map: nothing can come between the read and the write.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let current = match self.entries.borrow().get(key) {
            None => 0,
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(i64::from_le_bytes)
                .map_err(|_| StoreError(format!("{key} is not a counter")))?,
        };
        let value = current.saturating_add(delta);
        self.set(key, &value.to_le_bytes())?;
        Ok(value)
    }
}
