//! The WASI 0.3 build's store: Spin's default key-value store through the
//! async `spin:key-value@3.0.0` interface, each call raced against
//! [`STORE_DEADLINE`].
//!
//! The core's [`Store`] is synchronous, so each call runs to completion with
//! wit-bindgen's `block_on` (a `waitable-set.wait` in this request's task),
//! racing the host's answer against a `wasi:clocks` timer. When the timer
//! wins, the call is dropped (the host cancels it) and fails with a
//! [`StoreError`], which the core turns into a 503 with a request id; every
//! later call of the same request fails at once, so a request waits for the
//! store at most once. This matters for Redis: Spin 4.0.2's Redis store
//! waits forever once Redis is unreachable, and the WASI 0.2 build, whose
//! host calls are synchronous, can only wait with it.
//!
//! A request waiting in `block_on` holds its instance: the instance's other
//! requests queue behind it. So after a missed deadline the whole instance
//! takes the store for down during [`STORE_RETRY`] and fails store calls at
//! once; the first call after that tries again. A request therefore waits at
//! most about one deadline, queued or not. The instance keeps only this
//! instant, never anything read from the store.
//!
//! Counters (`increment`) stay on the synchronous `wasi:keyvalue/atomics`
//! interface, which has no async version in Spin 4.0.2; the request path
//! reaches one only after a read of the same store answered.

use std::cell::{Cell, OnceCell};
use std::future::Future;
use std::time::{Duration, Instant};

use futures::future::{self, Either};
use spin_sdk::key_value;

use crate::spin_host::SpinStore;
use crate::store::{Store, StoreError};

/// How long one store call may take before the request gives up on the
/// store. Spin's SQLite and Redis stores answer in milliseconds when they
/// work; SQLite waits up to 5 s for a locked database, so a lock held that
/// long also ends in a 503 here, sooner.
pub const STORE_DEADLINE: Duration = Duration::from_secs(2);

/// How long an instance fails store calls at once after one missed
/// [`STORE_DEADLINE`], before it tries the store again.
pub const STORE_RETRY: Duration = Duration::from_secs(1);

thread_local! {
    /// Until when this instance takes the store for down (a missed deadline).
    static DOWN_UNTIL: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Spin's default store for one request, with the deadline on every call.
#[derive(Default)]
pub struct DeadlineStore {
    store: OnceCell<key_value::Store>,
    /// Set once a call missed the deadline: the store is down for this request.
    timed_out: Cell<bool>,
    /// The synchronous store, for counters only.
    counters: SpinStore,
}

impl DeadlineStore {
    /// Runs `call` on the opened store, or fails when it or the opening takes
    /// longer than [`STORE_DEADLINE`].
    fn run<'s, T: 'static, F>(
        &'s self,
        call: impl FnOnce(&'s key_value::Store) -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, key_value::Error>> + 's,
    {
        self.check_up()?;
        let store = match self.store.get() {
            Some(store) => store,
            None => {
                let store = self.within_deadline(key_value::Store::open("default"))?;
                self.store.get_or_init(|| store)
            }
        };
        self.within_deadline(call(store))
    }

    fn within_deadline<T: 'static>(
        &self,
        call: impl Future<Output = Result<T, key_value::Error>>,
    ) -> Result<T, StoreError> {
        let raced = spin_sdk::wit_bindgen::block_on(async {
            let call = std::pin::pin!(call);
            let timer = std::pin::pin!(spin_sdk::time::sleep(STORE_DEADLINE));
            match future::select(call, timer).await {
                Either::Left((answer, _)) => Some(answer),
                Either::Right(((), _)) => None,
            }
        });
        match raced {
            Some(answer) => {
                DOWN_UNTIL.set(None);
                answer.map_err(|error| StoreError(format!("{error:?}")))
            }
            None => {
                self.timed_out.set(true);
                DOWN_UNTIL.set(Some(Instant::now() + STORE_RETRY));
                Err(StoreError(format!(
                    "no answer within {} s",
                    STORE_DEADLINE.as_secs()
                )))
            }
        }
    }

    /// Fails at once when this request or, within [`STORE_RETRY`], another
    /// request of this instance missed the deadline.
    fn check_up(&self) -> Result<(), StoreError> {
        if self.timed_out.get() {
            return Err(StoreError(format!(
                "no answer within {} s (an earlier call of this request)",
                STORE_DEADLINE.as_secs()
            )));
        }
        if DOWN_UNTIL.get().is_some_and(|until| Instant::now() < until) {
            return Err(StoreError(format!(
                "no answer within {} s to a request just before; trying again {} s after it",
                STORE_DEADLINE.as_secs(),
                STORE_RETRY.as_secs()
            )));
        }
        Ok(())
    }
}

impl Store for DeadlineStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(|store| store.get(key))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.run(|store| store.set(key, value))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run(|store| store.delete(key))
    }

    fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = self.run(|store| async move { store.get_keys().await.collect().await })?;
        keys.retain(|key| key.starts_with(prefix));
        Ok(keys)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.check_up()?;
        self.counters.increment(key, delta)
    }
}
