//! The hostile-input suite: 20,000 malformed and adversarial requests from a
//! fixed seed (`tests/hostile/generate.rs`) against the built component under
//! real Spin: query strings, form bodies, headers, Basic credentials, admin
//! JSON bodies, methods, sizes, chunked bodies, unicode and control
//! characters.
//!
//! Every answer is below 500 (or a 503 naming its request id), every 4xx has
//! a JSON body, the server is healthy afterwards, and the store is exactly as
//! before: every request is refused or read-only by construction.
//! `SCOPEGATE_HOSTILE_SEED` and `SCOPEGATE_HOSTILE_REQUESTS` replay or
//! extend a run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "hostile/generate.rs"]
mod generate;

use common::*;
use generate::{Request, Rng};
use std::collections::BTreeMap;

const SEED: u64 = 0x0005_c09e_6a7e;
const REQUESTS: usize = 20_000;
/// Client threads (the machine has two cores; Spin uses them).
const THREADS: usize = 4;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Checks one answer; `Err` describes what is wrong.
fn judge(request: &Request, reply: &Reply) -> Result<(), String> {
    let body = reply.text();
    match reply.status {
        503 if body.contains("request id") => Ok(()),
        status if status >= 500 => Err(format!("{status}: {body}")),
        status if (400..500).contains(&status) && request.method != "HEAD" => {
            serde_json::from_slice::<serde_json::Value>(&reply.body)
                .map(|_| ())
                .map_err(|_| format!("{status} without a JSON body: {body:?}"))
        }
        status
            if (200..300).contains(&status)
                && request.target.starts_with("/admin/")
                && !matches!(request.method.as_str(), "GET" | "HEAD") =>
        {
            Err(format!("an admin change was accepted: {status} {body}"))
        }
        _ => Ok(()),
    }
}

#[test]
fn twenty_thousand_hostile_requests_change_nothing_and_break_nothing() {
    let seed = setting("SCOPEGATE_HOSTILE_SEED", SEED);
    let total = setting("SCOPEGATE_HOSTILE_REQUESTS", REQUESTS as u64) as usize;
    let host = start(variables(), seeded_users());
    let before = store_contents(&host);

    let per_thread = total.div_ceil(THREADS);
    let results: Vec<(usize, BTreeMap<u16, usize>, Vec<String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let host = &host;
                scope.spawn(move || {
                    let mut rng = Rng::new(seed.wrapping_add(thread as u64));
                    let mut statuses = BTreeMap::new();
                    let mut problems = Vec::new();
                    for index in 0..per_thread {
                        let request = generate::request(&mut rng, ADMIN_SECRET);
                        let headers: Vec<(&str, &str)> = request
                            .headers
                            .iter()
                            .map(|(name, value)| (name.as_str(), value.as_str()))
                            .collect();
                        let body = match (&request.body, request.is_chunked) {
                            (None, _) => Body::None,
                            (Some(bytes), false) => Body::Sized(bytes),
                            (Some(bytes), true) => Body::Chunked(bytes),
                        };
                        let reply = scopegate_harness::http::request(
                            host.addr(),
                            &request.method,
                            &request.target,
                            &headers,
                            body,
                        );
                        match reply {
                            Ok(reply) => {
                                *statuses.entry(reply.status).or_insert(0) += 1;
                                if let Err(problem) = judge(&request, &reply) {
                                    problems.push(format!(
                                        "seed {seed} thread {thread} request {index}: {} {} {:?}: {problem}",
                                        request.method, request.target, request.headers
                                    ));
                                }
                            }
                            Err(error) => problems.push(format!(
                                "seed {seed} thread {thread} request {index}: {} {}: no answer: {error}",
                                request.method, request.target
                            )),
                        }
                    }
                    (per_thread, statuses, problems)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .collect()
    });

    let sent: usize = results.iter().map(|(sent, _, _)| sent).sum();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, counts, _) in &results {
        for (status, count) in counts {
            *statuses.entry(*status).or_insert(0) += count;
        }
    }
    let problems: Vec<&String> = results
        .iter()
        .flat_map(|(_, _, problems)| problems)
        .collect();
    eprintln!("hostile suite: {sent} requests, statuses {statuses:?}");
    assert!(
        problems.is_empty(),
        "{} of {sent} answers were wrong; first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(8)
            .map(|problem| problem.chars().take(300).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(sent >= total);
    // The suite reached the parsers: refusals of several kinds, and tokens.
    for status in [200, 400, 401, 405, 413] {
        assert!(
            statuses.contains_key(&status),
            "no {status} among {statuses:?}"
        );
    }

    let after = store_contents(&host);
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|key| before.get(*key) != after.get(*key))
        // The decoy failure counter: every refused password or token counts
        // there, so that all refusals cost the same (README, Security).
        .filter(|key| key.as_str() != "failures/-")
        .collect();
    assert!(
        changed.is_empty(),
        "refused requests changed the store: {changed:?}"
    );

    assert_eq!(
        get(&host, "/healthz", None).status,
        200,
        "healthy after the run"
    );
    assert_eq!(
        get(
            &host,
            &token_path(&["repository:team/app:pull"]),
            Some(("alice", "alice-password"))
        )
        .status,
        200,
        "still serving tokens"
    );
}

/// A client that declares a huge body and sends a few bytes gets its 413 at
/// once, in the flow's shape, instead of holding the request (and its
/// instance) open while the server waits for the rest.
#[test]
fn a_declared_gigabyte_is_refused_at_once() {
    use std::io::{Read, Write};
    let host = start(variables(), seeded_users());
    for (target, expected) in [
        ("/token", "\"error\":\"invalid_request\""),
        ("/admin/users", "\"errors\""),
    ] {
        let mut stream = std::net::TcpStream::connect(host.addr()).unwrap();
        // The server waiting for the rest of the body shows as no answer.
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 999999999\r\n\r\ngrant_type=pass"
        )
        .unwrap();
        let mut answer = vec![0u8; 4096];
        let read = stream
            .read(&mut answer)
            .expect("an answer before the body ends");
        let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
        assert!(answer.starts_with("HTTP/1.1 413"), "{target}: {answer}");
        assert!(answer.contains(expected), "{target}: {answer}");
    }
}

/// A client that declares a small body, or starts a chunked one, and stops
/// sending gets a 408 once the body deadline passes, instead of holding the
/// request (and its instance) open; other requests are served meanwhile.
#[test]
fn a_stalled_body_times_out_and_blocks_nothing() {
    let host = start(variables(), seeded_users());
    stalled_bodies_get_408_and_block_nothing(&host);
}
