//! Users moved from htpasswd, docker_auth or GitLab keep their passwords:
//! a bcrypt hash given through the admin API logs in under real Spin, is
//! replaced by argon2id on the first successful login, and a cost above
//! the band is refused at import with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

/// `htpasswd -nbB frank frank-password` (Apache's htpasswd 2.4, cost 5).
const FRANK_HTPASSWD: &str = "$2y$05$udrIOEoLnR9V7FDtMIUSH.lNdEmWEOJ35qaSdCfch8MS07Uj5T0Va";
/// `htpasswd -nbB -C 10 gitlab gitlab-password` (GitLab's cost).
const GITLAB_HASH: &str = "$2y$10$0XbauzL.PhPrQg4u657aQOcs9hthQ1ZcDLayhN.OjCWIX4w4ohffS";

fn stored_hash(host: &scopegate_harness::Spin, name: &str) -> String {
    let record: serde_json::Value =
        serde_json::from_slice(&host.kv_get(&format!("user/{name}")).unwrap()).unwrap();
    record["password"].as_str().unwrap().to_string()
}

#[test]
fn bcrypt_users_log_in_and_are_rehashed_to_argon2id() {
    let host = start(variables(), seeded_users());
    for (name, hash, password) in [
        ("frank", FRANK_HTPASSWD, "frank-password"),
        ("gitlab", GITLAB_HASH, "gitlab-password"),
    ] {
        let reply = admin(
            &host,
            "POST",
            "/admin/users",
            Some(serde_json::json!({"name": name, "password_hash": hash, "groups": ["team"]})),
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
        assert_eq!(stored_hash(&host, name), hash);

        let scope = [format!("repository:{name}/app:pull,push")];
        let scope: Vec<&str> = scope.iter().map(String::as_str).collect();
        let wrong = get(&host, &token_path(&scope), Some((name, "not-the-password")));
        assert_eq!(wrong.status, 401);
        assert_eq!(
            stored_hash(&host, name),
            hash,
            "a wrong password changes nothing"
        );

        let reply = get(&host, &token_path(&scope), Some((name, password)));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let token = reply.json()["token"].as_str().unwrap().to_string();
        let (_, claims) = verify(&host, &token);
        assert_eq!(claims.subject.as_deref(), Some(name));
        let rehashed = stored_hash(&host, name);
        assert!(
            rehashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{rehashed}"
        );
        // The argon2id record keeps working, with the same password only.
        assert_eq!(
            get(&host, &token_path(&scope), Some((name, password))).status,
            200
        );
        assert_eq!(
            get(&host, &token_path(&scope), Some((name, "not-the-password"))).status,
            401
        );
    }
}

#[test]
fn a_bcrypt_cost_above_12_or_another_crypt_is_refused_at_import() {
    let host = start(variables(), seeded_users());
    for (hash, reason) in [
        (
            "$2y$13$UEAJLgaJ0MhxRBqbG.zyZOb1Ul3kuy6oQkXvY1NA.ny4KpFzaQnta",
            "bcrypt cost 13 is outside 4..=12",
        ),
        // `htpasswd -nbm` (Apache MD5): not accepted by distribution either.
        ("$apr1$Yp6i0Kk5$Yl0mZ3d6/0yC0lZp9y5eI/", "not a PHC string"),
    ] {
        let reply = admin(
            &host,
            "POST",
            "/admin/users",
            Some(serde_json::json!({"name": "old", "password_hash": hash})),
        );
        assert_eq!(reply.status, 400, "{}", reply.text());
        assert!(reply.text().contains(reason), "{}", reply.text());
        assert!(host.kv_get("user/old").is_none());
    }
}
