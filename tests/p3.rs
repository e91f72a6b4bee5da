//! The WASI 0.3 build (`spin-p3.toml`, spin-sdk 6.0) under real Spin 4.0.2,
//! which reuses each instance for many requests: the same answers as the
//! WASI 0.2 build, and nothing read from the store outlives its request, so
//! a revocation, a password change or a lockout takes effect at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

fn start_p3() -> Spin {
    Spin::start(SpinOptions {
        manifest: scopegate_harness::repository_root().join("spin-p3.toml"),
        variables: variables(),
        kv: seeded_users(),
        ..SpinOptions::default()
    })
}

#[test]
fn the_wasi_p3_build_serves_tokens_and_forgets_the_store_between_requests() {
    let host = start_p3();
    let push = token_path(&["repository:team/app:pull,push"]);

    // Anonymous, password and API token, each verified independently.
    let reply = get(&host, &token_path(&["repository:public/hello:pull"]), None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (_, claims) = verify(&host, reply.json()["token"].as_str().unwrap());
    assert_eq!(
        access_of(&claims),
        [entry("repository", "public/hello", &["pull"])]
    );
    let reply = get(&host, &push, Some(("alice", "alice-password")));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (_, claims) = verify(&host, reply.json()["token"].as_str().unwrap());
    assert_eq!(
        access_of(&claims),
        [entry("repository", "team/app", &["pull", "push"])]
    );
    let token = create_token(
        &host,
        json!({"kind": "deploy", "owner": "alice", "name": "p3"}),
    );
    for _ in 0..20 {
        assert_eq!(get(&host, &push, Some(("ci", &token))).status, 200);
    }

    // Revoked between two requests that a reused instance serves: refused.
    let id = admin(&host, "GET", "/admin/tokens?owner=alice", None).json()["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        admin(&host, "DELETE", &format!("/admin/tokens/{id}"), None).status,
        200
    );
    assert_eq!(get(&host, &push, Some(("ci", &token))).status, 401);

    // A password change takes effect at the next request too.
    let changed = admin(
        &host,
        "PATCH",
        "/admin/users/alice",
        Some(json!({"password": "alice-new-password"})),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(
        get(&host, &push, Some(("alice", "alice-password"))).status,
        401
    );
    assert_eq!(
        get(&host, &push, Some(("alice", "alice-new-password"))).status,
        200
    );

    // Lockout counts through the atomic increment of this build as well
    // (threshold 3 in the test variables).
    for _ in 0..3 {
        assert_eq!(
            get(&host, &push, Some(("bob", "wrong-password"))).status,
            401
        );
    }
    assert_eq!(
        get(&host, &push, Some(("bob", "bob-password"))).status,
        401,
        "locked"
    );

    assert_eq!(get(&host, "/healthz", None).status, 200);
    let jwks = get(&host, "/.well-known/jwks.json", None).json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
}

/// Workload identity in the WASI 0.3 build: the issuer's keys come over the
/// same outbound HTTP, and a reused instance keeps nothing of them but what
/// the store holds.
#[test]
fn the_wasi_p3_build_grants_to_oidc_id_tokens() {
    use common::oidc::{github_claims, oidc, oidc_p3_manifest, oidc_variables};
    use jwt_simple::prelude::RSAKeyPairLike as _;

    let host = Spin::start(SpinOptions {
        manifest: oidc_p3_manifest().clone(),
        variables: oidc_variables(variables()),
        ..SpinOptions::default()
    });
    let oidc = oidc();
    let token = oidc
        .github
        .sign(github_claims(oidc, "refs/heads/main"))
        .unwrap();
    let path = token_path(&[
        "repository:acme/app/web:pull,push",
        "repository:acme/other:pull",
    ]);
    for _ in 0..5 {
        let reply = get(&host, &path, Some(("oidc", &token)));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let (_, claims) = verify(&host, reply.json()["token"].as_str().unwrap());
        assert_eq!(
            access_of(&claims),
            [entry("repository", "acme/app/web", &["pull", "push"])]
        );
        assert_eq!(claims.custom.auth_type, "oidc");
    }
    let forged = oidc
        .impostor
        .sign(github_claims(oidc, "refs/heads/main"))
        .unwrap();
    assert_eq!(get(&host, &path, Some(("oidc", &forged))).status, 401);
}

/// A stalled body in the WASI 0.3 build: 408 at the deadline, while other
/// requests are served (instances here take concurrent requests).
#[test]
fn a_stalled_body_times_out_and_blocks_nothing_in_the_wasi_p3_build() {
    let host = start_p3();
    stalled_bodies_get_408_and_block_nothing(&host);
}
