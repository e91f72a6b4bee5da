//! The policy tests that prove a translation: for every caller of the file (each user,
//! and the anonymous caller) and every repository name the ACL names for it, plus
//! neighbours (one segment deeper, the parent, a name just outside a prefix, its own
//! and the adjacent users' namespaces and names, unrelated names), the decision
//! docker_auth's semantics give (`acl`), written as `[[case]]` tables for
//! `scopegate policy test`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use scopegate_policy::parse_scopes;

use super::acl::{self, field_alternatives, regex_body, Acl, Request};
use super::config::Config;
use super::pattern::{NamePattern, Segment};
use super::translate::{callers, ACTIONS};

/// Names nothing in a typical ACL is about.
const UNRELATED: [&str; 2] = ["library/unrelated", "unrelated"];

/// The test file's text. `service` is what `service` conditions are decided against.
pub fn generate(config: &Config, service: Option<&str>) -> Result<String, Vec<String>> {
    let acl = Acl::new(&config.acl)?;
    let service = service.unwrap_or_default();
    let is_anonymous_allowed = config.users.iter().any(|user| user.name.is_empty());
    let no_labels = Default::default();
    let mut out = String::from(
        "# docker_auth's decisions for the callers and names of its configuration, written by\n\
         # `scopegate import docker-auth`; `scopegate policy test` checks the translation on them.\n",
    );
    // Every caller of the file (the anonymous one with the labels of `""`), and the
    // anonymous caller docker_auth refuses when `""` is no user.
    let mut who: Vec<(&str, &BTreeMap<String, Vec<String>>)> = callers(config)
        .into_iter()
        .map(|caller| (caller.account, caller.labels))
        .collect();
    if !is_anonymous_allowed {
        who.push(("", &no_labels));
    }
    let names = names_by_caller(config, &who, service);
    for ((account, labels), names) in who.into_iter().zip(names) {
        let groups: BTreeSet<&String> = if account.is_empty() {
            BTreeSet::new()
        } else {
            labels.values().flatten().collect()
        };
        let caller = if account.is_empty() {
            "anonymous".to_string()
        } else {
            account.to_string()
        };
        for name in &names {
            let request = Request {
                account,
                labels,
                resource_type: "repository",
                name,
                service,
                actions: &ACTIONS,
            };
            let decision = acl.authorize(&request);
            let granted = if account.is_empty() && !is_anonymous_allowed {
                Vec::new()
            } else {
                decision.actions.clone()
            };
            let expect = if granted.is_empty() {
                "[]".to_string()
            } else {
                quoted(&format!("repository:{name}:{}", granted.join(",")))
            };
            let why = match decision.entry {
                _ if account.is_empty() && !is_anonymous_allowed => {
                    "docker_auth refuses anonymous requests (no \"\" user)".to_string()
                }
                Some(entry) => format!("entry {entry} decides"),
                None => "no entry matches".to_string(),
            };
            write_case(
                &mut out,
                &format!("{caller}: repository:{name} ({why})"),
                account,
                &groups,
                &format!("repository:{name}:{}", ACTIONS.join(",")),
                &expect,
            );
        }
        let catalog = acl.authorize(&Request {
            account,
            labels,
            resource_type: "registry",
            name: "catalog",
            service,
            actions: &["*"],
        });
        let is_granted =
            !catalog.actions.is_empty() && (is_anonymous_allowed || !account.is_empty());
        write_case(
            &mut out,
            &format!("{caller}: registry:catalog"),
            account,
            &groups,
            "registry:catalog:*",
            &if is_granted {
                quoted("registry:catalog:*")
            } else {
                "[]".into()
            },
        );
    }
    Ok(out)
}

fn write_case(
    out: &mut String,
    name: &str,
    account: &str,
    groups: &BTreeSet<&String>,
    scope: &str,
    expect: &str,
) {
    let _ = write!(out, "\n[[case]]\nname    = {}\n", quoted(name));
    if !account.is_empty() {
        let _ = writeln!(out, "account = {}", quoted(account));
        if !groups.is_empty() {
            let groups: Vec<String> = groups.iter().map(|g| quoted(g)).collect();
            let _ = writeln!(out, "groups  = [{}]", groups.join(", "));
        }
    }
    let _ = write!(out, "scope   = {}\nexpect  = {expect}\n", quoted(scope));
}

fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// The names worth asking about for each caller of `callers` (in that order): the
/// names its own view of the ACL mentions, and those of the callers before and after
/// it (another user's namespace), so the file grows with users times entries, not
/// with their square; the anonymous caller gets everyone's. Valid and sorted.
fn names_by_caller(
    config: &Config,
    callers: &[(&str, &BTreeMap<String, Vec<String>>)],
    service: &str,
) -> Vec<BTreeSet<String>> {
    let own: Vec<BTreeSet<String>> = callers
        .iter()
        .map(|(account, labels)| mentioned(config, account, labels, service))
        .collect();
    let count = own.len();
    (0..count)
        .map(|i| {
            let mut names: BTreeSet<String> = UNRELATED.iter().map(|n| n.to_string()).collect();
            // The anonymous caller (one, not one per user) asks about every user's.
            let all: Vec<usize> = if callers[i].0.is_empty() {
                (0..count).collect()
            } else {
                vec![(i + count - 1) % count, i, (i + 1) % count]
            };
            for j in all {
                names.extend(own[j].iter().cloned());
            }
            names
                .into_iter()
                .filter(|name| is_valid_name(name))
                .collect()
        })
        .collect()
}

/// The names one caller's view of the ACL mentions, with neighbours, and the
/// caller's own namespace.
fn mentioned(
    config: &Config,
    account: &str,
    labels: &BTreeMap<String, Vec<String>>,
    service: &str,
) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    if !account.is_empty() {
        for suffix in ["", "/app", "/app/deep"] {
            found.insert(format!("{account}{suffix}"));
        }
    }
    let vars: Vec<(String, String)> = [
        ("${account}", account),
        ("${type}", "repository"),
        ("${service}", service),
    ]
    .into_iter()
    .map(|(p, v)| (p.to_string(), acl::quote_meta(v)))
    .collect();
    for entry in &config.acl {
        let Some(name) = &entry.conditions.name else {
            continue;
        };
        for alternative in field_alternatives(name, &vars, labels) {
            let patterns = match regex_body(&alternative) {
                Some(body) => NamePattern::from_regex(body).unwrap_or_default(),
                None => NamePattern::from_glob(&alternative)
                    .ok()
                    .flatten()
                    .into_iter()
                    .collect(),
            };
            for pattern in patterns {
                found.extend(samples(&pattern));
            }
        }
    }
    found
}

/// A name the pattern matches and its neighbours.
fn samples(pattern: &NamePattern) -> Vec<String> {
    let parts: Vec<String> = pattern
        .segments()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Literal(text) => Some(text.clone()),
            Segment::Glob(glob) => Some(glob.replace('*', "x")),
            Segment::Star => Some("x".into()),
            Segment::Any => None,
            Segment::Account => Some("account".into()),
        })
        .collect();
    if parts.is_empty() {
        return vec!["x".into(), "x/y".into(), "x/y/z".into()];
    }
    let base = parts.join("/");
    let mut samples = vec![
        base.clone(),
        format!("{base}/deep"),
        format!("{base}/a/b"),
        format!("x{base}"),
    ];
    if parts.len() > 1 {
        samples.push(parts[..parts.len() - 1].join("/"));
        samples.push(format!("x{}", parts[1..].join("/")));
    }
    // The glob's prefix alone, as a name where it is one (`test-*` gives `test`).
    if let Some(Segment::Glob(glob)) = pattern.segments().first() {
        let prefix = glob.split('*').next().unwrap_or_default();
        samples.push(prefix.trim_end_matches(['-', '_', '.']).to_string());
    }
    samples
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && parse_scopes([format!("repository:{name}:pull").as_str()]).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::super::config;
    use super::*;

    #[test]
    fn the_anonymous_caller_is_judged_with_the_labels_of_its_entry() {
        let yaml = "users:\n  \"\": {labels: {team: [guests]}}\nacl:\n  - match: {labels: {team: guests}, name: \"${labels:team}/*\"}\n    actions: [pull]\n";
        let text = generate(&config::parse(yaml).unwrap(), None).unwrap();
        assert!(text.contains(
            "name    = \"anonymous: repository:guests/x (entry 1 decides)\"\nscope   = \"repository:guests/x:pull,push,delete\"\nexpect  = \"repository:guests/x:pull\""
        ), "{text}");
        assert_eq!(
            text.matches("anonymous: registry:catalog").count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn cases_cover_names_neighbours_and_every_caller() {
        let yaml = "users:
  test: {password: x}
  bob: {password: x}
acl:
  - match: {account: test, name: \"test-*\"}
    actions: [\"*\"]
  - match: {account: test}
    actions: []
  - match: {account: \"/.+/\"}
    actions: [pull]
";
        let text = generate(&config::parse(yaml).unwrap(), None).unwrap();
        let cases = scopegate_policy::PolicyTests::from_toml("generated.toml", &text).unwrap();
        let names: Vec<&str> = cases.cases().iter().map(|c| c.name.as_str()).collect();
        for expected in [
            "test: repository:test-x (entry 1 decides)",
            "test: repository:test-x/deep (entry 2 decides)",
            "test: repository:xtest-x (entry 2 decides)",
            "test: repository:test (entry 2 decides)",
            "bob: repository:test-x (entry 3 decides)",
            "bob: repository:bob/app (entry 3 decides)",
            "anonymous: repository:test-x (docker_auth refuses anonymous requests (no \"\" user))",
            "test: registry:catalog",
        ] {
            assert!(names.contains(&expected), "{expected} not in {names:#?}");
        }
        assert!(text.contains(
            "name    = \"test: repository:test-x (entry 1 decides)\"\naccount = \"test\"\nscope   = \"repository:test-x:pull,push,delete\"\nexpect  = \"repository:test-x:pull,push,delete\""
        ), "{text}");
        assert!(text.contains(
            "name    = \"bob: repository:test-x (entry 3 decides)\"\naccount = \"bob\"\nscope   = \"repository:test-x:pull,push,delete\"\nexpect  = \"repository:test-x:pull\""
        ), "{text}");
    }
}
