//! Several instances, one store: two real `spin up` processes whose default
//! key-value store is one Redis, as a fleet behind a load balancer runs.
//! Whatever one instance writes, the other acts on at its next request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use scopegate_harness::Redis;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// An instance with the shared test variables on `redis`.
fn instance(redis: &Redis) -> Spin {
    Spin::start(SpinOptions {
        variables: variables(),
        redis_url: Some(redis.url()),
        ..SpinOptions::default()
    })
}

fn status(host: &Spin, scope: &str, user: &str, password: &str) -> u16 {
    get(host, &token_path(&[scope]), Some((user, password))).status
}

#[test]
fn two_instances_on_one_redis_see_each_others_writes() {
    let redis = Redis::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let push = "repository:team/app:pull,push";

    // A user created through A logs in on B and gets what the policy gives.
    create_user(&a, "dora", "dora-password", &["team"]);
    let reply = get(&b, &token_path(&[push]), Some(("dora", "dora-password")));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (_, claims) = verify(&b, reply.json()["token"].as_str().unwrap());
    assert_eq!(
        access_of(&claims),
        [entry("repository", "team/app", &["pull", "push"])]
    );

    // An API token created on A works on B; revoked on A, B refuses it at
    // its next request.
    let token = create_token(
        &a,
        json!({"kind": "deploy", "owner": "dora", "name": "fleet"}),
    );
    assert_eq!(status(&b, push, "ci", &token), 200);
    let listed = admin(&a, "GET", "/admin/tokens?owner=dora", None);
    let id = listed.json()["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = admin(&a, "DELETE", &format!("/admin/tokens/{id}"), None);
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(
        status(&b, push, "ci", &token),
        401,
        "revoked on A, refused on B"
    );

    // A lockout made on A (threshold 3) refuses the right password on B,
    // while token logins on B keep working.
    let other = create_token(
        &a,
        json!({"kind": "personal", "owner": "dora", "name": "laptop"}),
    );
    for _ in 0..3 {
        assert_eq!(status(&a, push, "dora", "wrong-password"), 401);
    }
    assert_eq!(
        status(&b, push, "dora", "dora-password"),
        401,
        "locked on A, locked on B"
    );
    assert_eq!(
        status(&b, push, "ci", &other),
        200,
        "token logins keep working"
    );
    let user = admin(&b, "GET", "/admin/users/dora", None).json();
    assert!(user["locked_until"].as_u64().is_some(), "{user}");
}

/// Sends `count` wrong passwords for `user` at once, alternating between
/// the instances.
fn concurrent_failures(instances: &[&Spin], user: &str, count: usize) {
    let barrier = std::sync::Barrier::new(count);
    std::thread::scope(|scope| {
        for index in 0..count {
            let host = instances[index % instances.len()];
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                let status = status(host, "repository:team/app:pull", user, "wrong-password");
                assert_eq!(status, 401);
            });
        }
    });
}

fn locked_until(host: &Spin, user: &str) -> serde_json::Value {
    let reply = admin(host, "GET", &format!("/admin/users/{user}"), None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["locked_until"].clone()
}

#[test]
fn lockout_counts_concurrent_failures_on_two_instances_exactly() {
    let redis = Redis::start();
    let mut settings = variables();
    settings.insert("lockout_threshold".into(), "10".into());
    // One window for the whole test: a burst never straddles two.
    settings.insert("lockout_seconds".into(), "86400".into());
    let start = || {
        Spin::start(SpinOptions {
            variables: settings.clone(),
            redis_url: Some(redis.url()),
            ..SpinOptions::default()
        })
    };
    let (a, b) = (start(), start());
    for user in ["nine", "ten"] {
        create_user(&a, user, "right-password", &["team"]);
    }

    // Threshold minus one, all at once over both instances: still open.
    concurrent_failures(&[&a, &b], "nine", 9);
    assert!(locked_until(&a, "nine").is_null(), "9 failures do not lock");
    assert_eq!(
        status(&b, "repository:team/app:pull", "nine", "right-password"),
        200
    );

    // The threshold, all at once: locked on both, whoever counted what.
    concurrent_failures(&[&a, &b], "ten", 10);
    assert!(locked_until(&b, "ten").is_u64(), "10 failures lock");
    for host in [&a, &b] {
        assert_eq!(
            status(host, "repository:team/app:pull", "ten", "right-password"),
            401,
            "locked on every instance"
        );
    }
}

/// What the load of [`a_rolling_restart_loses_no_request_and_no_record`] saw.
#[derive(Default)]
struct Load {
    /// Requests answered 200 with a token.
    served: AtomicUsize,
    /// Attempts an instance did not answer (refused, reset, closed) that the
    /// client then sent to the other instance, as a load balancer retries.
    retried: AtomicUsize,
    /// Answers that were not a token, with the instance that gave them.
    refused: Mutex<Vec<String>>,
    /// The instance being stopped, once the stop signal is sent.
    stopping: Mutex<Option<SocketAddr>>,
    /// Requests in flight at the stop signal that Spin itself answered 500 with no body
    /// (its answer for a request it is cut off from), then sent to the other instance.
    cut_off: AtomicUsize,
}

/// One API-token request as a load balancer sends it: to `pool[first]`,
/// and to the next instance of the pool when that one does not answer.
fn balanced_request(pool: &Mutex<Vec<SocketAddr>>, first: usize, token: &str, load: &Load) {
    let authorization = format!("Basic {}", STANDARD.encode(format!("ci:{token}")));
    let target = token_path(&["repository:team/app:pull"]);
    let addrs = pool.lock().unwrap().clone();
    for attempt in 0..addrs.len() {
        let addr = addrs[(first + attempt) % addrs.len()];
        let headers = [("Authorization", authorization.as_str())];
        match scopegate_harness::http::request(addr, "GET", &target, &headers, Body::None) {
            Ok(reply) if reply.status == 200 && reply.json()["token"].is_string() => {
                load.served.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // Spin 4.0.2 may answer a request that was in flight when it got SIGTERM
            // with its own empty 500 (seen once in about 25 runs): a client can only
            // retry it elsewhere, as it retries a reset connection.
            Ok(reply)
                if reply.status == 500
                    && reply.body.is_empty()
                    && *load.stopping.lock().unwrap() == Some(addr) =>
            {
                load.cut_off.fetch_add(1, Ordering::Relaxed);
            }
            Ok(reply) => {
                let text = format!("{addr}: {} {}", reply.status, reply.text());
                load.refused.lock().unwrap().push(text);
                return;
            }
            Err(_) => {
                load.retried.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let text = format!("no instance of {addrs:?} answered");
    load.refused.lock().unwrap().push(text);
}

/// A rolling restart, as an orchestrator replaces one pod: two instances on
/// one Redis serve a bounded load from four clients; one instance is
/// stopped while it still receives requests, the other takes writes while
/// it is gone, and a new instance joins in its place. Every request that an
/// instance did not answer is served by the other one (nothing is refused),
/// and every record, written before or during the restart, is acted on by
/// the new instance.
#[test]
fn a_rolling_restart_loses_no_request_and_no_record() {
    let redis = Redis::start();
    let mut a = instance(&redis);
    let b = instance(&redis);
    create_user(&a, "erin", "erin-password", &["team"]);
    let load_token = create_token(
        &a,
        json!({"kind": "deploy", "owner": "erin", "name": "load"}),
    );
    let kept = create_token(
        &a,
        json!({"kind": "deploy", "owner": "erin", "name": "kept"}),
    );
    let docker_login =
        format!("/token?account=erin&client_id=docker&offline_token=true&service={SERVICE}");
    let login = get(&a, &docker_login, Some(("erin", "erin-password")));
    assert_eq!(login.status, 200, "{}", login.text());
    let refresh = login.json()["refresh_token"].as_str().unwrap().to_string();
    // Every secret the load sends must stay out of the logs as well.
    for host in [&a, &b] {
        host.forbid_in_logs(&load_token);
    }

    let pool = Mutex::new(vec![a.addr(), b.addr()]);
    let load = Load::default();
    let restarted = AtomicBool::new(false);
    const CLIENTS: usize = 4;
    // Bounded: each client stops after the restart plus 50 requests, and
    // after 5,000 requests whatever happens.
    const AFTER: usize = 50;
    const AT_MOST: usize = 5_000;
    let new_instance = std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (pool, load, restarted, token) = (&pool, &load, &restarted, &load_token);
            scope.spawn(move || {
                let mut after = 0;
                for sent in 0..AT_MOST {
                    balanced_request(pool, client + sent, token, load);
                    if restarted.load(Ordering::Relaxed) {
                        after += 1;
                        if after == AFTER {
                            break;
                        }
                    }
                }
            });
        }
        let served_at_least = |count: usize| {
            while load.served.load(Ordering::Relaxed) < count
                && load.refused.lock().unwrap().is_empty()
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        served_at_least(100);
        // Stopped while the pool still sends it requests: the worst case,
        // with no endpoint removal before the signal.
        *load.stopping.lock().unwrap() = Some(a.addr());
        a.stop();
        pool.lock().unwrap().retain(|addr| *addr != a.addr());

        // Writes while A is gone.
        create_user(&b, "fern", "fern-password", &["team"]);
        let listed = admin(&b, "GET", "/admin/tokens?owner=erin", None);
        let revoked_id = listed.json()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|token| token["name"] == "kept")
            .map(|token| token["id"].as_str().unwrap().to_string())
            .unwrap();
        let revoked = admin(&b, "DELETE", &format!("/admin/tokens/{revoked_id}"), None);
        assert_eq!(revoked.status, 200, "{}", revoked.text());
        let during = create_token(
            &b,
            json!({"kind": "deploy", "owner": "fern", "name": "during"}),
        );
        served_at_least(load.served.load(Ordering::Relaxed) + 100);

        let c = instance(&redis);
        c.forbid_in_logs(&load_token);
        pool.lock().unwrap().push(c.addr());
        restarted.store(true, Ordering::Relaxed);
        (c, during)
    });
    let (c, during) = new_instance;

    let refused = load.refused.lock().unwrap().clone();
    assert!(refused.is_empty(), "requests lost: {refused:?}");
    let served = load.served.load(Ordering::Relaxed);
    assert!(served >= 200 + CLIENTS * AFTER, "served {served}");
    println!(
        "rolling restart: {served} requests served, {} attempts retried on the other instance, {} of them answered 500 by the stopping Spin",
        load.retried.load(Ordering::Relaxed) + load.cut_off.load(Ordering::Relaxed),
        load.cut_off.load(Ordering::Relaxed)
    );

    // The new instance acts on every record, old and new.
    let push = "repository:team/app:pull,push";
    assert_eq!(status(&c, push, "ci", &load_token), 200);
    assert_eq!(status(&c, push, "fern", "fern-password"), 200);
    assert_eq!(status(&c, push, "ci", &during), 200);
    assert_eq!(
        status(&c, push, "ci", &kept),
        401,
        "revoked while A was gone"
    );
    let refreshed = post_form(
        &c,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", SERVICE),
            ("client_id", "docker"),
            ("scope", "repository:team/app:pull"),
        ],
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.text());
    drop(b);
}
