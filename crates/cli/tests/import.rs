//! Moving users from an htpasswd file: `scopegate import htpasswd` against
//! the built component under real Spin, then skopeo pushing through
//! distribution 2.8 with the users' old passwords, which scopegate replaces
//! by argon2id at their first login.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod skopeo;

use scopegate_harness::{Registry, Scratch, Spin, SpinOptions};
use skopeo::push;
use std::collections::BTreeMap;
use std::process::{Command, Output};

const ADMIN_SECRET: &str = "import-admin-secret";
const SERVICE: &str = "registry.test";
const ISSUER: &str = "import-test";
const CERT: &str = include_str!("../../../dev/signing-cert.pem");

/// Made with Apache's `htpasswd -nbB` (cost 5) and `htpasswd -nbB -C 10`.
const HTPASSWD: &str = "\
# moved from distribution's htpasswd auth
frank:$2y$05$udrIOEoLnR9V7FDtMIUSH.lNdEmWEOJ35qaSdCfch8MS07Uj5T0Va
gitlab:$2y$10$0XbauzL.PhPrQg4u657aQOcs9hthQ1ZcDLayhN.OjCWIX4w4ohffS
";

fn start() -> Spin {
    let variables: BTreeMap<String, String> = [
        ("signing_key", include_str!("../../../dev/signing-key.pem")),
        ("signing_cert", CERT),
        ("services", SERVICE),
        ("issuer", ISSUER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([(
        "admin_token_sha256".to_string(),
        scopegate::secret::digest_hex(ADMIN_SECRET),
    )])
    .collect();
    Spin::start(SpinOptions {
        variables,
        ..SpinOptions::default()
    })
}

fn scopegate(host: &Spin, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .env("SCOPEGATE_URL", host.url(""))
        .env("SCOPEGATE_ADMIN_SECRET", ADMIN_SECRET)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stored_hash(host: &Spin, name: &str) -> Option<String> {
    let record: serde_json::Value =
        serde_json::from_slice(&host.kv_get(&format!("user/{name}"))?).unwrap();
    Some(record["password"].as_str().unwrap().to_string())
}

#[test]
fn htpasswd_users_push_with_their_old_passwords_and_are_rehashed() {
    let host = start();
    let scratch = Scratch::new("import");
    let file = scratch.file("htpasswd", HTPASSWD.as_bytes());
    let file = file.to_str().unwrap();

    let output = scopegate(&host, &["import", "htpasswd", file, "--group", "team"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("created 2, updated 0, left alone 0"),
        "{}",
        text(&output)
    );
    assert!(stored_hash(&host, "frank").unwrap().starts_with("$2y$05$"));

    let registry = Registry::for_token_server(&scratch, &host, SERVICE, ISSUER, CERT);
    let refused = push(&scratch, &registry, "team/app:old", "frank:wrong-password");
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(stored_hash(&host, "frank").unwrap().starts_with("$2y$05$"));

    for (name, password) in [("frank", "frank-password"), ("gitlab", "gitlab-password")] {
        let pushed = push(
            &scratch,
            &registry,
            &format!("team/{name}:v1"),
            &format!("{name}:{password}"),
        );
        assert!(pushed.status.success(), "{name}: {}", text(&pushed));
        let rehashed = stored_hash(&host, name).unwrap();
        assert!(rehashed.starts_with("$argon2id$"), "{name}: {rehashed}");
        // And once more, now against the argon2id record.
        let again = push(
            &scratch,
            &registry,
            &format!("team/{name}:v2"),
            &format!("{name}:{password}"),
        );
        assert!(again.status.success(), "{name}: {}", text(&again));
    }

    // A second import leaves the (now rehashed) users alone...
    let output = scopegate(&host, &["import", "htpasswd", file]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("created 0, updated 0, left alone 2"),
        "{}",
        text(&output)
    );
    assert!(stored_hash(&host, "frank")
        .unwrap()
        .starts_with("$argon2id$"));
    // ...unless told to replace their passwords.
    let output = scopegate(&host, &["import", "htpasswd", file, "--update"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(stored_hash(&host, "frank").unwrap().starts_with("$2y$05$"));
}

#[test]
fn a_file_with_any_unimportable_line_imports_nothing() {
    let host = start();
    let scratch = Scratch::new("import-bad");
    let bad = format!("{HTPASSWD}md5:$apr1$Yp6i0Kk5$Yl0mZ3d6/0yC0lZp9y5eI/\n");
    let file = scratch.file("htpasswd", bad.as_bytes());
    let output = scopegate(&host, &["import", "htpasswd", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing imported"), "{stderr}");
    assert!(
        stderr.contains("line 4 (md5): an Apache MD5 hash"),
        "{stderr}"
    );
    assert_eq!(stored_hash(&host, "frank"), None);

    // One user by hand, with the hash from the file.
    let hash = HTPASSWD.lines().nth(1).unwrap().split_once(':').unwrap().1;
    let output = scopegate(&host, &["user", "add", "frank", "--password-hash", hash]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(stored_hash(&host, "frank").as_deref(), Some(hash));
}
