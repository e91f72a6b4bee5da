//! People under real Spin: ID tokens of the company's identity provider (the
//! local `/corp` issuer of `common::oidc`, trusted by the shipped
//! `policies/people.toml`) presented as the Basic password, as the
//! `docker-credential-scopegate` helper hands them to docker. Each person owns
//! `{person}/**`; a `groups` list claim grants the platform namespace; a deny
//! on `groups` keeps contractors out of production; the issued token names the
//! person as `corp:<sub>` and writes nothing to the store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::oidc::*;
use common::*;
use jwt_simple::prelude::*;

fn start_people() -> Spin {
    Spin::start(SpinOptions {
        manifest: oidc().manifest.clone(),
        variables: oidc_variables(variables()),
        ..SpinOptions::default()
    })
}

fn id_token(sub: &str, username: &str, groups: &[&str]) -> String {
    let oidc = oidc();
    oidc.corp
        .sign(person_claims(
            oidc,
            sub,
            username,
            groups,
            Duration::from_secs(300),
        ))
        .unwrap()
}

/// What `scopes` get with `token` as the password of user `oidc`: the issued
/// token's access entries and its `sub`.
fn granted(
    host: &Spin,
    token: &str,
    scopes: &[&str],
) -> (Vec<(String, String, Vec<String>)>, String) {
    let reply = get(host, &token_path(scopes), Some(("oidc", token)));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (_, claims) = verify(host, reply.json()["token"].as_str().unwrap());
    (access_of(&claims), claims.subject.clone().unwrap())
}

#[test]
fn people_get_their_namespace_and_what_their_groups_give() {
    let host = start_people();

    let jane = id_token("f3b1-jane", "jane", &["dev", "platform"]);
    let (access, sub) = granted(
        &host,
        &jane,
        &[
            "repository:jane/app:pull,push,delete",
            "repository:carl/app:pull",
            "repository:platform/base:pull,push",
        ],
    );
    assert_eq!(
        access,
        [
            entry("repository", "jane/app", &["pull", "push", "delete"]),
            entry("repository", "platform/base", &["pull", "push"]),
        ]
    );
    assert_eq!(
        sub, "corp:f3b1-jane",
        "the person is named by issuer and sub"
    );
    // The issuer's keys are cached now; from here on nothing is written.
    let watch = host.watch_store();

    // Out of the platform group: pull only, as every employee.
    let ann = id_token("a001-ann", "ann", &["dev"]);
    let (access, _) = granted(&host, &ann, &["repository:platform/base:pull,push"]);
    assert_eq!(access, [entry("repository", "platform/base", &["pull"])]);

    // A contractor in platform: the deny on one element of the list wins,
    // in their own namespace too.
    let carl = id_token("c002-carl", "carl", &["platform", "contractors"]);
    let (access, _) = granted(
        &host,
        &carl,
        &[
            "repository:platform/base:push",
            "repository:platform/prod:pull,push",
            "repository:carl/prod:push",
            "repository:carl/app:push",
        ],
    );
    assert_eq!(
        access,
        [
            entry("repository", "carl/app", &["push"]),
            entry("repository", "platform/base", &["push"]),
            entry("repository", "platform/prod", &["pull"]),
        ]
    );

    // A provider username named like a shared namespace owns nothing there.
    let squatter = id_token("e005", "platform", &["dev"]);
    let (access, _) = granted(
        &host,
        &squatter,
        &["repository:platform/base:pull,push,delete"],
    );
    assert_eq!(access, [entry("repository", "platform/base", &["pull"])]);

    // The log names the person as the token does; nothing more was written.
    assert!(
        host.logs().contains("\"account\":\"corp:f3b1-jane\""),
        "{}",
        host.logs()
    );
    assert!(!watch.has_written(), "people's logins write nothing");
}

#[test]
fn a_person_s_expired_id_token_is_refused_like_any_bad_credential() {
    let host = start_people();
    let oidc = oidc();
    // Expired two minutes ago: past the 60 s leeway.
    let mut claims = person_claims(
        oidc,
        "f3b1-jane",
        "jane",
        &["platform"],
        Duration::from_secs(60),
    );
    let now = Clock::now_since_epoch();
    claims.issued_at = Some(now - Duration::from_secs(600));
    claims.invalid_before = Some(now - Duration::from_secs(600));
    claims.expires_at = Some(now - Duration::from_secs(120));
    let expired = oidc.corp.sign(claims).unwrap();
    let reply = get(
        &host,
        &token_path(&["repository:jane/app:pull"]),
        Some(("oidc", &expired)),
    );
    assert_eq!(reply.status, 401, "{}", reply.text());
}
