//! Routing for the floor component. Like scopegate's WASI 0.2 entry, it
//! writes and finishes each body before handing the response to Spin, so a
//! kept-alive connection does not wait for the client's delayed ACK.

use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

use crate::floor;

/// Most signatures one request may ask for, so a typo cannot hang the host.
const MAX_SIGNATURES: u32 = 100_000;

#[http_component]
async fn entry(request: IncomingRequest, outparam: ResponseOutparam) {
    let (status, body) = route(&request);
    let content_type = if status == 200 && !body.is_empty() {
        "application/json"
    } else {
        "text/plain"
    };
    let headers = [("content-type".to_string(), content_type.as_bytes().to_vec())];
    let Ok(headers) = Fields::from_list(&headers) else {
        return;
    };
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    if let Ok(outgoing) = response.body() {
        if let Ok(stream) = outgoing.write() {
            // Every floor body is far below the first write permit (1 MiB).
            if !body.is_empty() {
                let _ = stream.write(body.as_bytes());
            }
            drop(stream);
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
    outparam.set(response);
}

/// A JSON body as large as scopegate's answer to a 2-scope API-token
/// request with `x5c` (`token` and `access_token`, ~2.7 kB), built before
/// the response is: what any WASI 0.2 token server pays at the least.
fn token_sized() -> String {
    let token = "t".repeat(1_300);
    format!(
        r#"{{"token":"{token}","access_token":"{token}","expires_in":300,"issued_at":"2026-12-07T00:00:00Z"}}"#
    )
}

/// The status and body for one request.
fn route(request: &IncomingRequest) -> (u16, String) {
    let target = request.path_with_query().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    match path {
        "/empty" => (200, String::new()),
        "/token-sized" => (200, token_sized()),
        "/sign" | "/sign-jwt-simple" => {
            let Some(n) = count(query) else {
                return (400, format!("n must be 2..={MAX_SIGNATURES}\n"));
            };
            let result = if path == "/sign" {
                floor::sign_p256(n)
            } else {
                floor::sign_jwt_simple(n)
            };
            match result {
                Ok(timings) => (200, timings.to_json()),
                Err(error) => (500, format!("{error}\n")),
            }
        }
        "/verify-rs256" => match count(query).map(floor::verify_rs256) {
            Some(Ok(timings)) => (200, timings.to_json()),
            Some(Err(error)) => (500, format!("{error}\n")),
            None => (400, format!("n must be 2..={MAX_SIGNATURES}\n")),
        },
        "/scalar-mul" => match count(query).map(floor::scalar_multiplications) {
            Some(Ok(json)) => (200, json),
            Some(Err(error)) => (500, format!("{error}\n")),
            None => (400, format!("n must be 2..={MAX_SIGNATURES}\n")),
        },
        _ => (404, String::new()),
    }
}

/// `n` from the query string, between 2 (one cold, one warm) and the maximum.
fn count(query: &str) -> Option<u32> {
    let n = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("n="))
        .unwrap_or("1000");
    n.parse().ok().filter(|n| (2..=MAX_SIGNATURES).contains(n))
}
