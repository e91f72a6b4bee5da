//! The Spin entry point: turns a Spin request into the core's types, calls
//! [`crate::handle::handle`], and turns the answer into a Spin response.

use futures::StreamExt as _;
use spin_sdk::http::{IncomingRequest, Method as SpinMethod, Response};
use spin_sdk::http_component;
use spin_sdk::{key_value, variables};
use std::cell::OnceCell;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::Variables;
use crate::handle::{handle, Env};
use crate::http::{body_limit, HttpRequest, HttpResponse, Method};
use crate::store::{Store, StoreError};
use crate::{respond, secret, Error};
use spin_sdk::wit::wasi::keyvalue::{atomics, store as wasi_store};

#[http_component]
async fn entry(request: IncomingRequest) -> Response {
    let started = Instant::now();
    let request_id = secret::random_hex(8).unwrap_or_else(|_| "unknown".to_string());
    let store = SpinStore::default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let env = Env {
        store: &store,
        variables: &SpinVariables,
        now,
        request_id,
    };
    let (response, line) = match read(request).await {
        Ok(request) => {
            let mut handled = handle(&request, &env);
            handled.log.latency_us = elapsed_us(started);
            (handled.response, handled.log.to_line())
        }
        Err((error, method, path)) => {
            let response = respond::error_response(
                &error,
                respond::Flow::Docker,
                "scopegate",
                &env.request_id,
            );
            let log = crate::log::RequestLog {
                request_id: env.request_id.clone(),
                method: method.as_str(),
                path,
                status: response.status,
                outcome: error.outcome(),
                detail: Some(error.detail()),
                latency_us: elapsed_us(started),
                ..Default::default()
            };
            (response, log.to_line())
        }
    };
    println!("{line}");
    into_spin(response)
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Reads the request, stopping as soon as the body passes the route's
/// limit (containers/image sends chunked bodies with no Content-Length).
async fn read(request: IncomingRequest) -> Result<HttpRequest, (Error, Method, String)> {
    let method = match request.method() {
        SpinMethod::Get => Method::Get,
        SpinMethod::Head => Method::Head,
        SpinMethod::Post => Method::Post,
        SpinMethod::Put => Method::Put,
        SpinMethod::Patch => Method::Patch,
        SpinMethod::Delete => Method::Delete,
        _ => Method::Other,
    };
    let target = request.path_with_query().unwrap_or_default();
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_string(), query.to_string()),
        None => (target, String::new()),
    };
    let headers = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    let limit = body_limit(&path);
    let mut body = Vec::new();
    let mut stream = request.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            (
                Error::bad_request("request body could not be read"),
                method,
                path.clone(),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err((Error::PayloadTooLarge, method, path));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpRequest {
        method,
        path,
        query,
        headers,
        body,
    })
}

fn into_spin(response: HttpResponse) -> Response {
    let mut builder = Response::builder();
    builder.status(response.status);
    for (name, value) in response.headers {
        builder.header(name, value);
    }
    builder.body(response.body).build()
}

/// Spin's default key-value store, opened on first use.
#[derive(Default)]
struct SpinStore(OnceCell<key_value::Store>);

impl SpinStore {
    fn open(&self) -> Result<&key_value::Store, StoreError> {
        if let Some(store) = self.0.get() {
            return Ok(store);
        }
        let store = key_value::Store::open_default().map_err(spin_error)?;
        Ok(self.0.get_or_init(|| store))
    }
}

fn spin_error(error: key_value::Error) -> StoreError {
    StoreError(error.to_string())
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

/// Spin variables as declared in `spin.toml`.
struct SpinVariables;

impl Variables for SpinVariables {
    fn variable(&self, name: &str) -> Result<Option<String>, String> {
        match variables::get(name) {
            Ok(value) if value.is_empty() => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(variables::Error::Undefined(_)) => Ok(None),
            Err(error) => Err(error.to_string()),
        }
    }
}
