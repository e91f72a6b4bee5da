//! What both Spin entries take from the host besides HTTP: the default
//! key-value store and the application's variables, through the synchronous
//! Spin 2.0 interfaces and `wasi:keyvalue/atomics` (`src/entry/wit/`), so
//! the core's `Store` and `Variables` traits stay synchronous; and the
//! per-instance state ([`INSTANCE`]). Spin 4.0.2 provides these interfaces
//! to WASI 0.2 and 0.3 components alike, so one module serves both builds.

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;

use std::time::Instant;

use crate::config::Variables;
use crate::handle::{self, Host, Instance};
use crate::http::{HttpRequest, HttpResponse};
use crate::store::{Store, StoreError};
use crate::Error;

mod bindings {
    spin_sdk::wit_bindgen::generate!({
        runtime_path: "spin_sdk::wit_bindgen::rt",
        world: "scopegate-host",
        path: "src/entry/wit",
        generate_all,
    });
}
use bindings::fermyon::spin::{key_value, variables};
use bindings::wasi::keyvalue::{atomics, store as wasi_store};

/// Serves one request with Spin as its host (see [`handle::serve`]), on
/// `store`: [`SpinStore`] in the WASI 0.2 build, the deadline store of
/// `p3_store.rs` in the WASI 0.3 build.
pub fn serve(
    request: HttpRequest,
    body: Result<Vec<u8>, Error>,
    started: Instant,
    store: &dyn Store,
) -> HttpResponse {
    let host = Host {
        store,
        variables: &InstanceVariables,
        fetch: &crate::outbound::Outbound,
        instance: &INSTANCE,
    };
    handle::serve(request, body, &host, started)
}

/// Spin's default key-value store through the synchronous interfaces,
/// opened on first use in a request.
#[derive(Default)]
pub struct SpinStore(OnceCell<key_value::Store>);

impl SpinStore {
    fn open(&self) -> Result<&key_value::Store, StoreError> {
        if let Some(store) = self.0.get() {
            return Ok(store);
        }
        let store = key_value::Store::open("default").map_err(spin_error)?;
        Ok(self.0.get_or_init(|| store))
    }
}

fn spin_error(error: key_value::Error) -> StoreError {
    StoreError(format!("{error:?}"))
}

impl Store for SpinStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.open()?.get(key).map_err(spin_error)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.open()?.set(key, value).map_err(spin_error)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.open()?.delete(key).map_err(spin_error)
    }

    fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = self.open()?.get_keys().map_err(spin_error)?;
        keys.retain(|key| key.starts_with(prefix));
        Ok(keys)
    }

    /// `wasi:keyvalue/atomics` on the same default store: a transaction on
    /// Spin's SQLite store, INCRBY on Redis.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let bucket = wasi_store::open("default").map_err(wasi_error)?;
        atomics::increment(&bucket, key, delta).map_err(wasi_error)
    }
}

fn wasi_error(error: wasi_store::Error) -> StoreError {
    StoreError(format!("{error:?}"))
}

/// The configuration and signer this instance computed (from the variables
/// below), shared by every request it serves: in the WASI 0.3 build up to
/// 128 of them, in the WASI 0.2 build one.
static INSTANCE: Instance = Instance::new();

thread_local! {
    /// The variables this instance has read. Spin resolves an application's
    /// variables when it starts, so they cannot change during an instance's
    /// life; reading each once also spares later requests the host's
    /// variables provider (which, for environment variables, stalls a
    /// kept-alive response by ~40 ms: Spin 4.0.2 runs it in a blocking section,
    /// and without TCP_NODELAY the response then waits for a delayed ACK).
    static VARIABLES: RefCell<BTreeMap<String, Result<Option<String>, String>>> =
        const { RefCell::new(BTreeMap::new()) };
}

/// Spin variables as declared in the manifest, each read once per instance.
struct InstanceVariables;

impl Variables for InstanceVariables {
    fn variable(&self, name: &str) -> Result<Option<String>, String> {
        if let Some(known) = VARIABLES.with_borrow(|known| known.get(name).cloned()) {
            return known;
        }
        let value = match variables::get(name) {
            Ok(value) if value.is_empty() => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(variables::Error::Undefined(_)) => Ok(None),
            Err(error) => Err(format!("{error:?}")),
        };
        // A failure (provider unreachable) is not remembered: the next
        // request asks again.
        if value.is_ok() {
            VARIABLES.with_borrow_mut(|known| known.insert(name.to_string(), value.clone()));
        }
        value
    }
}
