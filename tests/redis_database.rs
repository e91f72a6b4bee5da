//! Two scopegate deployments on one Redis, each in its own database
//! (`redis://HOST:PORT/1`, `/2`), as the README's "Redis as the fleet's
//! store" recommends: Spin's Redis store honours the database number of its
//! URL, so neither deployment sees the other's users or tokens, and nothing
//! lands in database 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scopegate_harness::Redis;
use serde_json::json;
use std::process::Command;

fn on_database(redis: &Redis, database: u8) -> Spin {
    Spin::start(SpinOptions {
        variables: variables(),
        redis_url: Some(format!("{}/{database}", redis.url())),
        ..SpinOptions::default()
    })
}

/// The keys of `database`, read with redis-cli as an operator would.
fn keys(redis: &Redis, database: u8) -> Vec<String> {
    let program = scopegate_harness::require_program("redis-cli", "redis-server");
    let output = Command::new(program)
        .args(["-u", &format!("{}/{database}", redis.url()), "--scan"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut keys: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    keys.sort();
    keys
}

fn status(host: &Spin, user: &str, password: &str) -> u16 {
    get(
        host,
        &token_path(&["repository:team/app:pull"]),
        Some((user, password)),
    )
    .status
}

#[test]
fn two_deployments_in_two_databases_of_one_redis_never_meet() {
    let redis = Redis::start();
    let first = on_database(&redis, 1);
    let second = on_database(&redis, 2);

    create_user(&first, "frank", "first-password", &["team"]);
    let token = create_token(
        &first,
        json!({"kind": "deploy", "owner": "frank", "name": "ci"}),
    );
    assert_eq!(status(&first, "frank", "first-password"), 200);
    assert_eq!(status(&first, "ci", &token), 200);

    // The second deployment has no frank and no such token...
    assert_eq!(status(&second, "frank", "first-password"), 401);
    assert_eq!(status(&second, "ci", &token), 401);
    let listed = admin(&second, "GET", "/admin/users", None);
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["users"], json!([]), "{}", listed.text());

    // ...and a frank of its own, with another password, leaves the first alone.
    create_user(&second, "frank", "second-password", &["team"]);
    assert_eq!(status(&second, "frank", "second-password"), 200);
    assert_eq!(status(&first, "frank", "second-password"), 401);
    assert_eq!(status(&first, "frank", "first-password"), 200);

    // In Redis: each user record in its own database, none in database 0.
    assert!(keys(&redis, 1).contains(&"user/frank".to_string()));
    assert!(keys(&redis, 2).contains(&"user/frank".to_string()));
    assert!(
        keys(&redis, 1).iter().any(|key| key.starts_with("token/")),
        "{:?}",
        keys(&redis, 1)
    );
    assert!(
        !keys(&redis, 2).iter().any(|key| key.starts_with("token/")),
        "{:?}",
        keys(&redis, 2)
    );
    assert_eq!(keys(&redis, 0), Vec::<String>::new());
}
