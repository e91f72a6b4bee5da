//! The shipped `policies/` pass their own `policies/tests`, and a broken expectation fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use scopegate_policy::{Policy, PolicyTests};

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

#[test]
fn shipped_policies_pass_their_tests() {
    let dir = policies_dir();
    let policy = Policy::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let tests = PolicyTests::load_dir(&dir.join("tests")).unwrap_or_else(|e| panic!("{e}"));
    let report = tests.run(&policy);
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|r| !r.is_passed())
        .map(ToString::to_string)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(report.passed() >= 30, "only {} cases", report.passed());
}

#[test]
fn every_policy_file_has_a_test_file() {
    let dir = policies_dir();
    let policy = Policy::load_dir(&dir).unwrap();
    for file in policy.files() {
        assert!(
            dir.join("tests").join(file).is_file(),
            "policies/tests/{file} is missing"
        );
    }
}

#[test]
fn shipped_policies_survive_the_compiled_form() {
    let dir = policies_dir();
    let policy = Policy::load_dir(&dir).unwrap();
    let compiled = policy.to_compiled();
    let decoded = Policy::from_compiled(&compiled).unwrap();
    let tests = PolicyTests::load_dir(&dir.join("tests")).unwrap();
    assert!(tests.run(&decoded).is_success());
    assert!(
        compiled.len() < 4096,
        "compiled form is {} bytes",
        compiled.len()
    );
}

#[test]
fn a_wrong_expectation_fails_with_the_explanation() {
    let policy = Policy::load_dir(&policies_dir()).unwrap();
    let tests = PolicyTests::from_toml(
        "wrong.toml",
        "[[case]]\nname = \"anonymous push\"\nscope = \"repository:public/app:push\"\nexpect = \"repository:public/app:push\"\n",
    )
    .unwrap();
    let report = tests.run(&policy);
    assert_eq!((report.passed(), report.failed()), (0, 1));
    let text = report.results[0].to_string();
    assert!(
        text.starts_with("FAIL  wrong.toml:1  anonymous push"),
        "{text}"
    );
    assert!(
        text.contains("expected repository:public/app:push, got nothing"),
        "{text}"
    );
    assert!(text.contains("push    not allowed"), "{text}");
}

#[test]
fn a_case_naming_an_undeclared_issuer_fails() {
    let policy = Policy::load_dir(&policies_dir()).unwrap();
    let tests = PolicyTests::from_toml(
        "typo.toml",
        "[[case]]\nissuer = \"githbu\"\nid_token = { ref = \"main\" }\nscope = \"repository:a:pull\"\nexpect = []\n",
    )
    .unwrap();
    let report = tests.run(&policy);
    assert_eq!(report.failed(), 1);
    assert!(
        report.results[0]
            .to_string()
            .contains("issuer \"githbu\" is not declared in the policy"),
        "{}",
        report.results[0]
    );
}

#[test]
fn test_files_are_validated_with_lines() {
    let cases: &[(&str, &str)] = &[
        ("[[case]]\nscope = \"repository:a:pull\"\nexpect = []\nwho = \"x\"\n", "t.toml:4: unknown field `who`"),
        ("[[case]]\nkind = \"deploy\"\nscope = \"repository:a:pull\"\nexpect = []\n", "t.toml:2: `kind` needs an `account`"),
        ("[[case]]\naccount = \"a\"\nkind = \"robot\"\nscope = \"repository:a:pull\"\nexpect = []\n", "t.toml:3: unknown credential kind"),
        ("[[case]]\nscope = \"repository:A:pull\"\nexpect = []\n", "t.toml:2: invalid scope \"repository:A:pull\""),
        ("[[case]]\nscope = \"repository:a:pull\"\nexpect = \"repository:a:\"\n", "t.toml:3: `expect`: invalid scope"),
        ("[[case]]\nscope = \"repository:a:pull\"\nlimits = [\"repository:a\"]\nexpect = []\n", "t.toml:3: invalid scope limit"),
        ("[[case]]\nscope = \"repository:a:pull\"\n", "t.toml:1: missing field `expect`"),
        ("case = []\n", "t.toml: no [[case]] in this file"),
        ("[[case]]\nid_token = { ref = \"main\" }\nscope = \"repository:a:pull\"\nexpect = []\n", "t.toml:1: `id_token` needs an `issuer`"),
        ("[[case]]\nissuer = \"github\"\naccount = \"a\"\nscope = \"repository:a:pull\"\nexpect = []\n", "t.toml:2: a workload case (`issuer`) has no `account`"),
    ];
    for (text, expected) in cases {
        let error = PolicyTests::from_toml("t.toml", text)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(expected),
            "{text:?}\nwanted {expected:?}\ngot {error:?}"
        );
    }
}

/// The shipped policies are a starting point that anyone may deploy: they must not hand
/// rights to whoever happens to be called `alice` or `root`. Every static group is empty
/// (members come from the user store) and no rule names a user.
#[test]
fn shipped_policies_grant_nothing_to_named_accounts() {
    let dir = policies_dir();
    let policy = Policy::load_dir(&dir).unwrap();
    for file in policy.files() {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let table: toml::Table = text.parse().unwrap();
        if let Some(groups) = table.get("groups").and_then(|groups| groups.as_table()) {
            for (group, members) in groups {
                assert_eq!(
                    members.as_array().map(Vec::len),
                    Some(0),
                    "policies/{file}: group {group} has static members {members}"
                );
            }
        }
        for kind in ["allow", "deny"] {
            for rule in table
                .get(kind)
                .and_then(|rules| rules.as_array())
                .into_iter()
                .flatten()
            {
                let who = rule["who"].as_array().unwrap();
                assert!(
                    who.iter()
                        .all(|subject| !subject.as_str().unwrap().starts_with("user:")),
                    "policies/{file}: a rule names a user: {who:?}"
                );
            }
        }
    }
}
