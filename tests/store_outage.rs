//! A Redis outage under the WASI 0.3 build (`spin-p3.toml`) and real Spin:
//! Redis stopped in the middle of a bounded load run. Every request that
//! needs the store answers within the store deadline (2 s, `p3_store.rs`)
//! plus one second: a token from before the outage or a 503 naming its
//! request id, never a hang, a 500 or a token without the store. Then Redis
//! comes back and the same instance serves again, with nothing lost.
//!
//! The WASI 0.2 build cannot do this (its host calls are synchronous and
//! Spin 4.0.2's Redis store waits forever); README, "Store faults".

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::store_fault::{self, check_fail_closed, timed, Seen};
use common::*;
use scopegate_harness::Redis;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PUSH: &str = "repository:team/app:pull,push";

/// The component's store deadline plus the one second the issue allows.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

fn token_login(host: &Spin, user: &str, secret: &str) -> Seen {
    store_fault::token_login(host, PUSH, user, secret)
}

/// A token, or a 503 naming its request id; within [`ANSWER_WITHIN`].
fn check(seen: &Seen) {
    check_fail_closed(seen, ANSWER_WITHIN);
}

#[test]
fn a_redis_outage_gets_503s_within_the_deadline_and_the_instance_recovers() {
    let mut redis = Redis::start();
    let host = Spin::start(SpinOptions {
        manifest: scopegate_harness::repository_root().join("spin-p3.toml"),
        variables: variables(),
        redis_url: Some(redis.url()),
        ..SpinOptions::default()
    });
    create_user(&host, "dora", "dora-password", &["team"]);
    let token = create_token(
        &host,
        json!({"kind": "deploy", "owner": "dora", "name": "outage"}),
    );
    assert_eq!(token_login(&host, "ci", &token).status, 200);
    assert_eq!(token_login(&host, "dora", "dora-password").status, 200);

    // Two clients, at most 500 requests each; Redis stops 300 ms in and
    // stays down for 4 s, past the deadline of requests caught mid-call.
    let stop = AtomicBool::new(false);
    let during: Vec<Seen> = std::thread::scope(|scope| {
        let clients: Vec<_> = [("ci", token.as_str()), ("dora", "dora-password")]
            .into_iter()
            .map(|(user, secret)| {
                let (host, stop) = (&host, &stop);
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) && seen.len() < 500 {
                        seen.push(token_login(host, user, secret));
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        redis.stop();
        std::thread::sleep(Duration::from_secs(4));
        stop.store(true, Ordering::Relaxed);
        clients
            .into_iter()
            .flat_map(|client| client.join().unwrap())
            .collect()
    });
    let refused = during.iter().filter(|seen| seen.status == 503).count();
    eprintln!(
        "during the outage: {} requests, {refused} answered 503, slowest {:?}",
        during.len(),
        during.iter().map(|seen| seen.took).max().unwrap()
    );
    assert!(refused >= 2, "the outage was seen: {during:?}");
    for seen in &during {
        check(seen);
    }

    // Each kind of request that needs the store, while Redis is still down.
    for seen in [
        token_login(&host, "ci", &token),
        token_login(&host, "dora", "dora-password"),
        timed(|| admin(&host, "GET", "/admin/users", None)),
    ] {
        assert_eq!(seen.status, 503, "{seen:?}");
        check(&seen);
    }
    let health = timed(|| get(&host, "/healthz", None));
    assert_eq!(health.status, 503, "{health:?}");
    assert!(
        health
            .body
            .contains("\"store\":\"key-value store: no answer"),
        "{health:?}"
    );
    assert!(health.took < ANSWER_WITHIN, "{health:?}");
    let log = host.logs();
    assert!(
        log.lines()
            .filter(|line| line.contains("\"status\":503") && line.contains("\"path\":\"/token\""))
            .all(|line| line.contains("\"detail\":\"key-value store")),
        "every 503 token request is logged with the store's error:\n{log}"
    );

    // Redis back, same data. Spin 4.0.2's Redis store keeps the one
    // connection it made at its first call and never makes another, so the
    // instance may stay cut off (README, "Store faults"): measured here, with
    // every answer still within the deadline. A restarted Spin (what a
    // liveness probe on /healthz does) serves everything written before.
    redis.restart();
    let back = Instant::now();
    let mut after = Vec::new();
    while back.elapsed() < Duration::from_secs(10) {
        let seen = token_login(&host, "ci", &token);
        let recovered = seen.status == 200;
        after.push(seen);
        if recovered {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for seen in &after {
        check(seen);
    }
    let recovered = after.last().is_some_and(|seen| seen.status == 200);
    eprintln!(
        "after Redis returned: {} requests in {:?}, the same Spin {}",
        after.len(),
        back.elapsed(),
        if recovered {
            "recovered"
        } else {
            "still answered 503"
        }
    );
    let mut host = host;
    if !recovered {
        host.stop();
        host = Spin::start(SpinOptions {
            manifest: scopegate_harness::repository_root().join("spin-p3.toml"),
            variables: variables(),
            redis_url: Some(redis.url()),
            ..SpinOptions::default()
        });
    }
    assert_eq!(token_login(&host, "ci", &token).status, 200);
    assert_eq!(token_login(&host, "dora", "dora-password").status, 200);
    assert_eq!(get(&host, "/healthz", None).status, 200);
}
