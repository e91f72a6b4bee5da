//! Runs the built `scopegate` binary: exit codes and output of `policy check|test|explain`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn scopegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .output()
        .expect("the scopegate binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of the shipped policies (and tests) in a temporary directory.
fn copy_of_shipped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shipped(), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn check_accepts_the_shipped_policies() {
    let dir = shipped();
    let out = scopegate(&["policy", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(": ok (7 files, 16 rules, 4 groups, 3 issuers)"),
        "{}",
        text(&out.stdout)
    );
}

/// An unknown field does not hide the other problems of its file or of other files.
#[test]
fn check_reports_an_unknown_field_with_every_other_problem() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("a.toml"),
        "[[allow]]\nwho = [\"group:nobody\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\nwhom = []\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("b.toml"),
        "[[allow]]\nwho = [\"anyone\"]\nwhat = [\"repository:y\"]\nactions = [\"fly\"]\n",
    )
    .unwrap();
    let out = scopegate(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for want in [
        "a.toml:2: group \"nobody\" is not defined",
        "a.toml:5: unknown field `whom`",
        "b.toml:4: unknown action \"fly\"",
    ] {
        assert!(shown.contains(want), "{want:?} in:\n{shown}");
    }
}

#[test]
fn check_rejects_a_broken_copy_with_file_and_line() {
    let dir = copy_of_shipped();
    let teams = dir.path().join("teams.toml");
    let broken = fs::read_to_string(&teams)
        .unwrap()
        .replace("who     = [\"group:team\"]", "who     = [\"group:teem\"]");
    fs::write(&teams, broken).unwrap();
    fs::write(dir.path().join("extra.toml"), "[[allow]]\nwho = [\"anyone\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\nexpires = 1\n").unwrap();

    let out = scopegate(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("extra.toml:5: unknown field `expires`"),
        "{stderr}"
    );
    // A syntax/shape error in one file stops validation; fix it and the next problem shows.
    fs::remove_file(dir.path().join("extra.toml")).unwrap();
    let out = scopegate(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("teams.toml:24: group \"teem\" is not defined"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid policy (1 problem)"), "{stderr}");

    let out = scopegate(&["policy", "test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn test_passes_on_the_shipped_policies() {
    let dir = shipped();
    let out = scopegate(&["policy", "test", dir.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.ends_with(" passed, 0 failed")),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn test_fails_when_the_policy_changes_under_its_tests() {
    let dir = copy_of_shipped();
    // Dropping the deploy-token deny must be caught by machines.toml's cases.
    fs::write(dir.path().join("machines.toml"), "# emptied\n").unwrap();
    let out = scopegate(&["policy", "test", dir.path().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  "), "{stdout}");
    assert!(
        stdout.contains("a deploy token never deletes, even where its owner may"),
        "{stdout}"
    );
    assert!(stdout.contains("expected repository:team/app:pull,push, got repository:team/app:* repository:tess/app:delete"), "{stdout}");
    assert!(!stdout.contains(" 0 failed"), "{stdout}");
}

#[test]
fn test_without_cases_fails() {
    let dir = copy_of_shipped();
    fs::remove_dir_all(dir.path().join("tests")).unwrap();
    let out = scopegate(&["policy", "test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn explain_shows_grant_and_rules() {
    let dir = shipped();
    let out = scopegate(&[
        "policy",
        "explain",
        "--dir",
        dir.to_str().unwrap(),
        "--account",
        "alice",
        "--group",
        "platform",
        "--kind",
        "deploy",
        "--scope",
        "repository:platform/api:push,delete",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("caller: alice (deploy), groups: platform"),
        "{stdout}"
    );
    assert!(
        stdout.contains("repository:platform/api:push,delete  ->  push"),
        "{stdout}"
    );
    assert!(
        stdout.contains("delete  denied          denied by machines.toml:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("token grants: repository:platform/api:push\n"),
        "{stdout}"
    );

    let out = scopegate(&[
        "policy",
        "explain",
        "--dir",
        dir.to_str().unwrap(),
        "--json",
        "--scope",
        "repository:public/app:pull,push",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["grant"]["access"],
        serde_json::json!([{"type": "repository", "name": "public/app", "actions": ["pull"]}])
    );
    assert_eq!(json["scopes"][0]["actions"][1]["outcome"], "not_allowed");
}

#[test]
fn explain_takes_a_workload_with_claims() {
    let dir = shipped();
    let explain = |owner: &str| {
        let out = scopegate(&[
            "policy",
            "explain",
            "--dir",
            dir.to_str().unwrap(),
            "--issuer",
            "github",
            "--claim",
            "sub=repo:your_org/app:ref:refs/heads/main",
            "--claim",
            "repository=your_org/app",
            "--claim",
            &format!("repository_owner={owner}"),
            "--claim",
            "ref=refs/heads/main",
            "--scope",
            "repository:your_org/app/web:push,delete",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let stdout = explain("your_org");
    assert!(
        stdout.starts_with(
            "caller: github:repo:your_org/app:ref:refs/heads/main (oidc), issuer github\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("repository:{claim:repository}/**  pull,push  when ref = \"refs/heads/main\", repository_owner = \"your_org\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("token grants: repository:your_org/app/web:push\n"),
        "{stdout}"
    );
    let stdout = explain("mallory");
    assert!(stdout.contains("token grants: nothing\n"), "{stdout}");
}

#[test]
fn explain_takes_a_repeated_claim_as_a_list() {
    let dir = shipped();
    let explain = |groups: &[&str]| {
        let mut args = vec![
            "policy".to_owned(),
            "explain".into(),
            "--dir".into(),
            dir.to_str().unwrap().into(),
            "--issuer".into(),
            "corp".into(),
            "--claim".into(),
            "sub=f3b1".into(),
            "--claim".into(),
            "preferred_username=jane".into(),
        ];
        for group in groups {
            args.extend(["--claim".into(), format!("groups={group}")]);
        }
        args.extend(["--scope".into(), "repository:platform/base:push".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = scopegate(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    // platform is not the last value given: only a list keeps it.
    let stdout = explain(&["platform", "dev"]);
    assert!(
        stdout.contains("token grants: repository:platform/base:push\n"),
        "{stdout}"
    );
    assert!(stdout.contains("when groups = \"platform\""), "{stdout}");
    let stdout = explain(&["dev", "ops"]);
    assert!(stdout.contains("token grants: nothing\n"), "{stdout}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = shipped();
    let dir = dir.to_str().unwrap();
    for args in [
        &["policy", "explain", "--dir", dir][..],
        &[
            "policy",
            "explain",
            "--dir",
            dir,
            "--scope",
            "repository:App:pull",
        ],
        &[
            "policy",
            "explain",
            "--dir",
            dir,
            "--kind",
            "deploy",
            "--scope",
            "repository:a:pull",
        ],
        &[
            "policy",
            "explain",
            "--dir",
            dir,
            "--account",
            "a",
            "--kind",
            "robot",
            "--scope",
            "repository:a:pull",
        ],
        &[
            "policy",
            "explain",
            "--dir",
            dir,
            "--limit",
            "repository:a:fly",
            "--scope",
            "repository:a:pull",
        ],
        &[
            "policy",
            "explain",
            "--dir",
            dir,
            "--claim",
            "ref=main",
            "--scope",
            "repository:a:pull",
        ],
        &[
            "policy",
            "explain",
            "--dir",
            dir,
            "--issuer",
            "github",
            "--account",
            "a",
            "--scope",
            "repository:a:pull",
        ],
        &[
            "policy",
            "explain",
            "--dir",
            dir,
            "--issuer",
            "github",
            "--claim",
            "ref",
            "--scope",
            "repository:a:pull",
        ],
        &["policy", "frobnicate"],
    ] {
        let out = scopegate(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
