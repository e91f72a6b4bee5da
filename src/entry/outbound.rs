//! Outbound GET for the core's [`Fetch`] (an OIDC issuer's discovery
//! document and JWKS), over `wasi:http/outgoing-handler@0.2.0`, which Spin
//! offers to WASI 0.2 and 0.3 components alike. Synchronous: the request
//! waits for the issuer, bounded by [`FETCH_TIMEOUT_SECONDS`] from start to
//! last byte, and then stays cached in the key-value store.
//!
//! The host allows only the hosts the manifest's `allowed_outbound_hosts`
//! lists; any other URL fails here, which the core answers with a 503.

use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, IncomingBody, Method, OutgoingRequest, RequestOptions, Scheme};
use wasi::io::poll::{self, Pollable};
use wasi::io::streams::StreamError;

use crate::oidc::jwks::MAX_DOCUMENT_LEN;
use crate::oidc::{Fetch, FetchError, FetchTarget, FETCH_TIMEOUT_SECONDS};

/// The host's outbound HTTP.
pub struct Outbound;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

impl Fetch for Outbound {
    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let target = FetchTarget::parse(url)?;
        let timeout = FETCH_TIMEOUT_SECONDS * NANOS_PER_SECOND;
        let deadline = monotonic_clock::now().saturating_add(timeout);
        let fail = |what: &str| FetchError(format!("GET {url}: {what}"));

        let headers = Fields::from_list(&[("accept".to_string(), b"application/json".to_vec())])
            .map_err(|error| fail(&format!("{error:?}")))?;
        let request = OutgoingRequest::new(headers);
        let scheme = if target.is_https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let is_set = request.set_method(&Method::Get).is_ok()
            && request.set_scheme(Some(&scheme)).is_ok()
            && request.set_authority(Some(target.authority)).is_ok()
            && request.set_path_with_query(Some(target.path)).is_ok();
        if !is_set {
            return Err(fail("not a valid request target"));
        }
        // Hosts that do not support a timeout option refuse it; the deadline
        // below still holds.
        let options = RequestOptions::new();
        let _ = options.set_connect_timeout(Some(timeout));
        let _ = options.set_first_byte_timeout(Some(timeout));
        let _ = options.set_between_bytes_timeout(Some(timeout));

        let future = outgoing_handler::handle(request, Some(options))
            .map_err(|error| fail(&error.to_string()))?;
        wait(&future.subscribe(), deadline).map_err(|()| fail("timed out"))?;
        let response = future
            .get()
            .ok_or_else(|| fail("no response"))?
            .map_err(|()| fail("response already taken"))?
            .map_err(|error| fail(&error.to_string()))?;
        if response.status() != 200 {
            return Err(fail(&format!("status {}", response.status())));
        }
        let body = response.consume().map_err(|()| fail("no body"))?;
        let stream = body.stream().map_err(|()| fail("no body stream"))?;
        let mut bytes = Vec::new();
        loop {
            wait(&stream.subscribe(), deadline).map_err(|()| fail("timed out"))?;
            match stream.read(64 * 1024) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_DOCUMENT_LEN {
                        return Err(fail("document too large"));
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(error)) => {
                    return Err(fail(&error.to_debug_string()))
                }
            }
        }
        drop(stream);
        let _ = IncomingBody::finish(body);
        Ok(bytes)
    }
}

/// Waits until `pollable` is ready, or fails at `deadline` (monotonic ns).
fn wait(pollable: &Pollable, deadline: u64) -> Result<(), ()> {
    let timer = monotonic_clock::subscribe_instant(deadline);
    let ready = poll::poll(&[pollable, &timer]);
    if ready.contains(&0) {
        Ok(())
    } else {
        Err(())
    }
}
