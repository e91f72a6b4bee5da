//! The Docker token flow through the built component under real Spin:
//! what a registry and docker/skopeo see.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn anonymous_pull_of_a_public_repository() {
    let host = start(variables(), seeded_users());
    let reply = get(&host, &token_path(&["repository:public/hello:pull"]), None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["token"], body["access_token"]);
    assert!(body["expires_in"].as_u64().unwrap() >= 60);
    let issued_at = body["issued_at"].as_str().unwrap();
    assert!(
        issued_at.len() == 20 && issued_at.ends_with('Z') && issued_at.as_bytes()[10] == b'T',
        "issued_at is RFC 3339: {issued_at}"
    );
    assert!(body.get("refresh_token").is_none());
    let (payload, claims) = verify(&host, body["token"].as_str().unwrap());
    assert_eq!(payload["sub"], "");
    assert_eq!(claims.custom.auth_type, "anonymous");
    assert_eq!(
        access_of(&claims),
        [entry("repository", "public/hello", &["pull"])]
    );
}

#[test]
fn anonymous_push_gets_a_token_without_push() {
    let host = start(variables(), seeded_users());
    let reply = get(
        &host,
        &token_path(&["repository:public/hello:push,pull"]),
        None,
    );
    assert_eq!(reply.status, 200);
    let (_, claims) = verify(&host, reply.json()["token"].as_str().unwrap());
    assert_eq!(
        access_of(&claims),
        [entry("repository", "public/hello", &["pull"])]
    );
}

#[test]
fn authenticated_push_to_the_team_namespace() {
    let host = start(variables(), seeded_users());
    let reply = get(
        &host,
        &token_path(&["repository:team/app:pull,push"]),
        Some(("alice", "alice-password")),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (payload, claims) = verify(&host, reply.json()["token"].as_str().unwrap());
    assert_eq!(payload["sub"], "alice");
    assert_eq!(claims.custom.auth_type, "password");
    assert_eq!(
        access_of(&claims),
        [entry("repository", "team/app", &["pull", "push"])]
    );
}

#[test]
fn partial_grant_carries_only_what_policy_allows() {
    let host = start(variables(), seeded_users());
    // bob is in no group: he may pull public images and own bob/**, nothing in team/.
    let reply = get(
        &host,
        &token_path(&[
            "repository:public/hello:pull,push",
            "repository:team/app:pull",
            "repository:bob/tools:push,pull",
        ]),
        Some(("bob", "bob-password")),
    );
    assert_eq!(reply.status, 200);
    let (_, claims) = verify(&host, reply.json()["token"].as_str().unwrap());
    assert_eq!(
        access_of(&claims),
        [
            entry("repository", "bob/tools", &["pull", "push"]),
            entry("repository", "public/hello", &["pull"]),
        ]
    );
}

#[test]
fn several_scopes_in_one_value_and_delete_by_star() {
    let host = start(variables(), seeded_users());
    // go-containerregistry joins scopes with spaces; skopeo deletes with `*`.
    let reply = get(
        &host,
        &token_path(&["repository:team/app:* repository:team/other:pull"]),
        Some(("alice", "alice-password")),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (_, claims) = verify(&host, reply.json()["token"].as_str().unwrap());
    let access = access_of(&claims);
    assert_eq!(access.len(), 2);
    let team_app = &access[0];
    assert_eq!(team_app.1, "team/app");
    assert!(
        team_app.2 == ["*"] || team_app.2 == ["delete", "pull", "push"],
        "a `*` request is answered with what delete needs: {team_app:?}"
    );
}

#[test]
fn catalog_for_admins_only() {
    let host = start(variables(), seeded_users());
    let admin = get(
        &host,
        &token_path(&["registry:catalog:*"]),
        Some(("admin", "admin-password")),
    );
    let (_, claims) = verify(&host, admin.json()["token"].as_str().unwrap());
    assert_eq!(access_of(&claims), [entry("registry", "catalog", &["*"])]);

    let alice = get(
        &host,
        &token_path(&["registry:catalog:*"]),
        Some(("alice", "alice-password")),
    );
    let (_, claims) = verify(&host, alice.json()["token"].as_str().unwrap());
    assert!(access_of(&claims).is_empty());
}

#[test]
fn unknown_service_is_a_400() {
    let host = start(variables(), seeded_users());
    let reply = get(
        &host,
        "/token?service=elsewhere&scope=repository:public/a:pull",
        None,
    );
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!(body["errors"][0]["code"], "INVALID_REQUEST");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("elsewhere"));
}

#[test]
fn bad_credentials_are_one_identical_401() {
    let host = start(variables(), seeded_users());
    let path = token_path(&["repository:team/app:pull"]);
    let wrong_password = get(&host, &path, Some(("alice", "nope")));
    let unknown_user = get(&host, &path, Some(("mallory", "nope")));
    let unknown_token = get(
        &host,
        &path,
        Some(("ci", "sgd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
    );
    for reply in [&wrong_password, &unknown_user, &unknown_token] {
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Basic realm=\"http://127.0.0.1/token\"")
        );
        assert_eq!(reply.json()["errors"][0]["code"], "UNAUTHORIZED");
        assert_eq!(reply.body, wrong_password.body);
    }
}

#[test]
fn malformed_scope_is_a_400_naming_it() {
    let host = start(variables(), seeded_users());
    let cases = [
        "repository:Team/App:pull",
        "repository:team/app",
        "repository::pull",
        "repository:team//app:pull",
    ];
    for scope in cases {
        let reply = get(&host, &token_path(&[scope]), None);
        assert_eq!(reply.status, 400, "{scope}: {}", reply.text());
        let message = reply.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(reply.json()["errors"][0]["code"], "INVALID_REQUEST");
        assert!(!message.is_empty(), "{scope}");
    }
    let many: Vec<String> = (0..33)
        .map(|i| format!("repository:public/r{i}:pull"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(get(&host, &token_path(&many), None).status, 400);
}

#[test]
fn jwks_and_health() {
    let host = start(variables(), seeded_users());
    let jwks = get(&host, "/.well-known/jwks.json", None);
    assert_eq!(jwks.status, 200);
    let keys = jwks.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0].get("d").is_none(), "no private part in the JWKS");

    let health = get(&host, "/healthz", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
}

#[test]
fn previous_key_is_published_during_rotation() {
    let mut vars = variables();
    vars.insert(
        "previous_public_key".into(),
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\nq9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n-----END PUBLIC KEY-----\n".into(),
    );
    let host = start(vars, seeded_users());
    let keys = get(&host, "/.well-known/jwks.json", None).json()["keys"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0]["kid"], keys[1]["kid"]);
}

#[test]
fn unusable_key_fails_closed_with_503() {
    let mut vars = variables();
    vars.insert("signing_key".into(), "not a key".into());
    let host = start(vars, seeded_users());
    let reply = get(&host, &token_path(&["repository:public/hello:pull"]), None);
    assert_eq!(reply.status, 503);
    assert!(reply.json().get("token").is_none());
    let health = get(&host, "/healthz", None);
    assert_eq!(health.status, 503);
    assert!(!health.text().contains("not a key"));
    assert!(host
        .logs()
        .contains("signing_key is not a P-256 PKCS#8 PEM private key"));
}

#[test]
fn routes_and_methods() {
    let host = start(variables(), seeded_users());
    assert_eq!(get(&host, "/nowhere", None).status, 404);
    assert_eq!(send(&host, "DELETE", "/token", &[], Body::None).status, 405);
    for alias in ["/jwt/auth", "/auth"] {
        let path = token_path(&["repository:public/a:pull"]).replacen("/token", alias, 1);
        assert_eq!(get(&host, &path, None).status, 200, "{alias}");
    }
}

#[test]
fn logs_carry_one_json_line_per_request_and_no_secrets() {
    let host = start(variables(), seeded_users());
    let reply = get(
        &host,
        &token_path(&["repository:team/app:pull"]),
        Some(("alice", "alice-password")),
    );
    let token = reply.json()["token"].as_str().unwrap().to_string();
    get(
        &host,
        &token_path(&["repository:team/app:pull"]),
        Some(("alice", "wrong-password")),
    );
    let logs = host.logs();
    assert!(!logs.contains("alice-password"));
    assert!(!logs.contains("wrong-password"));
    assert!(!logs.contains(&token));
    assert!(!logs.contains("PRIVATE KEY"));
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["account"], "alice");
    assert_eq!(
        lines[0]["granted"],
        serde_json::json!(["repository:team/app:pull"]),
        "granted is a list, like requested"
    );
    assert_eq!(lines[0]["outcome"], "ok");
    assert_eq!(lines[1]["outcome"], "unauthorized");
    assert!(lines[1]["request_id"].as_str().unwrap().len() >= 8);
}
