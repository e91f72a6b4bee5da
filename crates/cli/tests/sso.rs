//! Single sign-on for people: `scopegate auth login --oidc` against the harness's local
//! identity provider (the test plays the person approving the device code, or the
//! browser following the redirect), then `docker-credential-scopegate` as docker calls
//! it: fresh ID tokens, refreshes, revocation, and the protocol's answers.
//!
//! Every run gets its own HOME, DOCKER_CONFIG, XDG_CONFIG_HOME and XDG_RUNTIME_DIR in a
//! temporary directory, so the user's real files are never read or written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common_sso;

use common_sso::{finish, mia, mode, read_json, shown, Machine, CLIENT_ID, PROMPT_WAIT, REGISTRY};
use scopegate_harness::{http, require_program, Body, Idp, Person};
use serde_json::{json, Value};

#[test]
fn a_device_login_lets_the_helper_hand_docker_the_persons_id_token() {
    let idp = Idp::start(CLIENT_ID);
    let machine = Machine::new();
    std::fs::write(
        machine.docker_config(),
        r#"{"auths":{"other.example":{"auth":"eDp5"}},"credHelpers":{"gcr.io":"gcloud"},"psFormat":"table"}"#,
    )
    .unwrap();

    let login = machine.device_login(&idp, &mia(), &["--scope", "groups", "--containers-auth"]);
    assert_eq!(login.code, Some(0), "{}", login.stderr);
    assert_eq!(login.stdout, "Login Succeeded\n");
    assert!(
        login
            .stderr
            .contains(&format!("To log in, open {}/activate", idp.issuer())),
        "{}",
        login.stderr
    );
    assert!(login.stderr.contains("as mia"), "{}", login.stderr);
    let device_form = idp.last_form("/device");
    assert!(
        device_form.contains(&("scope".into(), "openid offline_access groups".into())),
        "{device_form:?}"
    );

    // The docker config sends docker to the helper and keeps everything else.
    assert_eq!(
        read_json(&machine.docker_config()),
        json!({
            "auths": {"other.example": {"auth": "eDp5"}},
            "credHelpers": {"gcr.io": "gcloud", REGISTRY: "scopegate"},
            "psFormat": "table",
        })
    );
    // Asked for without a file: containers' auth file in XDG_RUNTIME_DIR.
    assert_eq!(
        read_json(&machine.path("runtime/containers/auth.json")),
        json!({"credHelpers": {REGISTRY: "scopegate"}})
    );
    // The login is a private file in a private directory.
    assert_eq!(mode(&machine.login_file()), 0o600);
    assert_eq!(mode(&machine.sso_dir()), 0o700);

    for server_url in [
        REGISTRY,
        "https://registry.example.com:5000",
        "registry.example.com:5000/v2/\n",
    ] {
        let output = machine.helper(&["get"], server_url);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{server_url}: {}",
            shown(&output)
        );
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(answer["Username"], "oidc", "{answer}");
        assert_eq!(answer["ServerURL"], server_url.trim(), "{answer}");
        let claims = idp.verify(answer["Secret"].as_str().unwrap());
        assert_eq!(claims["sub"], "id-mia");
        assert_eq!(claims["preferred_username"], "mia");
        assert_eq!(claims["groups"], json!(["platform", "dev"]));
    }
    // The ID token was fresh: nothing was refreshed.
    assert!(
        !idp.token_grants()
            .iter()
            .any(|grant| grant == "refresh_token"),
        "{:?}",
        idp.token_grants()
    );
}

#[test]
fn a_login_directory_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let idp = Idp::start(CLIENT_ID);
    let machine = Machine::new();
    std::fs::create_dir_all(machine.sso_dir()).unwrap();
    std::fs::set_permissions(machine.sso_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (child, lines) = machine.start_login(&idp, &[]);
    let login = finish(child, lines, Vec::new());
    assert_eq!(login.code, Some(1), "{}", login.stderr);
    assert!(login.stderr.contains("has mode 755"), "{}", login.stderr);
    assert!(
        idp.last_form("/device").is_empty(),
        "refused before asking for a code"
    );
    assert!(!machine.docker_config().exists());
    assert_eq!(mode(&machine.sso_dir()), 0o755, "left alone");

    // A login made while it was private, then the directory opened to the group: the
    // helper refuses to read it.
    std::fs::set_permissions(machine.sso_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let login = machine.device_login(&idp, &mia(), &[]);
    assert_eq!(login.code, Some(0), "{}", login.stderr);
    std::fs::set_permissions(machine.sso_dir(), std::fs::Permissions::from_mode(0o750)).unwrap();
    let output = machine.helper(&["get"], REGISTRY);
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("has mode 750"), "{stdout}");
}

#[test]
fn a_browser_login_with_pkce_on_the_loopback_redirect() {
    let idp = Idp::start(CLIENT_ID);
    let machine = Machine::new();
    let ana = Person::new("ana").with_groups(&["qa"]);
    idp.set_browser_person(&ana);
    let auth_file = machine.path("containers/auth.json");
    std::fs::create_dir_all(auth_file.parent().unwrap()).unwrap();
    std::fs::write(&auth_file, r#"{"auths":{"quay.io":{"auth":"eDp5"}}}"#).unwrap();
    let (child, lines) = machine.start_login(
        &idp,
        &[
            "--browser",
            "--no-open",
            "--containers-auth",
            auth_file.to_str().unwrap(),
        ],
    );
    let mut seen = Vec::new();
    let url = loop {
        let line = lines
            .recv_timeout(PROMPT_WAIT)
            .unwrap_or_else(|_| panic!("no URL printed; stderr so far: {seen:#?}"));
        seen.push(line.clone());
        if line.starts_with(&format!("{}/authorize?", idp.issuer())) {
            break line;
        }
    };
    // The test is the browser: the provider redirects to the CLI's loopback listener.
    let target = url.strip_prefix(&format!("http://{}", idp.addr())).unwrap();
    let reply = http::request(idp.addr(), "GET", target, &[], Body::None).unwrap();
    assert_eq!(reply.status, 302, "{}", reply.text());
    let location = reply.header("location").unwrap().to_string();
    let loopback = location.strip_prefix("http://").unwrap();
    let (authority, path) = loopback.split_at(loopback.find('/').unwrap());
    assert!(path.starts_with("/callback?code="), "{location}");
    let reply = http::request(authority.parse().unwrap(), "GET", path, &[], Body::None).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());

    let login = finish(child, lines, seen);
    assert_eq!(login.code, Some(0), "{}", login.stderr);
    let claims = idp.verify(machine.get()["Secret"].as_str().unwrap());
    assert_eq!(claims["preferred_username"], "ana");
    assert!(
        idp.token_grants()
            .contains(&"authorization_code".to_string()),
        "{:?}",
        idp.token_grants()
    );
    assert_eq!(
        read_json(&auth_file),
        json!({"auths": {"quay.io": {"auth": "eDp5"}}, "credHelpers": {REGISTRY: "scopegate"}})
    );
    assert_eq!(
        read_json(&machine.docker_config())["credHelpers"][REGISTRY],
        "scopegate"
    );
}

#[test]
fn the_helper_refreshes_a_token_about_to_expire_and_shows_new_groups() {
    let idp = Idp::start(CLIENT_ID);
    let machine = Machine::new();
    // Every ID token expires within the helper's minute of margin.
    idp.set_id_token_lifetime(30);
    let login = machine.device_login(&idp, &mia(), &[]);
    assert_eq!(login.code, Some(0), "{}", login.stderr);
    let stored = read_json(&machine.login_file());

    let first = machine.get()["Secret"].as_str().unwrap().to_string();
    assert_ne!(
        first, stored["id_token"],
        "refreshed, not the login's own token"
    );
    assert_eq!(idp.verify(&first)["groups"], json!(["platform", "dev"]));
    let after_first = read_json(&machine.login_file());
    assert_ne!(
        after_first["refresh_token"], stored["refresh_token"],
        "the rotated refresh token is kept"
    );
    assert_eq!(mode(&machine.login_file()), 0o600);

    // Offboarded from `platform` at the provider: the next token no longer says so. This
    // refresh works only with the rotated refresh token (the provider refuses spent ones).
    idp.set_groups("id-mia", &["dev"]);
    let second = machine.get()["Secret"].as_str().unwrap().to_string();
    assert_eq!(idp.verify(&second)["groups"], json!(["dev"]));
    let refreshes = idp
        .token_grants()
        .iter()
        .filter(|grant| *grant == "refresh_token")
        .count();
    assert_eq!(refreshes, 2, "{:?}", idp.token_grants());
}

#[test]
fn a_revoked_refresh_token_makes_get_fail_with_the_way_back() {
    let idp = Idp::start(CLIENT_ID);
    let machine = Machine::new();
    idp.set_id_token_lifetime(30);
    let login = machine.device_login(&idp, &mia(), &[]);
    assert_eq!(login.code, Some(0), "{}", login.stderr);
    assert_eq!(idp.revoke_refresh_tokens("id-mia"), 1);

    let output = machine.helper(&["get"], REGISTRY);
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let again = format!(
        "run `scopegate auth login --registry {REGISTRY} --oidc {} --client-id {CLIENT_ID}` again",
        idp.issuer()
    );
    // docker's client shows the helper's stdout, trimmed, in its error: one line.
    assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
    assert!(stdout.contains(&again), "{stdout}");
    assert!(stdout.contains("invalid_grant"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains(&again));
    assert!(
        machine.login_file().exists(),
        "the login is kept until replaced or erased"
    );
}

#[test]
fn a_denied_device_login_stores_nothing() {
    let idp = Idp::start(CLIENT_ID);
    let machine = Machine::new();
    let (child, lines) = machine.start_login(&idp, &[]);
    let mut seen = Vec::new();
    let user_code = loop {
        let line = lines.recv_timeout(PROMPT_WAIT).unwrap();
        seen.push(line.clone());
        if let Some(code) = line.strip_prefix("and enter the code: ") {
            break code.to_string();
        }
    };
    idp.deny(&user_code);
    let login = finish(child, lines, seen);
    assert_eq!(login.code, Some(1), "{}", login.stderr);
    assert!(login.stderr.contains("denied"), "{}", login.stderr);
    assert!(!machine.docker_config().exists());
    assert!(!machine.login_file().exists());
}

#[test]
fn the_helper_answers_as_docker_expects() {
    let idp = Idp::start(CLIENT_ID);
    let machine = Machine::new();
    let not_found = "credentials not found in native keychain\n";
    let run = |args: &[&str], stdin: &str| -> (Option<i32>, String) {
        let output = machine.helper(args, stdin);
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
        )
    };
    // Before any login: nothing is found, nothing is listed.
    assert_eq!(run(&["get"], REGISTRY), (Some(1), not_found.to_string()));
    assert_eq!(run(&["list"], ""), (Some(0), "{}\n".to_string()));

    let login = machine.device_login(&idp, &mia(), &[]);
    assert_eq!(login.code, Some(0), "{}", login.stderr);
    assert_eq!(
        run(&["get"], "other.example"),
        (Some(1), not_found.to_string())
    );
    assert_eq!(
        run(&["list"], "unused"),
        (Some(0), format!("{{\"{REGISTRY}\":\"oidc\"}}\n"))
    );
    assert_eq!(
        run(&["get"], ""),
        (Some(1), "no credentials server URL\n".to_string())
    );
    let (code, out) = run(&["version"], "");
    assert_eq!(code, Some(0));
    assert!(out.starts_with("docker-credential-scopegate"), "{out}");
    for args in [&[][..], &["fetch"][..], &["get", "extra"][..]] {
        let (code, out) = run(args, REGISTRY);
        assert_eq!(code, Some(1), "{args:?}: {out}");
        assert!(!out.trim().is_empty(), "{args:?}");
    }
    // `docker login` with a password for this registry is refused, saying what to do.
    let (code, out) = run(
        &["store"],
        &json!({"ServerURL": REGISTRY, "Username": "mia", "Secret": "pw"}).to_string(),
    );
    assert_eq!(code, Some(1));
    assert!(out.contains("scopegate auth login --registry"), "{out}");
    assert!(machine.login_file().exists(), "store changes nothing");

    // `docker logout`: erase removes the login and revokes its refresh token.
    assert_eq!(idp.live_refresh_tokens("id-mia"), 1);
    assert_eq!(
        run(&["erase"], &format!("https://{REGISTRY}")),
        (Some(0), String::new())
    );
    assert!(!machine.login_file().exists());
    assert_eq!(
        idp.live_refresh_tokens("id-mia"),
        0,
        "revoked at the provider"
    );
    assert_eq!(run(&["get"], REGISTRY), (Some(1), not_found.to_string()));
    assert_eq!(run(&["erase"], REGISTRY), (Some(1), not_found.to_string()));
}

#[test]
fn gets_at_once_share_one_rotating_refresh_token() {
    let idp = Idp::start(CLIENT_ID);
    let machine = Machine::new();
    idp.set_id_token_lifetime(30);
    let login = machine.device_login(&idp, &mia(), &[]);
    assert_eq!(login.code, Some(0), "{}", login.stderr);
    // Each `get` must refresh; the provider refuses a refresh token spent once, so these
    // succeed together only if each waits for the one before and uses its rotated token.
    let outputs: Vec<_> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| machine.helper(&["get"], REGISTRY)))
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", shown(output));
    }
    let refreshes = idp
        .token_grants()
        .iter()
        .filter(|grant| *grant == "refresh_token")
        .count();
    assert_eq!(refreshes, 4, "{:?}", idp.token_grants());
}

#[test]
fn an_issuer_over_plain_http_is_refused() {
    let machine = Machine::new();
    let output = machine
        .command(env!("CARGO_BIN_EXE_scopegate"))
        .args(["auth", "login", "--registry", REGISTRY])
        .args(["--oidc", "http://login.example.com/realms/corp"])
        .args(["--client-id", CLIENT_ID])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must use https://"), "{stderr}");
    assert!(!machine.docker_config().exists());
}

/// The docker CLI (28.2) asks the helper before it talks to the daemon, so no daemon is
/// needed to see what a person sees when their login has ended: docker goes on without
/// credentials, and the helper's stderr, which docker passes through, says what to run.
#[test]
fn docker_shows_the_person_the_way_back() {
    let docker = require_program("docker", "docker.io");
    let idp = Idp::start(CLIENT_ID);
    let machine = Machine::new();
    idp.set_id_token_lifetime(30);
    let login = machine.device_login(&idp, &mia(), &[]);
    assert_eq!(login.code, Some(0), "{}", login.stderr);
    idp.revoke_refresh_tokens("id-mia");
    let output = machine
        .command(docker.to_str().unwrap())
        .args(["pull", &format!("{REGISTRY}/mia/app:1")])
        .env(
            "DOCKER_HOST",
            format!("unix://{}", machine.path("no-daemon.sock").display()),
        )
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0), "{}", shown(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let again = format!(
        "run `scopegate auth login --registry {REGISTRY} --oidc {} --client-id {CLIENT_ID}` again",
        idp.issuer()
    );
    assert!(stderr.contains(&again), "{stderr}");
}
