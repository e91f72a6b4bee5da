//! Store faults under real Spin: Spin's default SQLite store locked in the
//! middle of a load run, then released. Fail closed (503 with a request id,
//! never a token, a 500 or a hang), recover without a restart, lose nothing
//! written before the fault. (The WASI 0.2 build cannot survive a Redis
//! outage: Spin 4.0.2 waits for an unreachable Redis forever. The WASI 0.3
//! build's deadline is tested in `tests/store_outage.rs`; README, "Store
//! faults".)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::store_fault::{self, check_fail_closed, Seen};
use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PUSH: &str = "repository:team/app:pull,push";

/// Answers while the store may be down: SQLite waits up to 5 s for a lock.
fn check(seen: &Seen) {
    check_fail_closed(seen, Duration::from_secs(20));
}

fn token_login(host: &Spin, user: &str, secret: &str) -> Seen {
    store_fault::token_login(host, PUSH, user, secret)
}

/// Requests of every kind that need the store, while it fails: each is a
/// 503 naming its request id (never a token, a 500 or a hang).
fn assert_store_requests_fail_closed(host: &Spin, token: &str) {
    let password = token_login(host, "dora", "dora-password");
    assert_eq!(password.status, 503, "{password:?}");
    check(&password);
    let api_token = token_login(host, "ci", token);
    assert_eq!(api_token.status, 503, "{api_token:?}");
    check(&api_token);
    let listed = admin(host, "GET", "/admin/users", None);
    assert_eq!(listed.status, 503, "{}", listed.text());
    let health = get(host, "/healthz", None);
    assert_eq!(health.status, 503, "{}", health.text());
}

/// A user and an API token written through the admin API; the token's
/// secret.
fn write_credentials(host: &Spin) -> String {
    create_user(host, "dora", "dora-password", &["team"]);
    let token = create_token(
        host,
        json!({"kind": "deploy", "owner": "dora", "name": "outage"}),
    );
    assert_eq!(token_login(host, "ci", &token).status, 200);
    token
}

/// Both credentials written before the fault still work.
fn assert_recovered(host: &Spin, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let recovered = loop {
        let seen = token_login(host, "ci", token);
        if seen.status == 200 || Instant::now() > deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(recovered.status, 200, "service recovers: {recovered:?}");
    assert_eq!(token_login(host, "dora", "dora-password").status, 200);
    assert_eq!(get(host, "/healthz", None).status, 200);
}

#[test]
fn a_store_that_fails_under_load_fails_closed_and_recovers_without_loss() {
    // Spin's default SQLite store, locked the way a stuck backup or a
    // failing disk would lock it.
    let host = start(variables(), Default::default());
    let token = write_credentials(&host);

    let stop = AtomicBool::new(false);
    let during: Vec<Seen> = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) && seen.len() < 2_000 {
                seen.push(token_login(&host, "ci", &token));
            }
            seen
        });
        std::thread::sleep(Duration::from_millis(300));
        let lock = host.lock_store();
        std::thread::sleep(Duration::from_millis(700));
        stop.store(true, Ordering::Relaxed);
        let during = load.join().unwrap();
        assert_store_requests_fail_closed(&host, &token);
        drop(lock);
        during
    });
    assert!(during.len() >= 5, "the load ran: {} requests", during.len());
    assert!(
        during.iter().any(|seen| seen.status == 503),
        "the fault was seen: {during:?}"
    );
    for seen in &during {
        check(seen);
    }
    let log = host.logs();
    assert!(
        log.lines()
            .filter(|line| line.contains("\"status\":503") && line.contains("\"path\":\"/token\""))
            .all(|line| line.contains("\"detail\":\"key-value store")),
        "every 503 token request is logged with the store's error:\n{log}"
    );

    // Back without restarting Spin, with everything written before.
    assert_recovered(&host, &token);
}
