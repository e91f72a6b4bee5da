//! The WASI 0.3 entry point (spin-sdk 6.0, `wasi:http/handler@0.3.0-rc-2026-03-15`,
//! Spin 4.0): turns a Spin request into the core's types, serves it through
//! [`crate::spin_host::serve`], and turns the answer into a Spin response.
//!
//! The store is Spin's through the async key-value interface, each call
//! raced against a deadline (`p3_store.rs`), so a store that stops
//! answering gets a 503 instead of a hung request.
//!
//! Spin 4.0 reuses an instance for up to 128 requests, concurrent ones
//! included. Only immutable application state is kept per instance: the
//! variables (read once), and the configuration and signer (with p256's
//! base-point table) made from them (`crate::spin_host`). Nothing read from
//! the key-value store outlives its request.

use futures::future::{self, Either};
use spin_sdk::http::{
    HeaderMap, HeaderName, HeaderValue, Method as SpinMethod, Request, StatusCode,
};
use spin_sdk::http_service;
use spin_sdk::wasip3::http_compat::IncomingRequestBody;
use std::time::Instant;

use http_body_util::BodyExt as _;

use crate::http::{HttpRequest, HttpResponse, Method, BODY_READ_DEADLINE};
use crate::p3_store::DeadlineStore;
use crate::spin_host::serve;
use crate::Error;

type Reply = spin_sdk::http::Response<http_body_util::Full<bytes::Bytes>>;

#[http_service]
async fn entry(request: Request) -> Reply {
    let started = Instant::now();
    // The body stops at the route's limit (containers/image sends chunked
    // bodies with no Content-Length) or at the deadline.
    let head = head(&request);
    let body = match head.body_limit() {
        Ok(limit) => body(request, limit).await,
        Err(error) => Err(error),
    };
    into_spin(serve(head, body, started, &DeadlineStore::default()))
}

/// The request's method, target and headers, with no body yet.
fn head(request: &Request) -> HttpRequest {
    let method = match *request.method() {
        SpinMethod::GET => Method::Get,
        SpinMethod::HEAD => Method::Head,
        SpinMethod::POST => Method::Post,
        SpinMethod::PUT => Method::Put,
        SpinMethod::PATCH => Method::Patch,
        SpinMethod::DELETE => Method::Delete,
        _ => Method::Other,
    };
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_ascii_lowercase(),
                value.as_bytes().to_vec(),
            )
        })
        .collect();
    HttpRequest {
        method,
        path: request.uri().path().to_string(),
        query: request.uri().query().unwrap_or_default().to_string(),
        headers,
        body: Vec::new(),
    }
}

/// The body, at most `limit` bytes, raced against [`BODY_READ_DEADLINE`].
async fn body(request: Request, limit: usize) -> Result<Vec<u8>, Error> {
    let reading = std::pin::pin!(read_body(request.into_body(), limit));
    let deadline = std::pin::pin!(spin_sdk::time::sleep(BODY_READ_DEADLINE));
    match future::select(reading, deadline).await {
        Either::Left((body, _)) => body,
        Either::Right(((), _)) => Err(Error::BodyTimeout),
    }
}

/// Reads the whole body, at most `limit` bytes. [`body`] races it against
/// [`BODY_READ_DEADLINE`] (a `wasi:clocks` timer) and drops it, body stream
/// and all, when the deadline comes first.
async fn read_body(mut incoming: IncomingRequestBody, limit: usize) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|_| Error::bad_request("request body could not be read"))?;
        if let Some(chunk) = frame.data_ref() {
            if body.len() + chunk.len() > limit {
                return Err(Error::PayloadTooLarge);
            }
            body.extend_from_slice(chunk);
        }
    }
    Ok(body)
}

fn into_spin(response: HttpResponse) -> Reply {
    let mut headers = HeaderMap::new();
    for (name, value) in response.headers {
        // The core only emits valid header names and values; one that is not
        // would be dropped rather than fail the response.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    let mut reply = Reply::new(http_body_util::Full::new(bytes::Bytes::from(response.body)));
    *reply.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *reply.headers_mut() = headers;
    reply
}
