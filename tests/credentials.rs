//! API tokens, lockout and the admin API through the built component.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};

fn access_for(
    host: &Spin,
    scopes: &[&str],
    user: &str,
    password: &str,
) -> Vec<(String, String, Vec<String>)> {
    let reply = get(host, &token_path(scopes), Some((user, password)));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (_, claims) = verify(host, reply.json()["token"].as_str().unwrap());
    access_of(&claims)
}

#[test]
fn each_token_kind_grants_what_it_should_and_never_more() {
    let host = start(variables(), seeded_users());
    let deploy = create_token(
        &host,
        json!({"kind": "deploy", "owner": "alice", "name": "prod", "scopes": ["repository:team/**:pull,push,delete"]}),
    );
    assert!(deploy.starts_with("sgd_"));
    // Policy denies delete to deploy tokens whatever the limit says.
    assert_eq!(
        access_for(&host, &["repository:team/app:*"], "ci", &deploy),
        [entry("repository", "team/app", &["pull", "push"])]
    );
    assert!(
        access_for(&host, &["repository:public/x:pull"], "ci", &deploy).is_empty(),
        "limits narrow"
    );

    let personal = create_token(
        &host,
        json!({"kind": "personal", "owner": "alice", "name": "laptop"}),
    );
    assert!(personal.starts_with("sgp_"));
    assert_eq!(
        access_for(
            &host,
            &["repository:team/app:pull,push,delete"],
            "alice",
            &personal
        ),
        [entry("repository", "team/app", &["delete", "pull", "push"])]
    );

    let job = create_token(
        &host,
        json!({"kind": "job", "owner": "alice", "name": "build-42", "scopes": ["repository:team/app:pull,push"], "ttl_seconds": 600}),
    );
    assert!(job.starts_with("sgj_"));
    assert_eq!(
        access_for(
            &host,
            &[
                "repository:team/app:pull,push",
                "repository:team/other:pull"
            ],
            "x",
            &job
        ),
        [entry("repository", "team/app", &["pull", "push"])]
    );
}

#[test]
fn job_tokens_are_short_and_bound_to_one_repository() {
    let host = start(variables(), seeded_users());
    for spec in [
        json!({"kind": "job", "owner": "alice", "name": "j"}),
        json!({"kind": "job", "owner": "alice", "name": "j", "scopes": ["repository:team/**:pull"]}),
        json!({"kind": "job", "owner": "alice", "name": "j", "scopes": ["repository:team/app:pull"], "ttl_seconds": 86400}),
    ] {
        let reply = admin(&host, "POST", "/admin/tokens", Some(spec.clone()));
        assert_eq!(reply.status, 400, "{spec}: {}", reply.text());
    }
}

#[test]
fn expired_and_revoked_tokens_get_401() {
    let host = start(variables(), seeded_users());
    let token = create_token(
        &host,
        json!({"kind": "personal", "owner": "alice", "name": "t"}),
    );
    let listed = admin(&host, "GET", "/admin/tokens?owner=alice", None).json();
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(
        !listed.to_string().contains(&token),
        "lists never show the secret"
    );
    let id = tokens[0]["id"].as_str().unwrap().to_string();

    // Expired: rewrite the record's expiry into the past.
    let key = format!("token/{id}");
    let mut record: Value = serde_json::from_slice(&host.kv_get(&key).unwrap()).unwrap();
    let saved = record.clone();
    record["expires_at"] = json!(1);
    host.kv_set(&key, serde_json::to_vec(&record).unwrap());
    assert_eq!(
        get(
            &host,
            &token_path(&["repository:team/app:pull"]),
            Some(("alice", &token))
        )
        .status,
        401
    );
    host.kv_set(&key, serde_json::to_vec(&saved).unwrap());
    assert_eq!(
        get(
            &host,
            &token_path(&["repository:team/app:pull"]),
            Some(("alice", &token))
        )
        .status,
        200
    );

    let revoked = admin(
        &host,
        "DELETE",
        &format!("/admin/tokens/{}", &id[..12]),
        None,
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(
        get(
            &host,
            &token_path(&["repository:team/app:pull"]),
            Some(("alice", &token))
        )
        .status,
        401
    );
    assert!(host.kv_get(&key).is_none());
}

#[test]
fn lockout_after_failures_while_tokens_keep_working() {
    let host = start(variables(), seeded_users());
    let token = create_token(
        &host,
        json!({"kind": "deploy", "owner": "alice", "name": "ci"}),
    );
    let path = token_path(&["repository:team/app:pull"]);
    for _ in 0..3 {
        assert_eq!(get(&host, &path, Some(("alice", "wrong"))).status, 401);
    }
    assert_eq!(
        get(&host, &path, Some(("alice", "alice-password"))).status,
        401,
        "locked"
    );
    assert_eq!(
        get(&host, &path, Some(("ci", &token))).status,
        200,
        "tokens unaffected"
    );
    let shown = admin(&host, "GET", "/admin/users/alice", None).json();
    assert!(shown["locked_until"].as_u64().is_some());
    assert_eq!(
        admin(&host, "POST", "/admin/users/alice/unlock", None).status,
        200
    );
    assert_eq!(
        get(&host, &path, Some(("alice", "alice-password"))).status,
        200
    );
}

#[test]
fn token_logins_do_not_write_to_the_store_on_every_request() {
    let host = start(variables(), seeded_users());
    let token = create_token(
        &host,
        json!({"kind": "deploy", "owner": "alice", "name": "ci"}),
    );
    let path = token_path(&["repository:team/app:pull"]);
    assert_eq!(get(&host, &path, Some(("ci", &token))).status, 200);
    let watch = host.watch_store();
    for _ in 0..20 {
        assert_eq!(get(&host, &path, Some(("ci", &token))).status, 200);
    }
    assert!(
        !watch.has_written(),
        "no store write (set or delete) after the first use"
    );
}

#[test]
fn user_management() {
    let host = start(variables(), seeded_users());
    create_user(&host, "carol", "carol-password", &["team"]);
    assert_eq!(
        access_for(
            &host,
            &["repository:team/app:push"],
            "carol",
            "carol-password"
        ),
        [entry("repository", "team/app", &["push"])]
    );
    assert_eq!(
        admin(
            &host,
            "POST",
            "/admin/users",
            Some(json!({"name": "carol", "password": "another-one"}))
        )
        .status,
        409
    );

    let changed = admin(
        &host,
        "PATCH",
        "/admin/users/carol",
        Some(json!({"groups": []})),
    );
    assert_eq!(changed.status, 200);
    assert!(access_for(
        &host,
        &["repository:team/app:push"],
        "carol",
        "carol-password"
    )
    .is_empty());

    assert_eq!(
        admin(
            &host,
            "PATCH",
            "/admin/users/carol",
            Some(json!({"disabled": true}))
        )
        .status,
        200
    );
    assert_eq!(
        get(&host, &token_path(&[]), Some(("carol", "carol-password"))).status,
        401
    );

    let token = create_token(
        &host,
        json!({"kind": "deploy", "owner": "carol", "name": "x"}),
    );
    assert_eq!(
        admin(&host, "DELETE", "/admin/users/carol", None).status,
        200
    );
    assert_eq!(admin(&host, "GET", "/admin/users/carol", None).status, 404);
    assert_eq!(
        get(&host, &token_path(&[]), Some(("carol", &token))).status,
        401,
        "tokens die with their owner"
    );

    let users = admin(&host, "GET", "/admin/users", None).json();
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice", "bob"]);
    assert!(
        !users.to_string().contains("argon2"),
        "no password hashes in answers"
    );
}

#[test]
fn admin_api_rejects_bad_secrets_and_bad_input() {
    let host = start(variables(), seeded_users());
    let no_secret = send(&host, "GET", "/admin/users", &[], Body::None);
    assert_eq!(no_secret.status, 401);
    let wrong = send(
        &host,
        "GET",
        "/admin/users",
        &[("Authorization", "Bearer nope")],
        Body::None,
    );
    assert_eq!(wrong.status, 401);
    let basic = get(&host, "/admin/users", Some(("admin", ADMIN_SECRET)));
    assert_eq!(basic.status, 401);

    let bearer = format!("Bearer {ADMIN_SECRET}");
    let post = |body: &[u8], content_type: &str| {
        send(
            &host,
            "POST",
            "/admin/users",
            &[("Authorization", &bearer), ("Content-Type", content_type)],
            Body::Sized(body),
        )
    };
    let cases: Vec<(Vec<u8>, &str, u16)> = vec![
        (b"{not json".to_vec(), "application/json", 400),
        (
            br#"{"name":"dave","password":"long-enough","admin":true}"#.to_vec(),
            "application/json",
            400,
        ),
        (
            br#"{"name":"Dave!","password":"long-enough"}"#.to_vec(),
            "application/json",
            400,
        ),
        (
            br#"{"name":"dave","password":"short"}"#.to_vec(),
            "application/json",
            400,
        ),
        (
            br#"{"name":"dave","password_hash":"$2b$10$abc"}"#.to_vec(),
            "application/json",
            400,
        ),
        (br#"{"name":"dave"}"#.to_vec(), "application/json", 400),
        (
            br#"{"name":"public","password":"long-enough"}"#.to_vec(),
            "application/json",
            400,
        ),
        (
            br#"{"name":"dave","password":"long-enough"}"#.to_vec(),
            "text/plain",
            400,
        ),
        (vec![b'x'; 100_000], "application/json", 413),
    ];
    for (body, content_type, status) in cases {
        let reply = post(&body, content_type);
        assert_eq!(
            reply.status,
            status,
            "{}: {}",
            String::from_utf8_lossy(&body[..body.len().min(60)]),
            reply.text()
        );
        assert!(reply.json()["errors"][0]["message"].as_str().is_some());
    }
    assert!(
        host.kv_get("user/dave").is_none(),
        "bad input loses nothing and adds nothing"
    );
    assert_eq!(admin(&host, "GET", "/admin/nothing", None).status, 404);
    assert_eq!(admin(&host, "PUT", "/admin/users", None).status, 405);
}

#[test]
fn admin_api_is_off_without_a_secret() {
    let mut vars = variables();
    vars.remove("admin_token_sha256");
    let host = start(vars, seeded_users());
    let reply = send(
        &host,
        "GET",
        "/admin/users",
        &[("Authorization", &format!("Bearer {ADMIN_SECRET}"))],
        Body::None,
    );
    assert_eq!(reply.status, 404);
}

#[test]
fn admin_changes_are_audited_without_secrets() {
    let host = start(variables(), seeded_users());
    let token = create_token(
        &host,
        json!({"kind": "deploy", "owner": "alice", "name": "audited"}),
    );
    admin(
        &host,
        "POST",
        "/admin/users",
        Some(json!({"name": "erin", "password": "erin-password"})),
    );
    let logs = host.logs();
    assert!(logs.contains("audit: create deploy token audited for alice"));
    assert!(logs.contains("audit: create user erin"));
    assert!(!logs.contains(&token));
    assert!(!logs.contains("erin-password"));
    assert!(!logs.contains(ADMIN_SECRET));
}

#[test]
fn explain_shows_the_grant_and_the_rules() {
    let host = start(variables(), seeded_users());
    let reply = admin(
        &host,
        "POST",
        "/admin/explain",
        Some(
            json!({"account": "alice", "kind": "deploy", "scopes": ["repository:team/app:pull,delete"]}),
        ),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["granted"], "repository:team/app:pull");
    assert!(body["explanation"].to_string().contains("delete"));
}
