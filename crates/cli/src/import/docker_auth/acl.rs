//! docker_auth's ACL semantics, evaluated on one request: the decision the generated
//! policy tests expect, kept apart from the translator they check.
//!
//! - Entries are tried in order; the FIRST whose every condition matches decides; no
//!   match grants nothing.
//! - `actions: ["*"]` (exactly that) grants every requested action; otherwise the grant
//!   is the requested actions that the entry lists (`[]` grants nothing).
//! - A condition is an exact string, a shell pattern (see `glob`), or `/regex/`
//!   (RE2 syntax, unanchored: `/dev/` matches any text containing `dev`).
//! - `${account}`, `${type}`, `${name}` and `${service}` are replaced in a condition by
//!   the request's values, regex-quoted; `${labels:KEY}` by each of the caller's values
//!   of KEY in turn (as written, not quoted), after the condition failed without them.
//!   `labels:` conditions see the first four, not `${labels:KEY}`.
//! - An `ip` condition never matches here: requests carry no address.
//!
//! Capture references (`${account:1}`) are not evaluated: [`Acl::new`] refuses them.

use std::collections::BTreeMap;

use regex::Regex;

use super::config::{Conditions, Entry};
use super::glob;

/// One request for one resource.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `""` for an anonymous caller.
    pub account: &'a str,
    pub labels: &'a BTreeMap<String, Vec<String>>,
    pub resource_type: &'a str,
    pub name: &'a str,
    pub service: &'a str,
    pub actions: &'a [&'a str],
}

/// What the ACL decides for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The number of the entry that decided, or `None` when none matched.
    pub entry: Option<usize>,
    /// The granted actions, in the order requested.
    pub actions: Vec<String>,
}

/// A checked ACL.
#[derive(Debug, Clone)]
pub struct Acl<'a> {
    entries: &'a [Entry],
}

impl<'a> Acl<'a> {
    /// Checks every entry's patterns: an invalid `/regex/` or a capture reference is an
    /// error naming the entry (docker_auth itself refuses the first at start).
    pub fn new(entries: &'a [Entry]) -> Result<Acl<'a>, Vec<String>> {
        let mut problems = Vec::new();
        for entry in entries {
            for value in condition_values(&entry.conditions) {
                if has_capture_reference(value) {
                    problems.push(format!(
                        "{}: {value:?} refers to a regex capture group (`${{FIELD:N}}`), which \
                         the importer does not evaluate",
                        entry.describe()
                    ));
                } else if let Some(regex) = regex_body(value) {
                    // Go reads `${account}` as literals (a `{` that starts no repetition
                    // is one); this regex syntax does not, so check it with the
                    // placeholders filled.
                    if let Err(error) = Regex::new(&fill_placeholders(regex)) {
                        problems.push(format!(
                            "{}: invalid regex {value:?}: {error}",
                            entry.describe()
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(Acl { entries })
        } else {
            Err(problems)
        }
    }

    /// The decision for `request`.
    pub fn authorize(&self, request: &Request<'_>) -> Decision {
        for entry in self.entries {
            if entry_matches(&entry.conditions, request) {
                let actions = if entry.actions == ["*"] {
                    request.actions.iter().map(|a| a.to_string()).collect()
                } else {
                    request
                        .actions
                        .iter()
                        .filter(|a| entry.actions.iter().any(|listed| listed == *a))
                        .map(|a| a.to_string())
                        .collect()
                };
                return Decision {
                    entry: Some(entry.number),
                    actions,
                };
            }
        }
        Decision {
            entry: None,
            actions: Vec::new(),
        }
    }
}

/// Every pattern of a `match:`, labels included.
pub fn condition_values(conditions: &Conditions) -> impl Iterator<Item = &str> {
    [
        &conditions.account,
        &conditions.resource_type,
        &conditions.name,
        &conditions.service,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .chain(conditions.labels.values().map(String::as_str))
}

/// The regex between the slashes of a `/regex/` value, or `None` for a shell pattern.
pub fn regex_body(value: &str) -> Option<&str> {
    (value.len() > 2 && value.starts_with('/') && value.ends_with('/'))
        .then(|| &value[1..value.len() - 1])
}

/// `text` with every `${...}` replaced by `x`.
fn fill_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push('x');
                rest = &rest[start + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `value` holds `${FIELD:N}` (a capture group of another condition's regex).
pub fn has_capture_reference(value: &str) -> bool {
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return false;
        };
        if let Some((field, index)) = after[..end].split_once(':') {
            if field != "labels" && !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) {
                return true;
            }
        }
        rest = &after[end..];
    }
    false
}

/// Go's `regexp.QuoteMeta`: a backslash before each of `\.+*?()|[]{}^$`.
pub fn quote_meta(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted
}

/// Replaces each `(placeholder, value)` in `pattern`, left to right, never inside a
/// replacement; at one position the earlier pair wins (Go's `strings.NewReplacer`).
pub fn substitute(pattern: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    'scan: while !rest.is_empty() {
        for (placeholder, value) in vars {
            if !placeholder.is_empty() && rest.starts_with(placeholder.as_str()) {
                out.push_str(value);
                rest = &rest[placeholder.len()..];
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// Whether one (already substituted) pattern matches `text`.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    match regex_body(pattern) {
        Some(body) => Regex::new(body).is_ok_and(|regex| regex.is_match(text)),
        None => glob::matches(pattern, text),
    }
}

/// The request's own values as placeholders, regex-quoted.
pub fn request_vars(request: &Request<'_>) -> Vec<(String, String)> {
    [
        ("${account}", request.account),
        ("${type}", request.resource_type),
        ("${name}", request.name),
        ("${service}", request.service),
    ]
    .into_iter()
    .map(|(placeholder, value)| (placeholder.to_string(), quote_meta(value)))
    .collect()
}

/// Every substitution of `${labels:KEY}` placeholders that `pattern` holds by the
/// caller's values: the cartesian product over the keys named (in key order), each a
/// list of `(placeholder, value)` pairs. Empty when the pattern names no key the caller
/// has.
pub fn label_permutations(
    pattern: &str,
    labels: &BTreeMap<String, Vec<String>>,
) -> Vec<Vec<(String, String)>> {
    let mut sets: Vec<Vec<(String, String)>> = Vec::new();
    for (key, values) in labels {
        let placeholder = format!("${{labels:{key}}}");
        if pattern.contains(&placeholder) && !values.is_empty() {
            sets.push(
                values
                    .iter()
                    .map(|value| (placeholder.clone(), value.clone()))
                    .collect(),
            );
        }
    }
    if sets.is_empty() {
        return Vec::new();
    }
    let mut product: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for set in sets {
        product = product
            .into_iter()
            .flat_map(|prefix| {
                set.iter().map(move |pair| {
                    let mut next = prefix.clone();
                    next.push(pair.clone());
                    next
                })
            })
            .collect();
    }
    product
}

/// The texts docker_auth tries for one condition, in order: the plain substitution,
/// then one per label permutation.
pub fn field_alternatives(
    pattern: &str,
    vars: &[(String, String)],
    labels: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    std::iter::once(substitute(pattern, vars))
        .chain(
            label_permutations(pattern, labels)
                .into_iter()
                .map(|permutation| {
                    let all: Vec<(String, String)> =
                        vars.iter().cloned().chain(permutation).collect();
                    substitute(pattern, &all)
                }),
        )
        .collect()
}

/// A condition on one field: absent matches; else any of its alternatives.
pub fn field_matches(
    pattern: Option<&str>,
    text: &str,
    vars: &[(String, String)],
    labels: &BTreeMap<String, Vec<String>>,
) -> bool {
    let Some(pattern) = pattern else {
        return true;
    };
    field_alternatives(pattern, vars, labels)
        .iter()
        .any(|alternative| pattern_matches(alternative, text))
}

/// `labels:` conditions: for each key, one of the caller's values matches.
pub fn labels_match(
    wanted: &BTreeMap<String, String>,
    labels: &BTreeMap<String, Vec<String>>,
    vars: &[(String, String)],
) -> bool {
    wanted.iter().all(|(key, pattern)| {
        let pattern = substitute(pattern, vars);
        labels
            .get(key)
            .is_some_and(|values| values.iter().any(|value| pattern_matches(&pattern, value)))
    })
}

fn entry_matches(conditions: &Conditions, request: &Request<'_>) -> bool {
    let vars = request_vars(request);
    let labels = request.labels;
    conditions.ip.is_none()
        && field_matches(
            conditions.account.as_deref(),
            request.account,
            &vars,
            labels,
        )
        && field_matches(
            conditions.resource_type.as_deref(),
            request.resource_type,
            &vars,
            labels,
        )
        && field_matches(conditions.name.as_deref(), request.name, &vars, labels)
        && field_matches(
            conditions.service.as_deref(),
            request.service,
            &vars,
            labels,
        )
        && labels_match(&conditions.labels, labels, &vars)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::super::config;
    use super::*;

    /// The ACL of the hand-written cases below.
    const ACL: &str = r#"
acl:
  - match: {account: "admin"}
    actions: ["*"]
  - match: {account: "test", name: "test-*"}
    actions: ["*"]
  - match: {account: "test"}
    actions: []
  - match: {account: "/.+/", name: "${account}/*"}
    actions: ["*"]
  - match: {labels: {group: "devs"}, name: "devs/*"}
    actions: ["push", "pull"]
  - match: {name: "${labels:project}/*"}
    actions: ["pull", "push"]
  - match: {account: "/.+/", type: "registry", name: "catalog"}
    actions: ["*"]
  - match: {account: "/.+/", service: "other-registry"}
    actions: ["*"]
  - match: {account: "/^ci-/", name: "/^builds\\/.*$/"}
    actions: ["push"]
  - match: {account: "/.+/"}
    actions: ["pull"]
  - match: {account: "", name: "hello-world"}
    actions: ["pull"]
"#;

    fn labels(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(key, values)| {
                (
                    key.to_string(),
                    values.iter().map(|v| v.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn the_first_matching_entry_decides() {
        let config = config::parse(ACL).unwrap();
        let acl = Acl::new(&config.acl).unwrap();
        let none = BTreeMap::new();
        let dev = labels(&[("group", &["devs"]), ("project", &["web", "api"])]);
        let all = ["pull", "push", "delete"];
        // (account, has dave's labels, type:name, service, granted, deciding entry)
        type Case<'a> = (
            &'a str,
            bool,
            &'a str,
            &'a str,
            &'a [&'a str],
            Option<usize>,
        );
        let cases: &[Case<'_>] = &[
            ("admin", false, "repository:any/thing", "reg", &all, Some(1)),
            ("admin", false, "registry:catalog", "reg", &all, Some(1)),
            ("test", false, "repository:test-app", "reg", &all, Some(2)),
            // `*` does not cross `/`: the rest of test's world is denied by entry 3.
            (
                "test",
                false,
                "repository:test-app/web",
                "reg",
                &[],
                Some(3),
            ),
            ("test", false, "repository:test/app", "reg", &[], Some(3)),
            ("test", false, "repository:library/x", "reg", &[], Some(3)),
            ("carol", false, "repository:carol/app", "reg", &all, Some(4)),
            (
                "carol",
                false,
                "repository:carol/app/web",
                "reg",
                &["pull"],
                Some(10),
            ),
            (
                "carol",
                false,
                "repository:dave/app",
                "reg",
                &["pull"],
                Some(10),
            ),
            (
                "dave",
                true,
                "repository:devs/app",
                "reg",
                &["pull", "push"],
                Some(5),
            ),
            ("dave", true, "repository:devs", "reg", &["pull"], Some(10)),
            (
                "dave",
                true,
                "repository:api/x",
                "reg",
                &["pull", "push"],
                Some(6),
            ),
            (
                "dave",
                true,
                "repository:web/x",
                "reg",
                &["pull", "push"],
                Some(6),
            ),
            (
                "dave",
                true,
                "repository:mobile/x",
                "reg",
                &["pull"],
                Some(10),
            ),
            ("carol", false, "registry:catalog", "reg", &all, Some(7)),
            (
                "carol",
                false,
                "repository:x",
                "other-registry",
                &all,
                Some(8),
            ),
            (
                "ci-bot",
                false,
                "repository:builds/app/1",
                "reg",
                &["push"],
                Some(9),
            ),
            (
                "",
                false,
                "repository:hello-world",
                "reg",
                &["pull"],
                Some(11),
            ),
            ("", false, "repository:hello-world/x", "reg", &[], None),
            ("", false, "repository:carol/app", "reg", &[], None),
            ("", false, "registry:catalog", "reg", &[], None),
        ];
        for &(account, has_labels, resource, service, granted, entry) in cases {
            let (resource_type, name) = resource.split_once(':').unwrap();
            let labels = if has_labels { &dev } else { &none };
            let decision = acl.authorize(&Request {
                account,
                labels,
                resource_type,
                name,
                service,
                actions: &all,
            });
            let what = format!("{account:?} {resource_type}:{name} @{service}");
            assert_eq!(decision.entry, entry, "{what}");
            let granted: Vec<String> = granted.iter().map(|a| a.to_string()).collect();
            assert_eq!(decision.actions, granted, "{what}");
        }
    }

    #[test]
    fn star_alone_grants_what_was_asked_and_lists_intersect() {
        let config = config::parse(
            "acl:\n  - match: {name: a}\n    actions: [\"*\"]\n  - match: {name: b}\n    actions: [\"pull\", \"*\"]\n",
        )
        .unwrap();
        let acl = Acl::new(&config.acl).unwrap();
        let none = BTreeMap::new();
        let ask = |name, actions: &[&str]| {
            acl.authorize(&Request {
                account: "x",
                labels: &none,
                resource_type: "repository",
                name,
                service: "s",
                actions,
            })
            .actions
        };
        assert_eq!(ask("a", &["*"]), ["*"]);
        assert_eq!(ask("a", &["delete"]), ["delete"]);
        assert_eq!(ask("b", &["*"]), ["*"]);
        assert_eq!(ask("b", &["pull", "push"]), ["pull"]);
    }

    #[test]
    fn placeholders_are_quoted_and_labels_expand_raw() {
        let vars = vec![("${account}".to_string(), quote_meta("a.b"))];
        assert_eq!(substitute("/^${account}$/", &vars), "/^a\\.b$/");
        assert!(pattern_matches(&substitute("/^${account}$/", &vars), "a.b"));
        assert!(!pattern_matches(
            &substitute("/^${account}$/", &vars),
            "axb"
        ));
        assert!(pattern_matches(&substitute("${account}/*", &vars), "a.b/x"));
        let labels = labels(&[("team", &["a", "b"]), ("tier", &["prod"])]);
        let permutations = label_permutations("${labels:team}-${labels:tier}", &labels);
        let texts: Vec<String> = permutations
            .iter()
            .map(|p| substitute("${labels:team}-${labels:tier}", p))
            .collect();
        assert_eq!(texts, ["a-prod", "b-prod"]);
        assert!(label_permutations("${labels:other}/*", &labels).is_empty());
    }

    /// Placeholders are literals to Go's regex syntax: entry 1 is valid.
    #[test]
    fn bad_regexes_and_capture_references_are_refused() {
        let config = config::parse(
            "acl:\n  - match: {name: \"/^${account}-.*$/\"}\n    actions: []\n  - match: {name: \"/(/\"}\n    actions: []\n  - match: {account: \"/^(.+)@x$/\", name: \"${account:1}/*\"}\n    actions: []\n",
        )
        .unwrap();
        let problems = Acl::new(&config.acl).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("entry 2: invalid regex"),
            "{}",
            problems[0]
        );
        assert!(problems[1].contains("capture group"), "{}", problems[1]);
    }
}
