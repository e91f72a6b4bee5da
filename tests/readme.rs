//! Keeps the README's quick start true: its `spin up` line, run as written
//! under real Spin (on a free port, with its state in a scratch directory),
//! must answer its `curl` line with a token; and `spin.toml` must declare
//! exactly the variables the component reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[allow(dead_code)]
#[path = "registry/oci.rs"]
mod oci;
#[allow(dead_code)]
#[path = "registry/skopeo.rs"]
mod skopeo;

use common::*;
use scopegate_harness::{Registry, Scratch};
use std::collections::BTreeMap;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme_line(prefix: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("README has no line starting with {prefix:?}"));
    shlex::split(line).expect("the README line is valid shell")
}

fn flag_values<'a>(words: &'a [String], flag: &str) -> Vec<&'a str> {
    words
        .windows(2)
        .filter(|pair| pair[0] == flag)
        .map(|pair| pair[1].as_str())
        .collect()
}

fn static_variables(runtime_config: &str) -> BTreeMap<String, String> {
    let config: toml::Table = std::fs::read_to_string(root().join(runtime_config))
        .unwrap()
        .parse()
        .unwrap();
    let providers = config["variables_provider"].as_array().unwrap();
    let provider = providers
        .iter()
        .find(|p| p["type"].as_str() == Some("static"))
        .expect("a static variables provider");
    provider["values"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn quick_start_commands_work() {
    let run = readme_line("spin up ");
    assert!(run.contains(&"--build".to_string()));
    assert_eq!(run[0], "spin");
    // The README's line as written, run in the repository root; only the
    // address and the state directory are the test's own.
    let host = Spin::start_command_line(&run[1..], &root());

    let curl = readme_line("curl -u dev:");
    let credentials = flag_values(&curl, "-u")[0];
    let (user, password) = credentials.split_once(':').unwrap();
    let url = curl.last().unwrap();
    let target = url
        .strip_prefix("http://127.0.0.1:3000")
        .expect("README talks to spin's default address");
    let reply = get(&host, target, Some((user, password)));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let token = reply.json()["token"].as_str().unwrap().to_string();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], user);
    assert!(
        !claims["access"].as_array().unwrap().is_empty(),
        "the quick start's user gets what it asks for: {claims}"
    );
}

/// The registry configuration the README points at works with the quick
/// start as shipped: distribution 2.8 started with `dev/registry-config.yml`
/// (only its addresses and storage directory changed) takes a push from the
/// quick start's user through the quick start's scopegate.
#[test]
fn the_shipped_registry_config_takes_a_push_with_the_quick_start() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains("dev/registry-config.yml"),
        "the README points at the file"
    );
    let run = readme_line("spin up ");
    let spin = Spin::start_command_line(&run[1..], &root());
    let shipped = std::fs::read_to_string(root().join("dev/registry-config.yml")).unwrap();
    let scratch = Scratch::new("readme-registry");
    let storage = scratch.dir("storage");
    let bundle = root().join("dev/signing-cert.pem");
    let registry = Registry::start_with_config(&scratch.dir("registry"), |addr| {
        let mut config = shipped.clone();
        for (from, to) in [
            (
                "realm: http://127.0.0.1:3000/",
                format!("realm: http://{}/", spin.addr()),
            ),
            ("addr: 127.0.0.1:5000", format!("addr: {addr}")),
            (
                "rootdirectory: .spin/registry",
                format!("rootdirectory: {}", storage.display()),
            ),
            // Resolved from the repository root, as the file's comment says.
            (
                "rootcertbundle: dev/signing-cert.pem",
                format!("rootcertbundle: {}", bundle.display()),
            ),
        ] {
            assert!(
                config.matches(from).count() == 1,
                "dev/registry-config.yml has exactly one {from}"
            );
            config = config.replace(from, &to);
        }
        config
    });

    let image_dir = scratch.dir("image");
    let image = oci::write_layout(&image_dir, "v1", "pushed through the quick start\n");
    let skopeo = skopeo::Skopeo::new(&scratch.dir("skopeo"));
    let curl = readme_line("curl -u dev:");
    let (user, password) = flag_values(&curl, "-u")[0].split_once(':').unwrap();
    skopeo
        .copy(
            &format!("oci:{}:v1", image_dir.display()),
            &skopeo::Auth::Anonymous,
            &format!("docker://{}/team/app:v1", registry.host()),
            &skopeo::Auth::creds(user, password),
            &[],
        )
        .assert_success();
    let inspected = skopeo
        .on_registry(
            "inspect",
            &["--raw"],
            &format!("docker://{}/team/app:v1", registry.host()),
            &skopeo::Auth::creds(user, password),
        )
        .assert_success()
        .json();
    assert_eq!(
        inspected["layers"][0]["digest"].as_str(),
        Some(image.layer_digest.as_str()),
        "the registry holds the pushed image"
    );
}

#[test]
fn manifest_declares_every_variable_the_component_reads() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("spin.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let declared: Vec<&String> = manifest["variables"].as_table().unwrap().keys().collect();
    let component = &manifest["component"]["scopegate"];
    let passed: Vec<&String> = component["variables"].as_table().unwrap().keys().collect();
    // The rest configure the manifest itself: the hosts the component may
    // fetch OIDC issuers' keys from.
    let outbound = component["allowed_outbound_hosts"].as_array().unwrap();
    let in_outbound: Vec<&String> = declared
        .iter()
        .copied()
        .filter(|name| {
            outbound
                .iter()
                .any(|host| host.as_str() == Some(&format!("{{{{ {name} }}}}")))
        })
        .collect();
    assert_eq!(
        in_outbound,
        ["oidc_issuer_host", "oidc_issuer_host_other"],
        "allowed_outbound_hosts is made of the OIDC host variables"
    );
    let expected: Vec<&String> = declared
        .iter()
        .copied()
        .filter(|name| !in_outbound.contains(name))
        .collect();
    assert_eq!(
        expected, passed,
        "every other application variable reaches the component"
    );
    for name in variables_read_by_the_component() {
        assert!(
            declared.contains(&&name),
            "spin.toml does not declare {name}"
        );
    }
    for name in static_variables("dev/runtime-config.toml").keys() {
        assert!(
            declared.contains(&name),
            "dev config sets undeclared {name}"
        );
    }
    let source = component["source"].as_str().unwrap();
    assert_eq!(
        source,
        "target/wasm32-wasip1/release/scopegate.snapshot.wasm"
    );
    let steps: Vec<&str> = component["build"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step.as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "rustup target add wasm32-wasip1",
            "cargo build --target wasm32-wasip1 --release -p scopegate --features snapshot",
            "cargo run --quiet --release -p scopegate-snapshot -- \
             target/wasm32-wasip1/release/scopegate.wasm \
             target/wasm32-wasip1/release/scopegate.snapshot.wasm",
        ]
    );
    assert_eq!(
        outbound.len(),
        in_outbound.len(),
        "the component reaches out only to the OIDC issuer hosts the variables name"
    );
    let routes: Vec<&str> = manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["route"].as_str().unwrap())
        .collect();
    for route in [
        "/token",
        "/jwt/auth",
        "/auth",
        "/.well-known/jwks.json",
        "/healthz",
        "/admin/...",
    ] {
        assert!(routes.contains(&route), "spin.toml routes {route}");
    }
}

/// Every variable name `Config::from_variables` asks for.
fn variables_read_by_the_component() -> Vec<String> {
    struct Recording(std::cell::RefCell<Vec<String>>);
    impl scopegate::config::Variables for Recording {
        fn variable(&self, name: &str) -> Result<Option<String>, String> {
            self.0.borrow_mut().push(name.to_string());
            Ok(match name {
                "issuer" | "services" => Some("x".to_string()),
                _ => None,
            })
        }
    }
    let recording = Recording(Default::default());
    scopegate::config::Config::from_variables(&recording).unwrap();
    let names = recording.0.into_inner();
    assert!(names.len() >= 11, "{names:?}");
    names
}
