//! deploy/kubernetes/base's values under real Spin, handed over the way
//! spin-operator hands them to a pod: each SpinApp variable as the
//! environment variable `SPIN_VARIABLE_<NAME>`, resolved from its ConfigMap
//! or Secret, and the `default` store on the Redis its runtimeConfig names.
//! The deployment's own files in `local/` (key, certificate, admin digest,
//! Redis URL) are stood in for by the test's. What the registry's
//! configuration in `registry-auth` expects (issuer, service, realm) is what
//! the running app then issues, and distribution 2.8 started with that
//! configuration (its addresses and paths made local) accepts its tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
// Shared with tests/deploy.rs, which also reads where each object came from.
#[allow(dead_code)]
#[path = "deploy/kustomize.rs"]
mod kustomize;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::*;
use scopegate_harness::{Redis, Registry, Scratch};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The value a `valueFrom` names in the build; files of `local/` are
/// replaced by `local`.
fn resolve(
    objects: &[kustomize::Object],
    value_from: &Value,
    local: &BTreeMap<&str, String>,
) -> String {
    let (kind, reference) = if value_from["secretKeyRef"].is_object() {
        ("Secret", &value_from["secretKeyRef"])
    } else {
        ("ConfigMap", &value_from["configMapKeyRef"])
    };
    let object = objects
        .iter()
        .map(|object| &object.value)
        .find(|value| value["kind"] == kind && value["metadata"]["name"] == reference["name"])
        .unwrap_or_else(|| panic!("no {kind} {}", reference["name"]));
    let value = object["data"][reference["key"].as_str().unwrap()]
        .as_str()
        .unwrap_or_else(|| panic!("{kind} {} has no {}", reference["name"], reference["key"]));
    match value.strip_prefix("local/") {
        Some(file) => local
            .get(file)
            .unwrap_or_else(|| panic!("the test has no stand-in for local/{file}"))
            .clone(),
        None => value.to_string(),
    }
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[test]
fn the_base_manifests_values_run_under_spin_and_match_the_registry() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/base");
    let objects = kustomize::build(&dir);
    let app = &objects
        .iter()
        .find(|object| object.value["kind"] == "SpinApp")
        .unwrap()
        .value;
    let redis = Redis::start();
    let local: BTreeMap<&str, String> = [
        ("signing-key.pem", DEV_KEY.to_string()),
        ("signing-cert.pem", DEV_CERT.to_string()),
        (
            "admin_token_sha256",
            scopegate::secret::digest_hex(ADMIN_SECRET),
        ),
        ("redis-url", format!("{}/1", redis.url())),
    ]
    .into_iter()
    .collect();

    let mut env = BTreeMap::new();
    for variable in app["spec"]["variables"].as_array().unwrap() {
        let name = variable["name"].as_str().unwrap();
        let value = match variable["value"].as_str() {
            Some(value) => value.to_string(),
            None => resolve(&objects, &variable["valueFrom"], &local),
        };
        env.insert(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
    }
    let stores = app["spec"]["runtimeConfig"]["keyValueStores"]
        .as_array()
        .unwrap();
    let [store] = &stores[..] else {
        panic!("one store: {stores:?}");
    };
    assert_eq!(
        (store["name"].as_str(), store["type"].as_str()),
        (Some("default"), Some("redis"))
    );
    let url = store["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|option| option["name"] == "url")
        .unwrap();
    let redis_url = resolve(&objects, &url["valueFrom"], &local);

    let host = Spin::start(SpinOptions {
        env,
        redis_url: Some(redis_url),
        ..SpinOptions::default()
    });
    let health = get(&host, "/healthz", None);
    assert_eq!(health.status, 200, "{}", health.text());

    // The admin secret whose digest the Secret holds opens the admin API.
    create_user(&host, "alice", "alice-password", &["team"]);

    // A token for the registry's service carries what its config expects.
    let registry = objects
        .iter()
        .find(|object| object.value["metadata"]["name"] == "registry-auth")
        .unwrap();
    let registry: Value =
        serde_yaml::from_str(registry.value["data"]["config.yml"].as_str().unwrap()).unwrap();
    let expected = &registry["auth"]["token"];
    let service = expected["service"].as_str().unwrap();
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("service", service);
    query.append_pair("scope", "repository:team/app:pull,push");
    let target = format!("/token?{}", query.finish());
    let reply = get(&host, &target, Some(("alice", "alice-password")));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    let token = body["token"].as_str().unwrap();
    let claims = claims(token);
    assert_eq!(claims["iss"], expected["issuer"]);
    assert_eq!(claims["aud"], json!(service));
    let config = &objects
        .iter()
        .find(|object| object.value["metadata"]["name"] == "scopegate-config")
        .unwrap()
        .value["data"];
    let ttl: u64 = config["token_ttl"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        ttl
    );
    assert_eq!(body["expires_in"], json!(ttl));
    // Signed with the certificate the registry's rootcertbundle holds.
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let x5c = STANDARD.decode(header["x5c"][0].as_str().unwrap()).unwrap();
    assert_eq!(x5c, pem_der(DEV_CERT));

    // distribution 2.8 started with registry-auth's config.yml (only its
    // addresses and paths made local) accepts that token: auth passes and
    // the repository is simply not there yet.
    let scratch = Scratch::new("deploy-registry");
    let bundle = scratch.file("signing_cert", DEV_CERT.as_bytes());
    let started = Registry::start_with_config(&scratch.dir("registry"), |addr| {
        let mut local_config = registry.clone();
        local_config["storage"]["filesystem"]["rootdirectory"] =
            json!(scratch.dir("storage").display().to_string());
        local_config["http"]["addr"] = json!(addr.to_string());
        local_config["http"]["host"] = json!(format!("http://{addr}"));
        local_config["auth"]["token"]["realm"] = json!(host.url("/token"));
        local_config["auth"]["token"]["rootcertbundle"] = json!(bundle.display().to_string());
        // JSON is YAML: distribution reads it as its config.yml.
        local_config.to_string()
    });
    let bearer = format!("Bearer {token}");
    let tags = started.request(
        "GET",
        "/v2/team/app/tags/list",
        &[("Authorization", &bearer)],
    );
    assert_eq!(tags.status, 404, "{}\n{}", tags.text(), started.log());
    assert!(tags.text().contains("NAME_UNKNOWN"), "{}", tags.text());
    let anonymous = started.request("GET", "/v2/team/app/tags/list", &[]);
    assert_eq!(anonymous.status, 401);

    // Refused clients are sent to the registry's realm.
    let refused = get(&host, &target, Some(("alice", "wrong-password")));
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("www-authenticate"),
        Some(format!("Basic realm=\"{}\"", expected["realm"].as_str().unwrap()).as_str())
    );
}
