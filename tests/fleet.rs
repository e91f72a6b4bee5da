//! Several instances, one store: two real `spin up` processes whose default
//! key-value store is one Redis, as a fleet behind a load balancer runs.
//! Whatever one instance writes, the other acts on at its next request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scopegate_harness::Redis;
use serde_json::json;

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
