//! Workload identity under real Spin: CI jobs present OIDC ID tokens from a
//! local issuer (`common::oidc`) and get what the policy's issuer rules say,
//! or the same 401 as any bad credential, or a 503 when the issuer's keys
//! cannot be had. Never a grant on an error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::oidc::*;
use common::*;
use jwt_simple::prelude::*;
use serde_json::json;

fn start_oidc() -> Spin {
    Spin::start(SpinOptions {
        manifest: oidc().manifest.clone(),
        variables: oidc_variables(variables()),
        ..SpinOptions::default()
    })
}

/// `POST /token` with an RFC 8693 token exchange of `token`, its
/// `subject_token_type` ending in `kind` (`id_token` or `jwt`), and `scope`
/// when given.
fn exchange(host: &Spin, token: &str, kind: &str, scope: Option<&str>) -> Reply {
    let token_type = format!("urn:ietf:params:oauth:token-type:{kind}");
    let mut form = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", token),
        ("subject_token_type", token_type.as_str()),
        ("service", SERVICE),
    ];
    form.extend(scope.map(|scope| ("scope", scope)));
    post_form(host, "/token", &form)
}

fn github_token(git_ref: &str) -> String {
    let oidc = oidc();
    oidc.github.sign(github_claims(oidc, git_ref)).unwrap()
}

fn access(host: &Spin, reply: &Reply) -> Vec<(String, String, Vec<String>)> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let token = reply.json()["token"].as_str().unwrap().to_string();
    let (_, claims) = verify(host, &token);
    access_of(&claims)
}

const SCOPES: [&str; 4] = [
    "repository:acme/app/web:pull,push",
    "repository:acme/app:delete",
    "repository:acme/other:pull",
    "repository:lab/x:pull",
];

#[test]
fn a_github_job_on_main_gets_its_repository_whichever_way_it_asks() {
    let host = start_oidc();
    let token = github_token("refs/heads/main");
    let expected = vec![entry("repository", "acme/app/web", &["pull", "push"])];

    // docker login -u oidc, and a pull: Basic with any username.
    for user in ["oidc", "anything"] {
        let reply = get(&host, &token_path(&SCOPES), Some((user, &token)));
        assert_eq!(access(&host, &reply), expected, "as {user}");
    }
    let reply = get(&host, &token_path(&SCOPES), Some(("oidc", &token)));
    let issued = reply.json()["token"].as_str().unwrap().to_string();
    let (_, claims) = verify(&host, &issued);
    assert_eq!(
        claims.subject.as_deref(),
        Some("github:repo:acme/app:ref:refs/heads/main")
    );
    assert_eq!(claims.custom.auth_type, "oidc");

    // grant_type=password, and RFC 8693 token exchange.
    let scope = SCOPES.join(" ");
    let password = post_form(
        &host,
        "/token",
        &[
            ("grant_type", "password"),
            ("username", "oidc"),
            ("password", &token),
            ("service", SERVICE),
            ("scope", &scope),
            ("access_type", "offline"),
        ],
    );
    assert_eq!(access(&host, &password), expected);
    let exchange = exchange(&host, &token, "id_token", Some(&scope));
    assert_eq!(access(&host, &exchange), expected);
    let body = exchange.json();
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["token_type"], "Bearer");

    // Never refreshable, whatever is asked.
    let offline = get(
        &host,
        &format!("{}&offline_token=true", token_path(&SCOPES)),
        Some(("oidc", &token)),
    );
    for reply in [&offline, &password, &exchange] {
        assert!(
            reply.json().get("refresh_token").is_none(),
            "{}",
            reply.text()
        );
    }

    // With the keys cached, a request writes nothing to the store.
    let watch = host.watch_store();
    let reply = get(&host, &token_path(&SCOPES), Some(("oidc", &token)));
    assert_eq!(reply.status, 200);
    assert!(
        !watch.has_written(),
        "an OIDC token request wrote to the store"
    );

    let logs = host.logs();
    assert!(
        logs.contains(r#""account":"github:repo:acme/app:ref:refs/heads/main""#)
            && logs.contains(r#""auth_type":"oidc""#),
        "{logs}"
    );
}

#[test]
fn a_gitlab_job_of_a_protected_branch_pushes_to_its_project() {
    let host = start_oidc();
    let oidc = oidc();
    let token = oidc.gitlab.sign(gitlab_claims(oidc)).unwrap();
    let reply = get(
        &host,
        &token_path(&[
            "repository:platform/tools/app/api:pull,push,delete",
            "repository:platform/tools/other:pull",
        ]),
        Some(("gitlab-ci-token", &token)),
    );
    assert_eq!(
        access(&host, &reply),
        vec![entry(
            "repository",
            "platform/tools/app/api",
            &["pull", "push"]
        )],
        "push and pull on its project, never delete (the deny rule)"
    );
}

#[test]
fn claims_that_do_not_match_get_what_any_caller_gets_for_them() {
    let host = start_oidc();
    // Another branch: the pull-only rule still matches.
    let feature = github_token("refs/heads/feature");
    let reply = get(&host, &token_path(&SCOPES), Some(("oidc", &feature)));
    assert_eq!(
        access(&host, &reply),
        vec![entry("repository", "acme/app/web", &["pull"])]
    );
    // Another owner: nothing matches, a token with nothing granted.
    let oidc = oidc();
    let mut claims = github_claims(oidc, "refs/heads/main");
    claims.custom["repository_owner"] = json!("mallory");
    claims.custom["repository"] = json!("mallory/app");
    let stranger = oidc.github.sign(claims).unwrap();
    let reply = get(
        &host,
        &token_path(&[
            "repository:mallory/app:pull,push",
            "repository:acme/app:pull",
        ]),
        Some(("oidc", &stranger)),
    );
    assert_eq!(access(&host, &reply), vec![]);
    // A claim that is not a repository path makes its rule match nothing.
    let mut claims = github_claims(oidc, "refs/heads/main");
    claims.custom["repository"] = json!("Acme/App");
    let odd = oidc.github.sign(claims).unwrap();
    let reply = get(
        &host,
        &token_path(&["repository:acme/app:pull"]),
        Some(("oidc", &odd)),
    );
    assert_eq!(access(&host, &reply), vec![]);
}

#[test]
fn a_workload_no_rule_serves_gets_what_an_anonymous_caller_gets_denies_included() {
    // `anyone` pulls lab-public/**, `anonymous` is denied lab-public/secret/**:
    // a job of a trusted issuer whose claims match no rule (any GitHub
    // account can mint one with our audience) gets exactly the anonymous
    // caller's share, not the secret path too.
    let host = start_oidc();
    let oidc = oidc();
    let scopes = [
        "repository:lab-public/hello:pull",
        "repository:lab-public/secret/db:pull",
    ];
    let expected = vec![entry("repository", "lab-public/hello", &["pull"])];
    let anonymous = get(&host, &token_path(&scopes), None);
    assert_eq!(access(&host, &anonymous), expected);
    let mut claims = github_claims(oidc, "refs/heads/main");
    claims.custom["repository_owner"] = json!("mallory");
    claims.custom["repository"] = json!("mallory/app");
    let stranger = oidc.github.sign(claims).unwrap();
    let reply = get(&host, &token_path(&scopes), Some(("oidc", &stranger)));
    assert_eq!(access(&host, &reply), expected);
}

#[test]
fn no_account_may_be_named_like_the_namespace_a_claim_rule_serves() {
    // ci.toml gives acme's GitHub jobs repository:{claim:repository}/**,
    // pinned by `when = { repository_owner = "acme" }`: an account `acme`
    // would own acme/** through `{account}/**`.
    let host = start_oidc();
    let reply = admin(
        &host,
        "POST",
        "/admin/users",
        Some(json!({"name": "acme", "password": "correct horse battery"})),
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.text().contains("shared namespace"),
        "{}",
        reply.text()
    );
    create_user(&host, "acme-dev", "correct horse battery", &[]);
}

#[test]
fn every_bad_id_token_gets_the_same_401_as_a_wrong_password() {
    let host = start_oidc();
    let oidc = oidc();
    let now = Clock::now_since_epoch().as_secs();
    let path = token_path(&["repository:acme/app:pull"]);
    let refused = get(&host, &path, Some(("nobody", "wrong-password")));
    assert_eq!(refused.status, 401);

    let with = |change: &dyn Fn(&mut JWTClaims<serde_json::Value>)| {
        let mut claims = github_claims(oidc, "refs/heads/main");
        change(&mut claims);
        oidc.github.sign(claims).unwrap()
    };
    let good = github_token("refs/heads/main");
    let (header, payload) = {
        let mut parts = good.split('.');
        let decode = |part: &str| -> serde_json::Value {
            serde_json::from_slice(
                &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part)
                    .unwrap(),
            )
            .unwrap()
        };
        (decode(parts.next().unwrap()), decode(parts.next().unwrap()))
    };
    let mut tampered_payload = payload.clone();
    tampered_payload["repository"] = json!("acme/admin");
    let signature = good.rsplit('.').next().unwrap();
    let tampered = format!(
        "{}.{}",
        raw_jwt(&header, &tampered_payload, b"")
            .rsplit_once('.')
            .unwrap()
            .0,
        signature
    );
    let public_pem = oidc.github.public_key().to_pem().unwrap();
    let hs256 = HS256Key::from_bytes(public_pem.as_bytes())
        .with_key_id("gh-1")
        .authenticate(github_claims(oidc, "refs/heads/main"))
        .unwrap();
    let mut untrusted = github_claims(oidc, "refs/heads/main");
    untrusted.issuer = Some(oidc.issuer.url("/elsewhere"));

    let cases: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            with(&|c| c.audiences = Some(Audiences::AsString("someone-else".into()))),
        ),
        (
            "wrong iss",
            with(&|c| c.issuer = Some(format!("{}/", oidc.github_url()))),
        ),
        ("untrusted issuer", oidc.github.sign(untrusted).unwrap()),
        (
            "expired",
            with(&|c| {
                c.issued_at = Some(UnixTimeStamp::from_secs(now - 600));
                c.invalid_before = Some(UnixTimeStamp::from_secs(now - 600));
                c.expires_at = Some(UnixTimeStamp::from_secs(now - 120));
            }),
        ),
        (
            "not yet valid",
            with(&|c| c.invalid_before = Some(UnixTimeStamp::from_secs(now + 600))),
        ),
        (
            "too old for max_age",
            with(&|c| {
                c.issued_at = Some(UnixTimeStamp::from_secs(now - 3600));
                c.invalid_before = Some(UnixTimeStamp::from_secs(now - 3600));
                c.expires_at = Some(UnixTimeStamp::from_secs(now + 300));
            }),
        ),
        (
            "alg none",
            raw_jwt(&json!({"alg": "none", "typ": "JWT"}), &payload, b""),
        ),
        (
            "alg none, no signature",
            format!(
                "{}.",
                raw_jwt(&json!({"alg": "none"}), &payload, b"")
                    .rsplit_once('.')
                    .unwrap()
                    .0
            ),
        ),
        ("HS256 with the public key", hs256),
        ("tampered payload", tampered),
        (
            "another key with the same kid",
            oidc.impostor
                .sign(github_claims(oidc, "refs/heads/main"))
                .unwrap(),
        ),
        ("no exp", with(&|c| c.expires_at = None)),
    ];
    for (name, token) in &cases {
        let reply = get(&host, &path, Some(("oidc", token)));
        assert_eq!(reply.status, 401, "{name}: {}", reply.text());
        assert_eq!(reply.body, refused.body, "{name}");
        assert_eq!(
            reply.header("www-authenticate"),
            refused.header("www-authenticate"),
            "{name}"
        );
        let exchange = exchange(&host, token, "jwt", None);
        assert_eq!(exchange.status, 400, "{name}: {}", exchange.text());
        assert_eq!(exchange.json()["error"], "invalid_grant", "{name}");
    }
    // The good token still works on the same server.
    let reply = get(&host, &path, Some(("oidc", &good)));
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// Reads the cached JWKS record of `issuer` and moves its last check back by
/// `seconds`, as if that much time had passed since the last fetch.
fn age_jwks_cache(host: &Spin, issuer: &str, seconds: u64) {
    let key = format!("jwks/{issuer}");
    let mut record: serde_json::Value =
        serde_json::from_slice(&host.kv_get(&key).expect("a cached JWKS")).unwrap();
    for field in ["checked_at", "fetched_at"] {
        let at = record[field].as_u64().unwrap();
        record[field] = json!(at.saturating_sub(seconds));
    }
    host.kv_set(&key, serde_json::to_vec(&record).unwrap());
}

#[test]
fn keys_are_fetched_once_for_many_requests_and_again_on_rotation_at_most_once_a_minute() {
    let host = start_oidc();
    let oidc = oidc();
    let claims = || {
        Claims::with_custom_claims(json!({"job": "nightly"}), Duration::from_secs(300))
            .with_issuer(oidc.rotating_url())
            .with_audience(AUDIENCE)
            .with_subject("nightly")
    };
    let path = token_path(&["repository:lab/cache:pull"]);
    let pulls = vec![entry("repository", "lab/cache", &["pull"])];
    let before = oidc.issuer.gets(ROTATING_JWKS);
    let first = oidc.rotating_a.sign(claims()).unwrap();
    for _ in 0..20 {
        let reply = get(&host, &path, Some(("oidc", &first)));
        assert_eq!(access(&host, &reply), pulls);
    }
    assert_eq!(
        oidc.issuer.gets(ROTATING_JWKS) - before,
        1,
        "one JWKS fetch for 20 requests"
    );

    // The issuer rotates to a new key. A token under it names an unknown
    // kid; the cache was filled just now, so no refetch yet: a 401.
    oidc.publish_rotating(&[
        oidc.rotating_a.public_key().to_jwk(),
        oidc.rotating_b.public_key().to_jwk(),
    ]);
    let second = oidc.rotating_b.sign(claims()).unwrap();
    let reply = get(&host, &path, Some(("oidc", &second)));
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(oidc.issuer.gets(ROTATING_JWKS) - before, 1);

    // A minute later the unknown kid fetches again and the new key works.
    age_jwks_cache(&host, "rotating", 61);
    let reply = get(&host, &path, Some(("oidc", &second)));
    assert_eq!(access(&host, &reply), pulls);
    assert_eq!(oidc.issuer.gets(ROTATING_JWKS) - before, 2);

    // A kid the issuer does not have is a 401 after the refetch, and
    // repeating it within the minute does not fetch again.
    let stranger = ES256KeyPair::generate().with_key_id("rot-x");
    let forged = stranger.sign(claims()).unwrap();
    age_jwks_cache(&host, "rotating", 61);
    for _ in 0..5 {
        let reply = get(&host, &path, Some(("oidc", &forged)));
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
    assert_eq!(oidc.issuer.gets(ROTATING_JWKS) - before, 3);
    // Both published keys keep working.
    for token in [&first, &second] {
        let reply = get(&host, &path, Some(("oidc", token)));
        assert_eq!(access(&host, &reply), pulls);
    }
    oidc.publish_rotating(&[oidc.rotating_a.public_key().to_jwk()]);
}

#[test]
fn an_issuer_that_cannot_be_reached_is_a_503_never_a_grant() {
    let host = start_oidc();
    let oidc = oidc();
    let claims = Claims::create(Duration::from_secs(300))
        .with_issuer(&oidc.down_url)
        .with_audience(AUDIENCE)
        .with_subject("job");
    let token = oidc.rotating_a.sign(claims).unwrap();
    let reply = get(
        &host,
        &token_path(&["repository:lab/x:pull"]),
        Some(("oidc", &token)),
    );
    assert_eq!(reply.status, 503, "{}", reply.text());
    let message = reply.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("request id"), "{message}");
    assert!(reply.json().get("token").is_none());
    let exchange = exchange(&host, &token, "id_token", None);
    assert_eq!(exchange.status, 503, "{}", exchange.text());
    assert!(
        host.logs().contains("cannot fetch its keys"),
        "{}",
        host.logs()
    );
}

#[test]
fn a_failing_issuer_is_asked_at_most_once_a_minute_whatever_arrives() {
    // Forged tokens (garbage signature) naming a trusted issuer whose JWKS
    // answers 500, nothing cached: one attempt (discovery and JWKS), then a
    // 503 at once for every request until the minute is over.
    let host = start_oidc();
    let oidc = oidc();
    let claims = Claims::create(Duration::from_secs(300))
        .with_issuer(oidc.failing_url())
        .with_audience(AUDIENCE)
        .with_subject("job");
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "forged"});
    let forged = raw_jwt(&header, &serde_json::to_value(&claims).unwrap(), b"garbage");
    let path = token_path(&["repository:lab/x:pull"]);
    let before = (
        oidc.issuer.gets(FAILING_DISCOVERY),
        oidc.issuer.gets(FAILING_JWKS),
    );
    for _ in 0..20 {
        let reply = get(&host, &path, Some(("oidc", &forged)));
        assert_eq!(reply.status, 503, "{}", reply.text());
        assert!(reply.json().get("token").is_none());
    }
    let asked = |before: (usize, usize)| {
        (
            oidc.issuer.gets(FAILING_DISCOVERY) - before.0,
            oidc.issuer.gets(FAILING_JWKS) - before.1,
        )
    };
    assert_eq!(asked(before), (1, 1), "one attempt for 20 requests");
    assert!(host.logs().contains("next attempt in"), "{}", host.logs());

    // Once the minute is over, the next request tries again, once.
    age_jwks_cache(&host, "failing", 61);
    for _ in 0..3 {
        let reply = get(&host, &path, Some(("oidc", &forged)));
        assert_eq!(reply.status, 503, "{}", reply.text());
    }
    assert_eq!(asked(before), (2, 2));
}

#[test]
fn an_issuer_the_manifest_does_not_let_out_to_is_a_503() {
    // The shipped defaults allow GitHub's and GitLab.com's hosts only.
    let host = Spin::start(SpinOptions {
        manifest: oidc().manifest.clone(),
        variables: variables(),
        ..SpinOptions::default()
    });
    let token = github_token("refs/heads/main");
    let reply = get(
        &host,
        &token_path(&["repository:acme/app:pull"]),
        Some(("oidc", &token)),
    );
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(host.logs().contains("HttpRequestDenied"), "{}", host.logs());
}
