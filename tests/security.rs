//! Issue 14's security findings, each reproduced against the built
//! component: every test here failed before its fix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use serde_json::{json, Value};

/// `docker login`: a GET with offline_token=true; returns the refresh token.
fn docker_login(host: &Spin, user: &str, password: &str) -> String {
    let path =
        format!("/token?account={user}&client_id=docker&offline_token=true&service={SERVICE}");
    let reply = get(host, &path, Some((user, password)));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["refresh_token"].as_str().unwrap().to_string()
}

/// docker's refresh POST.
fn refresh_docker(host: &Spin, refresh_token: &str) -> Reply {
    post_form(
        host,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("service", SERVICE),
            ("client_id", "docker"),
            ("scope", "repository:team/app:pull"),
        ],
    )
}

fn is_refused(reply: &Reply) -> bool {
    reply.status == 400 && reply.json()["error"] == "invalid_grant"
}

// Item 1: namespace capture through API-token owners.

#[test]
fn token_owners_must_be_users_and_not_shared_namespaces() {
    let host = start(variables(), seeded_users());
    for (owner, why) in [
        (
            "public",
            "a shared namespace: would get public/** through {account}",
        ),
        ("team", "a shared namespace"),
        ("platform", "a shared namespace"),
        ("ghost", "no such user: would inherit a later user's groups"),
        ("root", "a static policy member without a user record"),
    ] {
        let reply = admin(
            &host,
            "POST",
            "/admin/tokens",
            Some(json!({"kind": "personal", "owner": owner, "name": "robot"})),
        );
        assert_eq!(reply.status, 400, "{owner}: {why}: {}", reply.text());
    }
    let tokens = admin(&host, "GET", "/admin/tokens", None).json();
    assert_eq!(tokens["tokens"], json!([]), "nothing was created");
}

#[test]
fn a_token_dies_with_its_owner_even_if_the_name_is_reused() {
    let host = start(variables(), seeded_users());
    create_user(&host, "carol", "carol-password", &["team"]);
    let secret = create_token(
        &host,
        json!({"kind": "personal", "owner": "carol", "name": "laptop"}),
    );
    let path = token_path(&["repository:team/app:push"]);
    assert_eq!(get(&host, &path, Some(("carol", &secret))).status, 200);
    let key = format!("token/{}", scopegate::secret::digest_hex(&secret));
    let record = host.kv_get(&key).expect("the token record");

    assert_eq!(
        admin(&host, "DELETE", "/admin/users/carol", None).status,
        200
    );
    let again = admin(
        &host,
        "POST",
        "/admin/users",
        Some(json!({"name": "carol", "password": "other-password", "groups": ["team"]})),
    );
    assert_eq!(again.status, 201);
    // The old record back in the store, as a write racing the deletion
    // could leave it: it belongs to the old carol, not the new one.
    host.kv_set(&key, record);
    assert_eq!(
        get(&host, &path, Some(("carol", &secret))).status,
        401,
        "a re-created owner does not inherit the old token"
    );
}

// Item 3: refresh tokens survive a password change.

#[test]
fn a_password_change_ends_refresh_tokens_obtained_with_the_password() {
    let host = start(variables(), seeded_users());
    let by_password = docker_login(&host, "alice", "alice-password");
    let api_token = create_token(
        &host,
        json!({"kind": "personal", "owner": "alice", "name": "laptop"}),
    );
    let by_token = docker_login(&host, "alice", &api_token);
    assert_eq!(refresh_docker(&host, &by_password).status, 200);

    let changed = admin(
        &host,
        "PATCH",
        "/admin/users/alice",
        Some(json!({"password": "a-new-password"})),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert!(
        is_refused(&refresh_docker(&host, &by_password)),
        "password refresh ends"
    );
    let reply = refresh_docker(&host, &by_token);
    assert_eq!(
        reply.status,
        200,
        "the API token's refresh token follows the token: {}",
        reply.text()
    );

    // Disabling ends password refresh tokens for good; enabling again does
    // not revive them.
    let fresh = docker_login(&host, "alice", "a-new-password");
    for disabled in [true, false] {
        let reply = admin(
            &host,
            "PATCH",
            "/admin/users/alice",
            Some(json!({"disabled": disabled})),
        );
        assert_eq!(reply.status, 200);
    }
    assert!(is_refused(&refresh_docker(&host, &fresh)));
    assert_eq!(refresh_docker(&host, &by_token).status, 200);
}

// Item 4: unbounded hash parameters.

const SALT_AND_HASH: &str = "c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[test]
fn imported_hashes_outside_the_band_are_refused() {
    let host = start(variables(), seeded_users());
    for parameters in [
        "m=65536,t=3,p=4",
        "m=262144,t=4,p=1",
        "m=4000000,t=1,p=1",
        "m=1024,t=1,p=1",
    ] {
        let phc = format!("$argon2id$v=19${parameters}${SALT_AND_HASH}");
        let reply = admin(
            &host,
            "POST",
            "/admin/users",
            Some(json!({"name": "imported", "password_hash": phc})),
        );
        assert_eq!(reply.status, 400, "{parameters}: {}", reply.text());
    }
    let phc = format!("$argon2id$v=19$m=12288,t=3,p=1${SALT_AND_HASH}");
    let reply = admin(
        &host,
        "POST",
        "/admin/users",
        Some(json!({"name": "imported", "password_hash": phc})),
    );
    assert_eq!(
        reply.status,
        201,
        "OWASP's m=12288,t=3 is in the band: {}",
        reply.text()
    );
}

#[test]
fn a_stored_hash_with_huge_parameters_is_a_401_not_a_500() {
    let host = start(variables(), seeded_users());
    for parameters in ["m=4000000,t=1,p=1", "m=262144,t=4,p=1"] {
        let record = json!({
            "v": 1,
            "password": format!("$argon2id$v=19${parameters}${SALT_AND_HASH}"),
        });
        host.kv_set("user/huge", serde_json::to_vec(&record).unwrap());
        let reply = get(&host, &token_path(&[]), Some(("huge", "any-password")));
        assert_eq!(reply.status, 401, "{parameters}: {}", reply.text());
        assert!(
            host.logs()
                .contains("outside the accepted argon2 parameters"),
            "the log says why"
        );
    }
}

// Item 5: secrets in the request log.

#[test]
fn secrets_in_admin_urls_never_reach_the_log() {
    let host = start(variables(), seeded_users());
    let refresh = docker_login(&host, "alice", "alice-password");
    let api_token = create_token(
        &host,
        json!({"kind": "deploy", "owner": "alice", "name": "ci"}),
    );
    admin(
        &host,
        "DELETE",
        &format!("/admin/refresh-tokens/{refresh}"),
        None,
    );
    admin(&host, "DELETE", &format!("/admin/tokens/{api_token}"), None);
    send(
        &host,
        "GET",
        &format!("/admin/users/{refresh}"),
        &[],
        Body::None,
    );
    let logs = host.logs();
    for secret in [&refresh, &api_token] {
        assert!(!logs.contains(secret.as_str()), "{secret} in {logs}");
        // Not even a long piece of it.
        assert!(!logs.contains(&secret[4..20]), "{logs}");
    }
    assert!(logs.contains("[redacted]"));
}

#[test]
fn api_and_refresh_tokens_revoke_by_secret_in_the_body() {
    let host = start(variables(), seeded_users());
    let api_token = create_token(
        &host,
        json!({"kind": "deploy", "owner": "alice", "name": "ci"}),
    );
    let refresh = docker_login(&host, "alice", &api_token);
    let path = token_path(&["repository:team/app:pull"]);
    assert_eq!(get(&host, &path, Some(("ci", &api_token))).status, 200);

    let reply = admin(
        &host,
        "POST",
        "/admin/tokens/revoke",
        Some(json!({"token": api_token})),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["revoked_refresh_tokens"], 1);
    assert_eq!(get(&host, &path, Some(("ci", &api_token))).status, 401);
    assert!(is_refused(&refresh_docker(&host, &refresh)));
    let again = admin(
        &host,
        "POST",
        "/admin/tokens/revoke",
        Some(json!({"token": api_token})),
    );
    assert_eq!(again.status, 404);
    assert!(!host.logs().contains(api_token.as_str()));
}

// Item 6: writes on the authentication path.

#[test]
fn authentication_never_rewrites_a_token_record() {
    let host = start(variables(), seeded_users());
    let secret = create_token(
        &host,
        json!({"kind": "deploy", "owner": "alice", "name": "ci"}),
    );
    let digest = scopegate::secret::digest_hex(&secret);
    let before = host.kv_get(&format!("token/{digest}")).unwrap();
    assert_eq!(
        get(&host, &token_path(&[]), Some(("ci", &secret))).status,
        200
    );
    assert_eq!(
        host.kv_get(&format!("token/{digest}")).unwrap(),
        before,
        "a revocation landing between the load and a rewrite would be undone"
    );
    assert!(host.kv_get(&format!("last-used/{digest}")).is_some());
    let listed = admin(&host, "GET", "/admin/tokens", None).json();
    assert!(listed["tokens"][0]["last_used"].is_u64(), "{listed}");
}

#[test]
fn a_refresh_token_written_after_its_user_was_deleted_is_useless() {
    let host = start(variables(), seeded_users());
    let created = admin(
        &host,
        "POST",
        "/admin/users",
        Some(json!({"name": "dave", "password": "dave-password", "groups": ["team"]})),
    );
    assert_eq!(created.status, 201);
    let refresh = docker_login(&host, "dave", "dave-password");
    let key = format!("refresh/{}", scopegate::secret::digest_hex(&refresh));
    let record = host.kv_get(&key).unwrap();
    assert_eq!(
        admin(&host, "DELETE", "/admin/users/dave", None).status,
        200
    );
    let recreated = admin(
        &host,
        "POST",
        "/admin/users",
        Some(json!({"name": "dave", "password": "dave-password", "groups": ["team"]})),
    );
    assert_eq!(recreated.status, 201);
    // As a login racing the deletion would leave it: written after the sweep.
    host.kv_set(&key, record);
    assert!(is_refused(&refresh_docker(&host, &refresh)));
    assert!(
        !host
            .kv_keys()
            .iter()
            .any(|key| key.starts_with("last-used/") || key == "refresh-of/dave"),
        "{:?}",
        host.kv_keys()
    );
}

// Item 7: smaller findings.

#[test]
fn an_oversized_post_token_body_is_an_oauth_error() {
    let host = start(variables(), seeded_users());
    let body = format!(
        "grant_type=password&username=a&password={}",
        "x".repeat(20_000)
    );
    for framing in [Body::Sized(body.as_bytes()), Body::Chunked(body.as_bytes())] {
        let reply = send(
            &host,
            "POST",
            "/token",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            framing,
        );
        assert_eq!(reply.status, 413);
        assert_eq!(reply.json()["error"], "invalid_request", "{}", reply.text());
    }
}

#[test]
fn refresh_tokens_per_account_are_capped_oldest_first() {
    let host = start(variables(), seeded_users());
    let tokens: Vec<String> = (0..23)
        .map(|_| docker_login(&host, "alice", "alice-password"))
        .collect();
    let stored = host
        .kv_keys()
        .into_iter()
        .filter(|key| key.starts_with("refresh/"))
        .count();
    assert_eq!(stored, 20);
    for (i, token) in tokens.iter().enumerate() {
        assert_eq!(
            refresh_docker(&host, token).status == 200,
            i >= 3,
            "token {i}"
        );
    }
}

#[test]
fn listing_refresh_tokens_purges_expired_ones() {
    let host = start(variables(), seeded_users());
    let live = docker_login(&host, "alice", "alice-password");
    let expired: Value = json!({
        "v": 1, "account": "bob", "service": SERVICE, "kind": "password",
        "expires_at": 1, "created_at": 0
    });
    host.kv_set("refresh/00expired", serde_json::to_vec(&expired).unwrap());
    let listed = admin(&host, "GET", "/admin/refresh-tokens", None).json();
    let ids: Vec<&str> = listed["refresh_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [scopegate::secret::digest_hex(&live)]);
    assert_eq!(host.kv_get("refresh/00expired"), None);
}
