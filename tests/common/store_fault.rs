//! What the store-fault tests (`faults.rs`, `store_outage.rs`) check of each answer while
//! the store fails: a token, or a 503 naming its request id; never anything else, and
//! never later than the test's bound.

use std::time::{Duration, Instant};

use super::{get, token_path, Reply, Spin};

/// What one request answered, and how long it took.
#[derive(Debug)]
pub struct Seen {
    pub status: u16,
    pub body: String,
    pub took: Duration,
}

/// Runs `request`, timing it.
pub fn timed(request: impl FnOnce() -> Reply) -> Seen {
    let started = Instant::now();
    let reply = request();
    Seen {
        status: reply.status,
        body: reply.text(),
        took: started.elapsed(),
    }
}

/// `GET /token` for `scope` as `user:secret`, timed.
pub fn token_login(host: &Spin, scope: &str, user: &str, secret: &str) -> Seen {
    timed(|| get(host, &token_path(&[scope]), Some((user, secret))))
}

/// A token, or a 503 naming its request id with no token; answered within `within`.
pub fn check_fail_closed(seen: &Seen, within: Duration) {
    match seen.status {
        200 => assert!(seen.body.contains("\"token\""), "{seen:?}"),
        503 => {
            assert!(
                seen.body.contains("request id"),
                "503 names its request id: {seen:?}"
            );
            assert!(!seen.body.contains("\"token\""), "{seen:?}");
        }
        _ => panic!("only 200 or 503 while the store fails: {seen:?}"),
    }
    assert!(
        seen.took < within,
        "answered after {:?}, past {within:?}: {seen:?}",
        seen.took
    );
}
