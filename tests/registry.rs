//! End to end with real parts: Debian's docker-registry (distribution
//! 2.8.2) configured for token auth against the built scopegate component
//! under real Spin, and Debian's skopeo (containers/image) pushing,
//! pulling, listing and deleting a small OCI image this suite writes itself.
//!
//! Each test starts its own token server, registry and client environment
//! on free loopback ports and scratch directories, all stopped and removed
//! when the test ends, failed or not; so tests run in parallel. Every check
//! of what the registry holds goes to the registry's own HTTP API.
//!
//! Needs `docker-registry` and `skopeo` on PATH (`apt-get install
//! docker-registry skopeo`; `.ci/run` installs them). Without them the tests
//! fail, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "registry/oci.rs"]
mod oci;
#[path = "registry/skopeo.rs"]
mod skopeo;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::{get, token_path, ISSUER, SERVICE};
use oci::Image;
use scopegate_harness::{Registry, Reply, Scratch, Spin, SpinOptions};
use skopeo::{Auth, Run, Skopeo};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// A deploy token that may push and pull `team/**`; its own limits would
/// allow delete too, so a refused delete is the policy's doing.
const DEPLOY_TOKEN: &str = "sgd_e2e-deploy-team-push-0123456789abcdefghijklmnopqrstuv";
/// A deploy token limited to pulling `team/**`.
const PULL_TOKEN: &str = "sgd_e2e-deploy-team-pull-0123456789abcdefghijklmnopqrstuv";

/// Accept header for manifest requests: distribution 2.8 answers 404 for an
/// OCI manifest unless the client says it understands OCI.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The store every test starts with: [`common::registry_users`] and the two
/// deploy tokens above, owned by `ci`.
fn store() -> BTreeMap<String, Vec<u8>> {
    let mut kv = common::registry_users();
    for (secret, name, limits) in [
        (
            DEPLOY_TOKEN,
            "e2e-push",
            "repository:team/**:pull,push,delete",
        ),
        (PULL_TOKEN, "e2e-pull", "repository:team/**:pull"),
    ] {
        let record = serde_json::json!({
            "v": 1,
            "kind": "deploy",
            "owner": "ci",
            "name": name,
            "limits": [limits],
            "expires_at": null,
            "created_at": 0,
        });
        kv.insert(
            format!("token/{}", scopegate::secret::digest_hex(secret)),
            serde_json::to_vec(&record).unwrap(),
        );
    }
    kv
}

/// The built component under real Spin with the shared test variables and
/// [`store`], after `configure` has had its say.
fn token_server(configure: impl FnOnce(&mut SpinOptions)) -> Spin {
    let mut options = SpinOptions {
        variables: common::variables(),
        kv: store(),
        ..SpinOptions::default()
    };
    configure(&mut options);
    Spin::start(options)
}

/// A file name unique to `text`.
fn short_name(text: &str) -> String {
    oci::sha256_digest(text.as_bytes())["sha256:".len()..][..16].to_string()
}

/// `SCOPEGATE_E2E_LOGS=1` shows every skopeo run and each test's registry
/// and scopegate logs, also when the test passes (with `--nocapture`).
fn is_showing_logs() -> bool {
    std::env::var_os("SCOPEGATE_E2E_LOGS").is_some_and(|value| value == "1")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One test's world: scopegate, a registry whose realm is scopegate's
/// `/token`, and a skopeo environment, all under one scratch directory.
struct Stack {
    skopeo: Skopeo,
    registry: Registry,
    host: Spin,
    // Dropped last: the registry is gone before its storage is removed.
    scratch: Scratch,
}

impl Stack {
    fn start() -> Stack {
        let host = token_server(|_| {});
        let scratch = Scratch::new("registry");
        let registry =
            Registry::for_token_server(&scratch, &host, SERVICE, ISSUER, common::DEV_CERT);
        let skopeo = Skopeo::new(&scratch.dir("skopeo"));
        Stack {
            skopeo,
            registry,
            host,
            scratch,
        }
    }

    /// `docker://127.0.0.1:PORT/NAME:TAG`.
    fn docker(&self, name_and_tag: &str) -> String {
        format!("docker://{}/{name_and_tag}", self.registry.host())
    }

    /// Writes an OCI layout holding one image whose layer says `content`,
    /// and returns its `oci:` reference and digests.
    fn image(&self, content: &str) -> (String, Image) {
        let dir = self.scratch.dir(&format!("images/{}", short_name(content)));
        let image = oci::write_layout(&dir, "src", content);
        (format!("oci:{}:src", dir.display()), image)
    }

    /// `skopeo copy` from the local layout to the registry.
    fn push(&self, source: &str, name_and_tag: &str, auth: &Auth) -> Run {
        let destination = self.docker(name_and_tag);
        self.skopeo
            .copy(source, &Auth::Anonymous, &destination, auth, &[])
    }

    /// `skopeo copy` from the registry into a fresh local layout, read back
    /// with every blob checked against its digest.
    fn pull(&self, name_and_tag: &str, auth: &Auth) -> Image {
        let dir = self
            .scratch
            .dir(&format!("pulled/{}", short_name(name_and_tag)));
        let destination = format!("oci:{}:pulled", dir.display());
        self.skopeo
            .copy(
                &self.docker(name_and_tag),
                auth,
                &destination,
                &Auth::Anonymous,
                &[],
            )
            .assert_success();
        oci::read_layout(&dir, "pulled")
    }

    /// A token from scopegate for `scopes`, as `basic` (None: anonymous).
    fn token(&self, scopes: &[&str], basic: Option<(&str, &str)>) -> String {
        let reply = get(&self.host, &token_path(scopes), basic);
        assert_eq!(
            reply.status,
            200,
            "token request for {scopes:?}: {}",
            reply.text()
        );
        reply.json()["token"].as_str().unwrap().to_string()
    }

    /// A registry API request with a bearer token.
    fn registry_request(
        &self,
        method: &str,
        path: &str,
        token: &str,
        accept: Option<&str>,
    ) -> Reply {
        let authorization = format!("Bearer {token}");
        let mut headers = vec![("Authorization", authorization.as_str())];
        headers.extend(accept.map(|value| ("Accept", value)));
        self.registry.request(method, path, &headers)
    }

    fn observer_token(&self, scope: &str) -> String {
        self.token(&[scope], Some(("observer", "observer-password")))
    }

    /// The digest the registry serves for `name:tag`, or None if it has no
    /// such manifest.
    fn manifest_digest(&self, name: &str, tag: &str) -> Option<String> {
        let token = self.observer_token(&format!("repository:{name}:pull"));
        let reply = self.registry_request(
            "HEAD",
            &format!("/v2/{name}/manifests/{tag}"),
            &token,
            Some(MANIFEST_ACCEPT),
        );
        match reply.status {
            200 => Some(reply.header("docker-content-digest").unwrap().to_string()),
            404 => None,
            status => panic!(
                "HEAD manifest {name}:{tag}: {status}\n{}",
                self.registry.log()
            ),
        }
    }

    /// Whether the registry has the blob `digest` linked in repository `name`.
    fn has_blob(&self, name: &str, digest: &str) -> bool {
        let token = self.observer_token(&format!("repository:{name}:pull"));
        let reply =
            self.registry_request("HEAD", &format!("/v2/{name}/blobs/{digest}"), &token, None);
        match reply.status {
            200 => true,
            404 => false,
            status => panic!("HEAD blob {name}@{digest}: {status}"),
        }
    }

    /// The tags the registry lists for `name`, sorted; empty for an unknown
    /// repository.
    fn tags(&self, name: &str) -> Vec<String> {
        let token = self.observer_token(&format!("repository:{name}:pull"));
        let reply = self.registry_request("GET", &format!("/v2/{name}/tags/list"), &token, None);
        match reply.status {
            200 => {
                let mut tags: Vec<String> = reply.json()["tags"]
                    .as_array()
                    .map(|tags| {
                        tags.iter()
                            .map(|tag| tag.as_str().unwrap().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                tags.sort();
                tags
            }
            404 => Vec::new(),
            status => panic!("GET tags of {name}: {status} {}", reply.text()),
        }
    }

    /// The repositories the registry's catalog lists.
    fn catalog(&self) -> Vec<String> {
        let token = self.observer_token("registry:catalog:*");
        let reply = self.registry_request("GET", "/v2/_catalog", &token, None);
        assert_eq!(reply.status, 200, "catalog as observer: {}", reply.text());
        catalog_of(&reply)
    }

    /// What the registry holds, as far as these tests care: repositories,
    /// and for each its tags and the digests they point at.
    fn snapshot(&self) -> Vec<(String, String, Option<String>)> {
        let mut held = Vec::new();
        for name in self.catalog() {
            for tag in self.tags(&name) {
                let digest = self.manifest_digest(&name, &tag);
                held.push((name.clone(), tag, digest));
            }
        }
        held
    }

    /// scopegate's request log lines (one JSON object per request).
    fn token_log(&self) -> Vec<serde_json::Value> {
        self.host
            .logs()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|line| line.get("request_id").is_some())
            .collect()
    }

    /// Writes a containers-auth.json with one entry for this registry.
    fn auth_file(&self, entry: serde_json::Value) -> PathBuf {
        let auths = serde_json::json!({ "auths": { self.registry.host(): entry } });
        self.scratch
            .file("auth.json", &serde_json::to_vec_pretty(&auths).unwrap())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() || is_showing_logs() {
            eprintln!("--- registry log\n{}", self.registry.log());
            eprintln!("--- scopegate log\n{}", self.host.logs());
        }
    }
}

fn catalog_of(reply: &Reply) -> Vec<String> {
    let mut names: Vec<String> = reply.json()["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn alice() -> Auth {
    Auth::creds("alice", "alice-password")
}

/// Part `index` of a JWS (0: header, 1: payload), decoded.
fn jwt_part(token: &str, index: usize) -> serde_json::Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn jwt_payload(token: &str) -> serde_json::Value {
    jwt_part(token, 1)
}

// Scenario 1: authenticated push, then pull back and compare digests.
#[test]
fn a_pushed_image_pulls_back_with_the_same_digests() {
    let stack = Stack::start();
    let (source, image) = stack.image("scenario 1\n");

    let digest_file = stack.scratch.path().join("pushed.digest");
    stack
        .skopeo
        .copy(
            &source,
            &Auth::Anonymous,
            &stack.docker("team/app:v1"),
            &alice(),
            &[format!("--digestfile={}", digest_file.display())],
        )
        .assert_success();

    let pushed = std::fs::read_to_string(&digest_file).unwrap();
    assert_eq!(
        pushed.trim(),
        image.manifest_digest,
        "skopeo pushed the manifest unchanged"
    );
    assert_eq!(
        stack.manifest_digest("team/app", "v1"),
        Some(image.manifest_digest.clone())
    );
    assert_eq!(stack.tags("team/app"), ["v1"]);

    let pulled = stack.pull("team/app:v1", &alice());
    assert_eq!(
        pulled, image,
        "manifest, config and layer come back byte for byte"
    );
}

// Scenario 2: list-tags and inspect with pull-only credentials.
#[test]
fn pull_only_credentials_list_tags_and_inspect_but_cannot_push() {
    let stack = Stack::start();
    let (source, image) = stack.image("scenario 2\n");
    stack
        .push(&source, "team/app:v1", &alice())
        .assert_success();
    let reader = Auth::creds("ci", PULL_TOKEN);

    let listed = stack
        .skopeo
        .on_registry("list-tags", &[], &stack.docker("team/app"), &reader);
    assert_eq!(
        listed.assert_success().json()["Tags"],
        serde_json::json!(["v1"]),
        "{listed}"
    );

    let inspected = stack
        .skopeo
        .on_registry("inspect", &[], &stack.docker("team/app:v1"), &reader);
    let inspected = inspected.assert_success().json();
    assert_eq!(inspected["Digest"], image.manifest_digest.as_str());
    assert_eq!(inspected["Layers"], serde_json::json!([image.layer_digest]));

    let raw =
        stack
            .skopeo
            .on_registry("inspect", &["--raw"], &stack.docker("team/app:v1"), &reader);
    assert_eq!(
        oci::sha256_digest(raw.assert_success().stdout.as_bytes()),
        image.manifest_digest
    );

    let (other, _) = stack.image("scenario 2, not to be pushed\n");
    stack.push(&other, "team/app:v2", &reader).assert_refused();
    assert_eq!(stack.tags("team/app"), ["v1"]);
}

// Scenario 3: delete by a user allowed to, refused to a deploy token.
#[test]
fn delete_removes_the_tag_for_a_team_member_and_is_refused_to_a_deploy_token() {
    let stack = Stack::start();
    let (first, image) = stack.image("scenario 3, v1\n");
    let (second, kept) = stack.image("scenario 3, v2\n");
    stack.push(&first, "team/app:v1", &alice()).assert_success();
    stack
        .push(&second, "team/app:v2", &alice())
        .assert_success();

    let by_deploy_token = stack.skopeo.on_registry(
        "delete",
        &[],
        &stack.docker("team/app:v1"),
        &Auth::creds("ci", DEPLOY_TOKEN),
    );
    by_deploy_token.assert_refused();
    assert_eq!(
        stack.manifest_digest("team/app", "v1"),
        Some(image.manifest_digest.clone())
    );
    assert_eq!(stack.tags("team/app"), ["v1", "v2"]);

    stack
        .skopeo
        .on_registry("delete", &[], &stack.docker("team/app:v1"), &alice())
        .assert_success();
    assert_eq!(stack.manifest_digest("team/app", "v1"), None);
    assert_eq!(stack.tags("team/app"), ["v2"]);
    assert_eq!(
        stack.manifest_digest("team/app", "v2"),
        Some(kept.manifest_digest)
    );

    // skopeo asks for `repository:team/app:*`; the deploy token got every
    // action but delete, alice every action.
    let answers: Vec<serde_json::Value> = stack
        .token_log()
        .into_iter()
        .filter(|line| line["requested"] == serde_json::json!(["repository:team/app:*"]))
        .map(|line| serde_json::json!([line["account"], line["granted"]]))
        .collect();
    assert_eq!(
        answers,
        [
            serde_json::json!(["ci", ["repository:team/app:pull,push"]]),
            serde_json::json!(["alice", ["repository:team/app:*"]]),
        ]
    );
}

// Scenario 4: anonymous pull of a public repository; anonymous push refused.
#[test]
fn anonymous_callers_pull_public_images_and_cannot_push() {
    let stack = Stack::start();
    let (source, image) = stack.image("scenario 4\n");
    stack
        .push(
            &source,
            "public/hello:v1",
            &Auth::creds("mia", "mia-password"),
        )
        .assert_success();

    let pulled = stack.pull("public/hello:v1", &Auth::Anonymous);
    assert_eq!(pulled, image);

    let (other, _) = stack.image("scenario 4, anonymous\n");
    stack
        .push(&other, "public/hello:v1", &Auth::Anonymous)
        .assert_refused();
    stack
        .push(&other, "public/anonymous:v1", &Auth::Anonymous)
        .assert_refused();
    assert_eq!(
        stack.snapshot(),
        [(
            "public/hello".into(),
            "v1".into(),
            Some(image.manifest_digest)
        )]
    );
}

// Scenario 5: push outside the caller's rights: refused, registry unchanged.
#[test]
fn push_outside_the_callers_rights_is_refused_and_changes_nothing() {
    let stack = Stack::start();
    let (source, image) = stack.image("scenario 5\n");
    stack
        .push(&source, "team/app:v1", &alice())
        .assert_success();
    let before = stack.snapshot();
    assert_eq!(
        before,
        [("team/app".into(), "v1".into(), Some(image.manifest_digest))]
    );

    // bob is in no group: team/** is not his.
    let (other, intruder) = stack.image("scenario 5, bob\n");
    let bob = Auth::creds("bob", "bob-password");
    stack.push(&other, "team/app:v1", &bob).assert_refused();
    stack.push(&other, "team/new:v1", &bob).assert_refused();

    assert_eq!(stack.snapshot(), before);
    assert!(!stack.has_blob("team/app", &intruder.layer_digest));
    // The refusal is scopegate's: bob's tokens carried no access.
    let grants_to_bob: Vec<_> = stack
        .token_log()
        .into_iter()
        .filter(|line| line["account"] == "bob")
        .map(|line| line["granted"].clone())
        .collect();
    assert!(!grants_to_bob.is_empty(), "{}", stack.host.logs());
    assert!(
        grants_to_bob
            .iter()
            .all(|granted| granted == &serde_json::json!([])),
        "{grants_to_bob:?}"
    );
    assert!(stack.has_blob("team/app", &image.layer_digest));
}

// Scenario 6: cross-repository blob mount.
#[test]
fn copy_between_repositories_mounts_blobs_with_one_token_for_both() {
    let stack = Stack::start();
    let (source, image) = stack.image("scenario 6\n");
    stack
        .push(&source, "team/app:v1", &alice())
        .assert_success();

    stack
        .skopeo
        .copy(
            &stack.docker("team/app:v1"),
            &alice(),
            &stack.docker("team/other:v1"),
            &alice(),
            &[],
        )
        .assert_success();
    assert_eq!(
        stack.manifest_digest("team/other", "v1"),
        Some(image.manifest_digest.clone())
    );
    assert_eq!(stack.catalog(), ["team/app", "team/other"]);

    let both = serde_json::json!([
        "repository:team/other:pull,push",
        "repository:team/app:pull"
    ]);
    let mount_token = stack
        .token_log()
        .into_iter()
        .find(|line| line["requested"] == both)
        .unwrap_or_else(|| {
            panic!(
                "no token request for both repositories:\n{}",
                stack.host.logs()
            )
        });
    assert_eq!(mount_token["status"], 200);
    assert_eq!(mount_token["account"], "alice");

    // containers/image mounts the blobs its blob-info cache knows from the
    // push (as root that cache is /var/lib/containers/cache, else under
    // XDG_DATA_HOME); the registry logs the mount it accepted.
    let layer_hex = &image.layer_digest["sha256:".len()..];
    let log = stack.registry.log();
    assert!(
        log.lines()
            .any(|line| line.contains("msg=\"response completed\"")
                && line.contains("/v2/team/other/blobs/uploads/?from=team%2Fapp&mount=sha256%3A")
                && line.contains(layer_hex)
                && line.contains("http.response.status=201")),
        "the registry mounted the layer from team/app into team/other:\n{log}"
    );
}

// Scenario 7: catalog.
#[test]
fn the_catalog_is_listed_for_admins_only() {
    let stack = Stack::start();
    let (source, _) = stack.image("scenario 7\n");
    stack
        .push(&source, "team/app:v1", &alice())
        .assert_success();
    stack
        .push(
            &source,
            "public/hello:v1",
            &Auth::creds("mia", "mia-password"),
        )
        .assert_success();

    let admin = stack.token(&["registry:catalog:*"], Some(("admin", "admin-password")));
    let reply = stack.registry_request("GET", "/v2/_catalog", &admin, None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(catalog_of(&reply), ["public/hello", "team/app"]);

    for caller in [Some(("alice", "alice-password")), None] {
        let token = stack.token(&["registry:catalog:*"], caller);
        let reply = stack.registry_request("GET", "/v2/_catalog", &token, None);
        assert_eq!(reply.status, 401, "{caller:?}: {}", reply.text());
        assert!(reply.text().contains("UNAUTHORIZED"), "{}", reply.text());
    }
}

// Scenario 8: refresh (identity) token flow as containers/image does it.
#[test]
fn an_identity_token_in_an_auth_file_pushes_until_it_is_revoked() {
    let stack = Stack::start();
    // What `podman login` does for a registry whose token server hands out
    // refresh tokens: a GET with offline_token=true.
    let reply = get(
        &stack.host,
        &format!("/token?service={SERVICE}&offline_token=true&client_id=containers%2Fimage"),
        Some(("alice", "alice-password")),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let refresh_token = reply.json()["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    let auth_file = stack.auth_file(serde_json::json!({
        // containers/image ignores an identity token without `auth` = "USER:".
        "auth": STANDARD.encode("alice:"),
        "identitytoken": refresh_token,
    }));
    let from_file = Auth::File(auth_file);

    let (source, image) = stack.image("scenario 8\n");
    stack
        .push(&source, "team/app:v1", &from_file)
        .assert_success();
    assert_eq!(
        stack.manifest_digest("team/app", "v1"),
        Some(image.manifest_digest.clone())
    );
    let refreshes: Vec<_> = stack
        .token_log()
        .into_iter()
        .filter(|line| line["method"] == "POST" && line["client_id"] == "containers/image")
        .collect();
    assert!(
        !refreshes.is_empty(),
        "skopeo used the refresh grant:\n{}",
        stack.host.logs()
    );
    assert!(
        refreshes
            .iter()
            .all(|line| line["status"] == 200 && line["account"] == "alice"),
        "{refreshes:?}"
    );

    stack.host.kv_delete(&format!(
        "refresh/{}",
        scopegate::secret::digest_hex(&refresh_token)
    ));
    stack.host.clear_logs();
    let (other, _) = stack.image("scenario 8, after revocation\n");
    let refused = stack.push(&other, "team/app:v2", &from_file);
    // scopegate answers a dead refresh token with OAuth2's invalid_grant
    // (400); containers/image reports that while obtaining the token.
    assert!(!refused.is_success(), "{refused}");
    assert!(refused.stderr.contains("obtain access token"), "{refused}");
    let refresh_attempts: Vec<_> = stack
        .token_log()
        .into_iter()
        .filter(|line| line["method"] == "POST")
        .map(|line| (line["outcome"].clone(), line["granted"].clone()))
        .collect();
    assert!(!refresh_attempts.is_empty(), "{}", stack.host.logs());
    assert!(
        refresh_attempts
            .iter()
            .all(|(outcome, granted)| outcome == "unauthorized" && granted.is_null()),
        "{refresh_attempts:?}"
    );
    assert_eq!(
        stack.snapshot(),
        [("team/app".into(), "v1".into(), Some(image.manifest_digest))]
    );
}

// Scenario 9: an expired token.
#[test]
fn an_expired_token_is_rejected_by_the_registry() {
    let stack = Stack::start();
    // The same component, key, issuer and store, on a clock ten minutes
    // behind: what it signs now expired five minutes ago (TTL 300 s), well
    // past the registry's 60 s leeway.
    let behind = token_server(|options| options.clock_offset_secs = -600);
    let reply = get(
        &behind,
        &token_path(&["repository:team/app:pull"]),
        Some(("alice", "alice-password")),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let expired = reply.json()["token"].as_str().unwrap().to_string();
    let exp = jwt_payload(&expired)["exp"].as_u64().unwrap();
    assert!(
        exp + 60 < now(),
        "exp {exp} is more than the leeway in the past"
    );

    let (source, image) = stack.image("scenario 9\n");
    stack
        .push(&source, "team/app:v1", &alice())
        .assert_success();
    let fresh = stack.token(
        &["repository:team/app:pull"],
        Some(("alice", "alice-password")),
    );
    let accepted = stack.registry_request("GET", "/v2/team/app/tags/list", &fresh, None);
    assert_eq!(
        accepted.status,
        200,
        "a current token is accepted: {}",
        accepted.text()
    );
    assert_eq!(accepted.json()["tags"], serde_json::json!(["v1"]));

    let rejected = stack.registry_request("GET", "/v2/team/app/tags/list", &expired, None);
    assert_eq!(rejected.status, 401, "{}", rejected.text());
    let challenge = rejected.header("www-authenticate").unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    // distribution 2.8.2 logs why it refused: the expiry, not the signature.
    assert!(
        stack.registry.log().contains("token not to be used after"),
        "{}",
        stack.registry.log()
    );
    let manifest = format!("/v2/team/app/manifests/{}", image.manifest_digest);
    let rejected = stack.registry_request("GET", &manifest, &expired, Some(MANIFEST_ACCEPT));
    assert_eq!(rejected.status, 401, "{}", rejected.text());

    // Within the leeway an expired token still works: one that expired
    // about 30 s ago is accepted. So a key rotation may drop the old
    // certificate only `token_ttl` + 60 s after the switch (README, Key
    // rotation), not after `token_ttl`.
    let lately = token_server(|options| options.clock_offset_secs = -330);
    let reply = get(
        &lately,
        &token_path(&["repository:team/app:pull"]),
        Some(("alice", "alice-password")),
    );
    let lately_expired = reply.json()["token"].as_str().unwrap().to_string();
    let exp = jwt_payload(&lately_expired)["exp"].as_u64().unwrap();
    assert!(
        exp < now() && now() < exp + 60,
        "exp {exp} is within the leeway"
    );
    let accepted = stack.registry_request("GET", "/v2/team/app/tags/list", &lately_expired, None);
    assert_eq!(accepted.status, 200, "{}", accepted.text());
}

// Signing algorithms: distribution 2.8 takes ES256 and RS256 tokens (skopeo
// pushes and pulls with each) and refuses EdDSA ones, as the README says.
#[test]
fn distribution_2_8_accepts_es256_and_rs256_tokens_and_refuses_eddsa() {
    const ED_KEY: &str = include_str!("keys/ed25519-key.pem");
    const ED_CERT: &str = include_str!("keys/ed25519-cert.pem");
    for (alg, key, cert) in [
        ("ES256", common::DEV_KEY, common::DEV_CERT),
        (
            "RS256",
            include_str!("keys/rsa-key.pem"),
            include_str!("keys/rsa-cert.pem"),
        ),
        // 2.8 cannot trust an Ed25519 certificate (below): its bundle holds
        // the ES256 one, and the EdDSA tokens must be refused.
        ("EdDSA", ED_KEY, common::DEV_CERT),
    ] {
        let accepted = alg != "EdDSA";
        let host = token_server(|options| {
            options.variables.insert("signing_alg".into(), alg.into());
            options.variables.insert("signing_key".into(), key.into());
            let own_cert = if accepted { cert } else { ED_CERT };
            options
                .variables
                .insert("signing_cert".into(), own_cert.into());
        });
        let scratch = Scratch::new("registry-alg");
        let registry = Registry::for_token_server(&scratch, &host, SERVICE, ISSUER, cert);
        let stack = Stack {
            skopeo: Skopeo::new(&scratch.dir("skopeo")),
            registry,
            host,
            scratch,
        };
        let token = stack.token(
            &["repository:team/app:pull,push"],
            Some(("alice", "alice-password")),
        );
        assert_eq!(jwt_part(&token, 0)["alg"], alg);
        let (source, image) = stack.image(&format!("signed with {alg}\n"));
        let push = stack.skopeo.copy(
            &source,
            &Auth::Anonymous,
            &stack.docker("team/app:v1"),
            &alice(),
            &[],
        );
        let listed = stack.registry_request("GET", "/v2/team/app/tags/list", &token, None);
        if accepted {
            push.assert_success();
            assert_ne!(listed.status, 401, "{alg}: {}", listed.text());
            assert_eq!(stack.pull("team/app:v1", &alice()), image, "{alg}");
        } else {
            assert!(!push.is_success(), "{alg}: the push went through");
            assert_eq!(listed.status, 401, "{alg}: {}", listed.text());
        }
    }

    // And 2.8 refuses to start with an Ed25519 certificate in its bundle.
    let scratch = Scratch::new("registry-ed25519");
    let bundle = scratch.file("signing-cert.pem", ED_CERT.as_bytes());
    let config = scopegate_harness::registry::config_yml(
        "127.0.0.1:1".parse().unwrap(),
        &scratch.dir("storage"),
        &scopegate_harness::registry::TokenAuth {
            realm: "http://127.0.0.1:1/token",
            service: SERVICE,
            issuer: ISSUER,
            root_cert_bundle: &bundle,
        },
    );
    let config = scratch.file("config.yml", config.as_bytes());
    let output = std::process::Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("public key type ed25519.PublicKey is not supported"),
        "{stderr}"
    );
}
