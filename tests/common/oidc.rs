//! Workload identity under real Spin: a local OpenID issuer (the harness's
//! [`OidcIssuer`]) with GitHub- and GitLab-shaped issuers, and a component
//! built to trust it.
//!
//! The shipped policies trust only https issuers, so the tests build their
//! own component, once per test process, into `target/oidc-test`: the
//! shipped `policies/ci.toml` with its issuer URLs pointed at the local
//! issuer and its `your_org` placeholder set to `acme`, plus
//! `lab.toml` (an issuer whose keys rotate, one that cannot be reached, one
//! whose JWKS answers 500), and the shipped `policies/people.toml` twice: with
//! its issuer URL pointed at the local `/corp` issuer, and as issuer `sso` at the
//! harness's identity provider ([`Idp`]) for logins through the CLI.
//! `SCOPEGATE_POLICY_DIR` (build.rs) selects that folder. It runs under the
//! repository's own `spin.toml`, only its `source` changed, so the
//! manifest's `allowed_outbound_hosts` variables are what lets it out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use scopegate_harness::{free_port, repository_root, Idp, OidcIssuer};

/// Building the component with other policies (also used on its own by CLI tests).
#[path = "component.rs"]
pub mod component;
use component::{write_if_changed, Build};

/// The audience the shipped `policies/ci.toml` declares for both issuers.
pub const AUDIENCE: &str = "registry.example.com";
/// The client id people log in with, the audience of `policies/people.toml`.
pub const PEOPLE_AUDIENCE: &str = "scopegate-cli";
/// The issuer URL the shipped `policies/people.toml` declares.
const PEOPLE_ISSUER: &str = "https://login.example.com/realms/corp";
/// The JWKS paths whose GETs the tests count.
pub const ROTATING_JWKS: &str = "/rotating/jwks";
pub const ROTATING_DISCOVERY: &str = "/rotating/.well-known/openid-configuration";
/// The failing issuer: its discovery document is served, its JWKS answers 500.
pub const FAILING_JWKS: &str = "/failing/jwks";
pub const FAILING_DISCOVERY: &str = "/failing/.well-known/openid-configuration";

/// The local issuers, their keys, and the component that trusts them.
pub struct Oidc {
    pub issuer: OidcIssuer,
    pub manifest: PathBuf,
    /// GitHub-shaped (RS256, discovery, `max_age` 900).
    pub github: RS256KeyPair,
    /// GitLab-shaped (ES256, discovery).
    pub gitlab: ES256KeyPair,
    /// The company's identity provider of `policies/people.toml` (ES256, discovery).
    pub corp: ES256KeyPair,
    /// A whole identity provider (device flow, refresh tokens) for people's logins
    /// through the CLI: issuer `sso`, the same rules as `corp`.
    pub idp: Idp,
    /// The rotating issuer's first and second key.
    pub rotating_a: ES256KeyPair,
    pub rotating_b: RS256KeyPair,
    /// A key no issuer publishes, with the GitHub key's `kid`.
    pub impostor: RS256KeyPair,
    /// The URL of an issuer that cannot be reached (a closed port).
    pub down_url: String,
}

impl Oidc {
    pub fn github_url(&self) -> String {
        self.issuer.url("/github")
    }

    pub fn gitlab_url(&self) -> String {
        self.issuer.url("/gitlab")
    }

    pub fn corp_url(&self) -> String {
        self.issuer.url("/corp")
    }

    pub fn rotating_url(&self) -> String {
        self.issuer.url("/rotating")
    }

    pub fn failing_url(&self) -> String {
        self.issuer.url("/failing")
    }

    /// The rotating issuer publishes `keys` (public JWKs) from now on.
    pub fn publish_rotating(&self, keys: &[String]) {
        self.issuer.serve(ROTATING_JWKS, jwks(keys));
    }
}

/// `variables`, and a Spin allowed-host pattern for every loopback port, so
/// the component may fetch from the local issuers.
pub fn oidc_variables(mut variables: BTreeMap<String, String>) -> BTreeMap<String, String> {
    variables.insert("oidc_issuer_host".into(), "http://127.0.0.1:*".into());
    variables
}

/// The issuers and the built component, made once per test process.
pub fn oidc() -> &'static Oidc {
    static OIDC: OnceLock<Oidc> = OnceLock::new();
    OIDC.get_or_init(|| {
        let issuer = OidcIssuer::start();
        let oidc = Oidc {
            down_url: format!("http://{}", free_port()),
            issuer,
            manifest: PathBuf::new(),
            github: RS256KeyPair::generate(2048).unwrap().with_key_id("gh-1"),
            gitlab: ES256KeyPair::generate().with_key_id("gl-1"),
            corp: ES256KeyPair::generate().with_key_id("corp-1"),
            idp: Idp::start(PEOPLE_AUDIENCE),
            rotating_a: ES256KeyPair::generate().with_key_id("rot-a"),
            rotating_b: RS256KeyPair::generate(2048).unwrap().with_key_id("rot-b"),
            impostor: RS256KeyPair::generate(2048).unwrap().with_key_id("gh-1"),
        };
        for (name, key) in [
            ("github", oidc.github.public_key().to_jwk()),
            ("gitlab", oidc.gitlab.public_key().to_jwk()),
            ("corp", oidc.corp.public_key().to_jwk()),
        ] {
            serve_issuer(&oidc.issuer, name, &[key]);
        }
        serve_issuer(
            &oidc.issuer,
            "rotating",
            &[oidc.rotating_a.public_key().to_jwk()],
        );
        serve_issuer(&oidc.issuer, "failing", &[]);
        oidc.issuer.fail(FAILING_JWKS);
        let manifest = build_component(&oidc);
        Oidc { manifest, ..oidc }
    })
}

fn jwks(keys: &[String]) -> String {
    format!("{{\"keys\":[{}]}}", keys.join(","))
}

/// Discovery at `/NAME/.well-known/openid-configuration`, JWKS at `/NAME/jwks`.
fn serve_issuer(issuer: &OidcIssuer, name: &str, keys: &[String]) {
    let url = issuer.url(&format!("/{name}"));
    issuer.serve(
        &format!("/{name}/.well-known/openid-configuration"),
        format!(r#"{{"issuer":"{url}","jwks_uri":"{url}/jwks","id_token_signing_alg_values_supported":["RS256","ES256"]}}"#),
    );
    issuer.serve(&format!("/{name}/jwks"), jwks(keys));
}

/// Writes the test policies, builds the component with them, and writes a
/// copy of `spin.toml` that runs it. Returns that manifest.
fn build_component(oidc: &Oidc) -> PathBuf {
    let root = repository_root();
    let out = root.join("target/oidc-test");
    let policies = out.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let shipped = std::fs::read_to_string(root.join("policies/ci.toml")).unwrap();
    let github = "https://token.actions.githubusercontent.com";
    let gitlab = "https://gitlab.example.com";
    assert!(
        shipped.contains(github) && shipped.contains(gitlab) && shipped.contains("your_org"),
        "policies/ci.toml no longer has the issuers the OIDC tests point elsewhere"
    );
    let ci = shipped
        .replace(github, &oidc.github_url())
        .replace(gitlab, &oidc.gitlab_url())
        .replace("your_org", "acme");
    write_if_changed(&policies.join("ci.toml"), &ci);
    let lab = format!(
        r#"[[issuer]]
name = "rotating"
url = "{rotating}"
audience = "{AUDIENCE}"

[[issuer]]
name = "down"
url = "{down}"
audience = "{AUDIENCE}"

[[issuer]]
name = "failing"
url = "{failing}"
audience = "{AUDIENCE}"

[[allow]]
who = ["oidc:rotating", "oidc:down", "oidc:failing"]
what = ["repository:lab/**"]
actions = ["pull"]

[[allow]]
who = ["anyone"]
what = ["repository:lab-public/**"]
actions = ["pull"]

[[deny]]
who = ["anonymous"]
what = ["repository:lab-public/secret/**"]
actions = ["*"]
"#,
        rotating = oidc.rotating_url(),
        down = oidc.down_url,
        failing = oidc.failing_url(),
    );
    write_if_changed(&policies.join("lab.toml"), &lab);
    let people = std::fs::read_to_string(root.join("policies/people.toml")).unwrap();
    assert!(
        people.contains(PEOPLE_ISSUER) && people.contains(PEOPLE_AUDIENCE),
        "policies/people.toml no longer has the issuer the tests point elsewhere"
    );
    write_if_changed(
        &policies.join("people.toml"),
        &people.replace(PEOPLE_ISSUER, &oidc.corp_url()),
    );
    let issuer_name = "name     = \"corp\"";
    assert!(people.contains(issuer_name) && people.contains("oidc:corp"));
    write_if_changed(
        &policies.join("sso.toml"),
        &people
            .replace(PEOPLE_ISSUER, &oidc.idp.issuer())
            .replace(issuer_name, "name     = \"sso\"")
            .replace("oidc:corp", "oidc:sso"),
    );

    component::build(&policies, &out, Build::Shipped)
}

/// The WASI 0.3 build of the same component (`spin-p3.toml`), built on
/// first use into `target/oidc-test-p3`. Returns its manifest.
pub fn oidc_p3_manifest() -> &'static PathBuf {
    static MANIFEST: OnceLock<PathBuf> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let root = repository_root();
        // The policies are written by `oidc()`.
        let policies = oidc().manifest.parent().unwrap().join("policies");
        component::build(&policies, &root.join("target/oidc-test-p3"), Build::P3)
    })
}

/// Claims of a GitHub Actions job of `acme/app` on `git_ref`, valid now.
pub fn github_claims(oidc: &Oidc, git_ref: &str) -> JWTClaims<serde_json::Value> {
    let custom = serde_json::json!({
        "repository": "acme/app",
        "repository_owner": "acme",
        "repository_id": "1234",
        "ref": git_ref,
        "ref_type": "branch",
        "workflow": "build",
        "event_name": "push",
        "job_workflow_ref": "acme/app/.github/workflows/build.yml@refs/heads/main",
        "runner_environment": "github-hosted",
    });
    Claims::with_custom_claims(custom, Duration::from_secs(300))
        .with_issuer(oidc.github_url())
        .with_audience(AUDIENCE)
        .with_subject(format!("repo:acme/app:ref:{git_ref}"))
        .with_jwt_id("job-1")
}

/// Claims of a GitLab CI job of project `platform/tools/app` on a protected
/// branch, valid now.
pub fn gitlab_claims(oidc: &Oidc) -> JWTClaims<serde_json::Value> {
    let custom = serde_json::json!({
        "namespace_id": "7",
        "namespace_path": "platform/tools",
        "project_id": "42",
        "project_path": "platform/tools/app",
        "user_login": "mia",
        "pipeline_source": "push",
        "ref": "main",
        "ref_type": "branch",
        "ref_protected": "true",
    });
    Claims::with_custom_claims(custom, Duration::from_secs(300))
        .with_issuer(oidc.gitlab_url())
        .with_audiences(HashSet::from(["other".to_string(), AUDIENCE.to_string()]))
        .with_subject("project_path:platform/tools/app:ref_type:branch:ref:main")
}

/// Claims of a person's ID token from the company's provider (`corp`), valid
/// for `lifetime`: `preferred_username` and `groups` as Keycloak sends them.
pub fn person_claims(
    oidc: &Oidc,
    sub: &str,
    username: &str,
    groups: &[&str],
    lifetime: Duration,
) -> JWTClaims<serde_json::Value> {
    let custom = serde_json::json!({
        "preferred_username": username,
        "groups": groups,
        "email": format!("{username}@example.com"),
        "email_verified": true,
    });
    Claims::with_custom_claims(custom, lifetime)
        .with_issuer(oidc.corp_url())
        .with_audience(PEOPLE_AUDIENCE)
        .with_subject(sub)
}

/// A JWT from raw header and payload JSON, with `signature` as its third part.
pub fn raw_jwt(
    header: &serde_json::Value,
    payload: &serde_json::Value,
    signature: &[u8],
) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}
