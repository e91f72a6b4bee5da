//! OAuth2 `POST /token` and refresh tokens, in docker's and
//! containers/image's exact forms.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

/// `docker login`: GET with `offline_token=true&client_id=docker`, no scope.
fn docker_login(host: &Spin, user: &str, password: &str) -> String {
    let path =
        format!("/token?account={user}&client_id=docker&offline_token=true&service={SERVICE}");
    let reply = get(host, &path, Some((user, password)));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("login returns a refresh token");
    assert!(refresh.starts_with("sgr_"));
    refresh.to_string()
}

fn refresh_docker(host: &Spin, refresh: &str, scopes: &str) -> Reply {
    post_form(
        host,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("service", SERVICE),
            ("client_id", "docker"),
            ("scope", scopes),
        ],
    )
}

#[test]
fn docker_login_then_refresh_for_a_push_scope() {
    let host = start(variables(), seeded_users());
    let refresh = docker_login(&host, "alice", "alice-password");
    let reply = refresh_docker(
        &host,
        &refresh,
        "repository:team/app:pull,push repository:public/base:pull",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(
        body["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "repository:public/base:pull",
            "repository:team/app:pull,push"
        ]
        .into_iter()
        .collect()
    );
    assert!(body.get("refresh_token").is_none());
    let (payload, claims) = verify(&host, body["access_token"].as_str().unwrap());
    assert_eq!(payload["sub"], "alice");
    assert_eq!(claims.custom.auth_type, "password");
    assert_eq!(
        access_of(&claims),
        [
            entry("repository", "public/base", &["pull"]),
            entry("repository", "team/app", &["pull", "push"]),
        ]
    );
}

#[test]
fn containers_image_form_with_repeated_scopes_sent_chunked() {
    let host = start(variables(), seeded_users());
    let refresh = docker_login(&host, "alice", "alice-password");
    let body = form_body(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh),
        ("service", SERVICE),
        ("client_id", "containers/image"),
        ("scope", "repository:team/app:pull"),
        ("scope", "repository:team/app:push"),
    ]);
    let reply = send(
        &host,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Body::Chunked(body.as_bytes()),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (_, claims) = verify(&host, reply.json()["access_token"].as_str().unwrap());
    assert_eq!(
        access_of(&claims),
        [entry("repository", "team/app", &["pull", "push"])]
    );
}

#[test]
fn password_grant_with_and_without_offline_access() {
    let host = start(variables(), seeded_users());
    let form = |offline: bool| {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-password"),
            ("service", SERVICE),
            ("client_id", "ci"),
            ("scope", "repository:team/app:pull"),
        ];
        if offline {
            form.push(("access_type", "offline"));
        }
        post_form(&host, "/token", &form)
    };
    let online = form(false);
    assert_eq!(online.status, 200);
    assert!(online.json().get("refresh_token").is_none());
    assert_eq!(online.json()["scope"], "repository:team/app:pull");
    let offline = form(true);
    assert_eq!(offline.status, 200);
    let refresh = offline.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        refresh_docker(&host, &refresh, "repository:team/app:pull").status,
        200
    );

    let wrong = post_form(
        &host,
        "/token",
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "nope"),
            ("service", SERVICE),
        ],
    );
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.json()["error"], "invalid_grant");
}

#[test]
fn anonymous_offline_request_gets_no_refresh_token() {
    let host = start(variables(), seeded_users());
    let reply = get(
        &host,
        &format!("/token?offline_token=true&service={SERVICE}"),
        None,
    );
    assert_eq!(reply.status, 200);
    assert!(reply.json().get("refresh_token").is_none());
}

#[test]
fn refresh_stops_when_the_user_is_disabled_or_deleted() {
    let host = start(variables(), seeded_users());
    let refresh = docker_login(&host, "alice", "alice-password");
    let mut user: serde_json::Value =
        serde_json::from_slice(&host.kv_get("user/alice").unwrap()).unwrap();
    user["disabled"] = true.into();
    host.kv_set("user/alice", serde_json::to_vec(&user).unwrap());
    let reply = refresh_docker(&host, &refresh, "repository:team/app:pull");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "invalid_grant");

    host.kv_delete("user/alice");
    assert_eq!(
        refresh_docker(&host, &refresh, "repository:team/app:pull").json()["error"],
        "invalid_grant"
    );
}

#[test]
fn refresh_from_an_api_token_keeps_its_limits_and_dies_with_it() {
    let mut kv = seeded_users();
    let secret = "sgp_personal-token-for-alice-0123456789abcdefghijk";
    let digest = scopegate::secret::digest_hex(secret);
    kv.insert(
        format!("token/{digest}"),
        serde_json::to_vec(&serde_json::json!({
            "v": 1, "kind": "personal", "owner": "alice", "name": "laptop",
            "limits": ["repository:team/app:pull"], "expires_at": null, "created_at": 0
        }))
        .unwrap(),
    );
    let host = start(variables(), kv);
    let refresh = docker_login(&host, "alice", secret);
    let reply = refresh_docker(
        &host,
        &refresh,
        "repository:team/app:pull,push repository:team/other:pull",
    );
    assert_eq!(reply.status, 200);
    let (_, claims) = verify(&host, reply.json()["access_token"].as_str().unwrap());
    assert_eq!(claims.custom.auth_type, "personal");
    assert_eq!(
        access_of(&claims),
        [entry("repository", "team/app", &["pull"])]
    );

    host.kv_delete(&format!("token/{digest}"));
    assert_eq!(
        refresh_docker(&host, &refresh, "repository:team/app:pull").json()["error"],
        "invalid_grant"
    );
}

#[test]
fn policy_is_evaluated_again_on_every_refresh() {
    let host = start(variables(), seeded_users());
    let refresh = docker_login(&host, "alice", "alice-password");
    let scope = "repository:team/app:push";
    let before = refresh_docker(&host, &refresh, scope);
    assert_eq!(before.json()["scope"], scope);
    // alice leaves the team: the same refresh token now carries no push.
    host.kv_set("user/alice", user_record("alice-password", &[]));
    let after = refresh_docker(&host, &refresh, scope);
    assert_eq!(after.status, 200);
    assert_eq!(after.json()["scope"], "");
}

#[test]
fn revoked_refresh_token_replay_is_refused() {
    let host = start(variables(), seeded_users());
    let refresh = docker_login(&host, "alice", "alice-password");
    let revoke = send(
        &host,
        "POST",
        "/admin/refresh-tokens/revoke",
        &[
            ("Authorization", &format!("Bearer {ADMIN_SECRET}")),
            ("Content-Type", "application/json"),
        ],
        Body::Sized(
            serde_json::json!({ "account": "alice" })
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(revoke.status, 200, "{}", revoke.text());
    assert_eq!(revoke.json()["revoked"], 1);
    for _ in 0..2 {
        let reply = refresh_docker(&host, &refresh, "repository:team/app:pull");
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json()["error"], "invalid_grant");
    }
}

#[test]
fn refresh_token_is_bound_to_its_service() {
    let mut vars = variables();
    vars.insert("services".into(), format!("{SERVICE},other.test"));
    let host = start(vars, seeded_users());
    let refresh = docker_login(&host, "alice", "alice-password");
    let reply = post_form(
        &host,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", "other.test"),
        ],
    );
    assert_eq!(reply.json()["error"], "invalid_grant");
}

#[test]
fn malformed_posts_are_oauth_errors() {
    let host = start(variables(), seeded_users());
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("grant_type", "client_credentials"), ("service", SERVICE)],
            "application/x-www-form-urlencoded",
            400,
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "refresh_token"), ("service", SERVICE)],
            "application/x-www-form-urlencoded",
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "sgr_x"),
                ("service", SERVICE),
            ],
            "text/plain",
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "sgr_x"),
                ("service", "nope"),
            ],
            "application/x-www-form-urlencoded",
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "sgr_unknown"),
                ("service", SERVICE),
            ],
            "application/x-www-form-urlencoded",
            400,
            "invalid_grant",
        ),
    ];
    for (form, content_type, status, error) in cases {
        let body = form_body(&form);
        let reply = send(
            &host,
            "POST",
            "/token",
            &[("Content-Type", content_type)],
            Body::Sized(body.as_bytes()),
        );
        assert_eq!(reply.status, status, "{form:?}: {}", reply.text());
        assert_eq!(reply.json()["error"], error, "{form:?}");
    }
    // A huge chunked body is cut off while reading, not trusted from a header.
    let huge = format!(
        "grant_type=refresh_token&service={SERVICE}&x={}",
        "a".repeat(40_000)
    );
    let reply = send(
        &host,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Body::Chunked(huge.as_bytes()),
    );
    assert_eq!(reply.status, 413);
}
