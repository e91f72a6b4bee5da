//! The WASI 0.2 entry point (spin-sdk 5.2, Spin 2.x to 4.x, SpinKube): turns
//! a Spin request into the core's types, serves it through
//! [`crate::spin_host::serve`], and sends the answer.
//!
//! The response body is written and finished BEFORE the response is handed
//! to the host, so Spin sends headers and body in one write. In the usual
//! order (hand over, then write) a kept-alive connection waits ~40 ms for the
//! client's delayed ACK on every response, because Spin (4.0.2, and its main
//! branch in 2026) does not set TCP_NODELAY on accepted connections (README,
//! "Performance").

use spin_sdk::http::{
    Fields, IncomingRequest, Method as SpinMethod, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use spin_sdk::http_component;
use std::time::Instant;
use wasi::clocks::monotonic_clock;
use wasi::io::poll;
use wasi::io::streams::StreamError;

use crate::http::{HttpRequest, HttpResponse, Method, BODY_READ_DEADLINE};
use crate::spin_host::{serve, SpinStore};
use crate::Error;

#[http_component]
async fn entry(request: IncomingRequest, outparam: ResponseOutparam) {
    let started = Instant::now();
    // The body stops at the route's limit (containers/image sends chunked
    // bodies with no Content-Length) or at the deadline.
    let head = head(&request);
    let body = head
        .body_limit()
        .and_then(|limit| read_body(request, limit));
    send(serve(head, body, started, &SpinStore::default()), outparam);
}

/// The request's method, target and headers, with no body yet.
fn head(request: &IncomingRequest) -> HttpRequest {
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
    HttpRequest {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
    }
}

/// The most bytes asked of the body stream in one read.
const READ_CHUNK: u64 = 16 * 1024;

/// Reads the whole body, at most `limit` bytes, waiting (`wasi:io/poll`)
/// on the stream and a monotonic-clock deadline together, so a client that
/// stops sending gets [`Error::BodyTimeout`] instead of holding the instance.
/// The instance serves this request alone, so waiting here blocks nothing.
fn read_body(request: IncomingRequest, limit: usize) -> Result<Vec<u8>, Error> {
    let broken = || Error::bad_request("request body could not be read");
    let incoming = request.consume().map_err(|()| broken())?;
    let stream = incoming.stream().map_err(|()| broken())?;
    let deadline = u64::try_from(BODY_READ_DEADLINE.as_nanos()).unwrap_or(u64::MAX);
    let timer = monotonic_clock::subscribe_duration(deadline);
    // Declared after `stream`, so dropped before it, as WASI requires of a
    // stream's pollable.
    let readable = stream.subscribe();
    let mut body = Vec::new();
    loop {
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => {
                poll::poll(&[&readable, &timer]);
                if timer.ready() {
                    return Err(Error::BodyTimeout);
                }
            }
            Ok(chunk) => {
                if body.len() + chunk.len() > limit {
                    return Err(Error::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(StreamError::LastOperationFailed(_)) => return Err(broken()),
        }
    }
}

/// The most bytes written in one call once the response is handed over
/// (`blocking-write-and-flush` takes at most 4096).
const WRITE_CHUNK: usize = 4096;

/// Sends `response`: headers, status and the whole body, finished before
/// the host gets the response whenever the body fits the stream's first
/// write permit (on Spin 4.0.2, 1 MiB; every scopegate body does). A larger
/// body is streamed after handing over, in the usual order. Failures here
/// can only be the host refusing a header or the client going away; the
/// log line is already written, so they end the request silently.
fn send(response: HttpResponse, outparam: ResponseOutparam) {
    let headers: Vec<(String, Vec<u8>)> = response
        .headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    let Ok(headers) = Fields::from_list(&headers) else {
        return send_status(500, outparam);
    };
    let outgoing = OutgoingResponse::new(headers);
    if outgoing.set_status_code(response.status).is_err() {
        return send_status(500, outparam);
    }
    let Ok(body) = outgoing.body() else {
        return send_status(500, outparam);
    };
    let Ok(stream) = body.write() else {
        return send_status(500, outparam);
    };
    let bytes = response.body;
    let fits = stream
        .check_write()
        .is_ok_and(|permit| usize::try_from(permit).is_ok_and(|permit| bytes.len() <= permit));
    if fits {
        let is_written = bytes.is_empty() || stream.write(&bytes).is_ok();
        drop(stream);
        if is_written && OutgoingBody::finish(body, None).is_ok() {
            outparam.set(outgoing);
        } else {
            send_status(500, outparam);
        }
        return;
    }
    outparam.set(outgoing);
    for chunk in bytes.chunks(WRITE_CHUNK) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
    drop(stream);
    // The response is already handed over; nothing is left to report to.
    let _ = OutgoingBody::finish(body, None);
}

/// Sends an empty response with `status`, for when the real one could not
/// be built.
fn send_status(status: u16, outparam: ResponseOutparam) {
    let outgoing = OutgoingResponse::new(Fields::new());
    // 500 is a valid status code, so this cannot fail; ignored either way.
    let _ = outgoing.set_status_code(status);
    if let Ok(body) = outgoing.body() {
        let _ = OutgoingBody::finish(body, None);
    }
    outparam.set(outgoing);
}
