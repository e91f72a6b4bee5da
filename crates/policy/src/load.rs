//! Loading `policies/*.toml` (feature `load`): TOML in, [`PolicySource`] with file and line
//! for every item out, then [`Policy::build`]. Every problem found is reported, each as
//! `file:line: message`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::policy::Policy;
use crate::source::{
    Effect, GroupSource, IssuerSource, Located, Location, PolicySource, Problem, RuleSource,
};

// Unknown fields are collected (`unknown`), not refused by serde, so that a file with one
// is still validated and every problem of every file is reported in one run.

#[derive(Deserialize)]
struct FileToml {
    #[serde(default)]
    groups: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    allow: Vec<Spanned<RuleToml>>,
    #[serde(default)]
    deny: Vec<Spanned<RuleToml>>,
    #[serde(default)]
    issuer: Vec<Spanned<IssuerToml>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

const FILE_FIELDS: &[&str] = &["groups", "allow", "deny", "issuer"];

#[derive(Deserialize)]
struct IssuerToml {
    name: Spanned<String>,
    url: Spanned<String>,
    audience: Spanned<Audience>,
    jwks_url: Option<Spanned<String>>,
    max_age: Option<Spanned<i64>>,
    person: Option<Spanned<String>>,
    person_domain: Option<Spanned<String>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

const ISSUER_FIELDS: &[&str] = &[
    "name",
    "url",
    "audience",
    "jwks_url",
    "max_age",
    "person",
    "person_domain",
];

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RuleToml {
    who: Vec<Spanned<String>>,
    what: Vec<Spanned<String>>,
    actions: Vec<Spanned<String>>,
    description: Option<String>,
    claims: Option<Spanned<toml::Table>>,
    when: Option<Spanned<toml::Table>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

const RULE_FIELDS: &[&str] = &["who", "what", "actions", "description", "claims", "when"];

impl Policy {
    /// Loads and validates every `DIR/*.toml` (sorted by file name; subdirectories such as
    /// `tests/` and other files are ignored). Problems name the file as `DIR/NAME`.
    pub fn load_dir(dir: &Path) -> Result<Policy, LoadError> {
        let files = read_toml_files(dir)?;
        Policy::from_toml(
            files
                .iter()
                .map(|(name, text)| (name.as_str(), text.as_str())),
        )
        .map_err(|mut error| {
            for problem in &mut error.problems {
                problem.file = dir.join(&problem.file).display().to_string();
            }
            error
        })
    }

    /// Loads a policy from `(file name, TOML text)` pairs, merged in the order given.
    pub fn from_toml<'a, I>(files: I) -> Result<Policy, LoadError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut source = PolicySource::default();
        let mut problems = Vec::new();
        // Unknown fields do not stop validation; a file that does not parse does (its
        // groups and issuers are unknown, so the other files' references could not be
        // judged).
        let mut unknown = Vec::new();
        for (file_index, (name, text)) in files.into_iter().enumerate() {
            source.files.push(name.to_owned());
            let file = u32::try_from(file_index).unwrap_or(u32::MAX);
            match add_file(&mut source, file, name, text) {
                Ok(mut found) => unknown.append(&mut found),
                Err(mut found) => problems.append(&mut found),
            }
        }
        let order = source.files.clone();
        if problems.is_empty() {
            match Policy::build(source) {
                Ok(policy) if unknown.is_empty() => return Ok(policy),
                Ok(_) => {}
                Err(mut found) => problems.append(&mut found),
            }
        }
        problems.append(&mut unknown);
        // File order, then line order; the sort is stable, so one line keeps its order.
        problems.sort_by_key(|problem| {
            let file = order.iter().position(|name| *name == problem.file);
            (file, problem.line)
        });
        Err(LoadError { problems })
    }
}

/// `unknown field `NAME`, expected one of ...` at the line where `field` is set, looked
/// for from byte `start` on (a table's header).
fn unknown_field(
    name: &str,
    lines: &LineIndex<'_>,
    field: &str,
    start: usize,
    expected: &[&str],
) -> Problem {
    Problem {
        file: name.to_owned(),
        line: lines.key_line(field, start),
        message: format!(
            "unknown field `{field}`, expected one of {}",
            expected
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The unknown fields of a file that did not deserialize (a missing field, a wrong type),
/// found in its plain TOML table, so they are reported with that error. Lines are where
/// each name is first set in the file.
fn unknown_fields_of_table(name: &str, lines: &LineIndex<'_>, table: &toml::Table) -> Vec<Problem> {
    let mut found = Vec::new();
    for (key, value) in table {
        let (expected, items) = match key.as_str() {
            "allow" | "deny" => (RULE_FIELDS, value.as_array()),
            "issuer" => (ISSUER_FIELDS, value.as_array()),
            "groups" => continue,
            _ => {
                found.push(unknown_field(name, lines, key, 0, FILE_FIELDS));
                continue;
            }
        };
        for item in items
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_table)
        {
            for field in item
                .keys()
                .filter(|field| !expected.contains(&field.as_str()))
            {
                found.push(unknown_field(name, lines, field, 0, expected));
            }
        }
    }
    found
}

/// Adds the file's items to `source`, and gives its unknown fields as problems; or the
/// problems that kept it from being read: a syntax error, or a missing field or wrong type
/// together with the unknown fields.
fn add_file(
    source: &mut PolicySource,
    file: u32,
    name: &str,
    text: &str,
) -> Result<Vec<Problem>, Vec<Problem>> {
    let lines = LineIndex::new(text);
    let mut parsed: FileToml = match toml::from_str(text) {
        Ok(parsed) => parsed,
        Err(error) => {
            let mut problems = toml::from_str::<toml::Table>(text)
                .map(|table| unknown_fields_of_table(name, &lines, &table))
                .unwrap_or_default();
            problems.push(toml_problem(name, &lines, &error));
            return Err(problems);
        }
    };
    let mut unknown = Vec::new();
    for field in parsed.unknown.keys() {
        unknown.push(unknown_field(name, &lines, field, 0, FILE_FIELDS));
    }
    for rule in parsed.allow.iter().chain(&parsed.deny) {
        for field in rule.get_ref().unknown.keys() {
            unknown.push(unknown_field(
                name,
                &lines,
                field,
                rule.span().start,
                RULE_FIELDS,
            ));
        }
    }
    for issuer in &parsed.issuer {
        for field in issuer.get_ref().unknown.keys() {
            unknown.push(unknown_field(
                name,
                &lines,
                field,
                issuer.span().start,
                ISSUER_FIELDS,
            ));
        }
    }
    parsed.unknown.clear();
    let at = |span: std::ops::Range<usize>| Location {
        file,
        line: lines.line(span.start),
    };
    let located = |items: Vec<Spanned<String>>| -> Vec<Located<String>> {
        items
            .into_iter()
            .map(|item| Located {
                at: at(item.span()),
                value: item.into_inner(),
            })
            .collect()
    };
    for (group, members) in parsed.groups {
        source.groups.push(GroupSource {
            name: Located {
                at: at(group.span()),
                value: group.into_inner(),
            },
            members: located(members),
        });
    }
    for issuer in parsed.issuer {
        let header = lines.header_line(issuer.span().start);
        let issuer = issuer.into_inner();
        let audiences_at = at(issuer.audience.span());
        let audiences = match issuer.audience.into_inner() {
            Audience::One(one) => vec![one],
            Audience::Many(many) => many,
        };
        source.issuers.push(IssuerSource {
            at: Location { file, line: header },
            name: Located {
                at: at(issuer.name.span()),
                value: issuer.name.into_inner(),
            },
            url: Located {
                at: at(issuer.url.span()),
                value: issuer.url.into_inner(),
            },
            audiences: Located {
                at: audiences_at,
                value: audiences,
            },
            jwks_url: issuer.jwks_url.map(|url| Located {
                at: at(url.span()),
                value: url.into_inner(),
            }),
            max_age: issuer.max_age.map(|max_age| Located {
                at: at(max_age.span()),
                value: max_age.into_inner(),
            }),
            person: issuer.person.map(|person| Located {
                at: at(person.span()),
                value: person.into_inner(),
            }),
            person_domain: issuer.person_domain.map(|domain| Located {
                at: at(domain.span()),
                value: domain.into_inner(),
            }),
        });
    }
    let mut rules: Vec<(usize, RuleSource)> = Vec::new();
    for (effect, list) in [(Effect::Allow, parsed.allow), (Effect::Deny, parsed.deny)] {
        for rule in list {
            let span = rule.span();
            let header = lines.header_line(span.start);
            let rule = rule.into_inner();
            let claims = match rule.claims {
                Some(claims) => {
                    let claims_at = at(claims.span());
                    let json = table_to_json(claims.into_inner()).map_err(|message| {
                        vec![Problem {
                            file: name.to_owned(),
                            line: claims_at.line,
                            message,
                        }]
                    })?;
                    Some(Located {
                        at: claims_at,
                        value: json.to_string(),
                    })
                }
                None => None,
            };
            let when = match rule.when {
                Some(when) => {
                    let when_at = at(when.span());
                    let mut conditions = Vec::new();
                    flatten_when(&mut Vec::new(), when.into_inner(), &mut conditions).map_err(
                        |message| {
                            vec![Problem {
                                file: name.to_owned(),
                                line: when_at.line,
                                message,
                            }]
                        },
                    )?;
                    Some(Located {
                        at: when_at,
                        value: conditions,
                    })
                }
                None => None,
            };
            rules.push((
                span.start,
                RuleSource {
                    effect,
                    at: Location { file, line: header },
                    who: located(rule.who),
                    what: located(rule.what),
                    actions: located(rule.actions),
                    description: rule.description,
                    claims,
                    when,
                },
            ));
        }
    }
    rules.sort_by_key(|(start, _)| *start);
    source.rules.extend(rules.into_iter().map(|(_, rule)| rule));
    Ok(unknown)
}

/// `when` as (claim path, pattern) pairs: a nested table (`"kubernetes.io".namespace = ".."`)
/// gives a path of several keys; every value must be a string pattern.
fn flatten_when(
    path: &mut Vec<String>,
    table: toml::Table,
    conditions: &mut Vec<(Vec<String>, String)>,
) -> Result<(), String> {
    for (key, value) in table {
        path.push(key);
        match value {
            toml::Value::String(pattern) => conditions.push((path.clone(), pattern)),
            toml::Value::Table(nested) => flatten_when(path, nested, conditions)?,
            other => {
                return Err(format!(
                "`when` claim {:?} must be a string pattern, not {}; claims are matched as strings",
                path.join("."),
                other.type_str()
            ))
            }
        }
        path.pop();
    }
    if conditions.len() > 32 {
        return Err("`when` holds more than 32 conditions".into());
    }
    Ok(())
}

fn toml_problem(name: &str, lines: &LineIndex, error: &toml::de::Error) -> Problem {
    Problem {
        file: name.to_owned(),
        line: error.span().map_or(0, |span| lines.line(span.start)),
        message: error.message().trim_end().to_owned(),
    }
}

/// Claims as JSON; TOML datetimes become their RFC 3339 text, non-finite floats are refused.
pub(crate) fn table_to_json(table: toml::Table) -> Result<serde_json::Value, String> {
    table
        .into_iter()
        .map(|(key, value)| Ok((key, value_to_json(value)?)))
        .collect::<Result<serde_json::Map<_, _>, String>>()
        .map(serde_json::Value::Object)
}

fn value_to_json(value: toml::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as Json;
    Ok(match value {
        toml::Value::String(s) => Json::String(s),
        toml::Value::Integer(i) => Json::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| format!("claim value {f} is not a finite number"))?,
        toml::Value::Boolean(b) => Json::Bool(b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(items) => Json::Array(
            items
                .into_iter()
                .map(value_to_json)
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => table_to_json(table)?,
    })
}

/// Byte offset -> 1-based line number.
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub(crate) fn new(text: &'t str) -> LineIndex<'t> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    pub(crate) fn line(&self, offset: usize) -> u32 {
        let line = self.starts.partition_point(|start| *start <= offset);
        u32::try_from(line).unwrap_or(u32::MAX)
    }

    /// The first line from byte `start` on where the key `key` is set (`key = ...`,
    /// `"key" = ...`, or a `[key]` / `[[key]]` header), else the line of `start`.
    pub(crate) fn key_line(&self, key: &str, start: usize) -> u32 {
        let within = self.text.get(start..).unwrap_or_default();
        let mut offset = start;
        for line in within.split_inclusive('\n') {
            let trimmed = line.trim_start();
            let bare = trimmed.trim_start_matches('[').trim_start();
            let rest = bare
                .strip_prefix(key)
                .or_else(|| {
                    bare.strip_prefix('"')
                        .and_then(|r| r.strip_prefix(key))
                        .and_then(|r| r.strip_prefix('"'))
                })
                .map(str::trim_start);
            if rest.is_some_and(|r| r.starts_with('=') || r.starts_with(']') || r.starts_with('.'))
            {
                return self.line(offset);
            }
            offset += line.len();
        }
        self.line(start)
    }

    /// The line of the nearest `[[...]]` table header at or before `offset`, so a rule is
    /// named by its header; the line of `offset` when there is none.
    pub(crate) fn header_line(&self, offset: usize) -> u32 {
        let line = self.line(offset);
        let first = line as usize;
        for index in (0..first).rev() {
            let start = self.starts[index];
            let end = self
                .starts
                .get(index + 1)
                .copied()
                .unwrap_or(self.text.len());
            if self
                .text
                .get(start..end)
                .is_some_and(|l| l.trim_start().starts_with("[["))
            {
                return u32::try_from(index + 1).unwrap_or(u32::MAX);
            }
        }
        line
    }
}

/// `DIR/*.toml` as `(file name, text)`, sorted by name.
pub(crate) fn read_toml_files(dir: &Path) -> Result<Vec<(String, String)>, LoadError> {
    let whole_dir = |message: String| LoadError {
        problems: vec![Problem {
            file: dir.display().to_string(),
            line: 0,
            message,
        }],
    };
    let entries =
        fs::read_dir(dir).map_err(|e| whole_dir(format!("cannot read directory: {e}")))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| whole_dir(format!("cannot read directory: {e}")))?
            .path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(whole_dir("no *.toml files here".into()));
    }
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match fs::read_to_string(&path) {
            Ok(text) => files.push((name, text)),
            Err(e) => problems.push(Problem {
                file: path.display().to_string(),
                line: 0,
                message: format!("cannot read file: {e}"),
            }),
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(LoadError { problems })
    }
}

/// Policy files (or test files) that cannot be used. `Display` lists every problem, one
/// per line, as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub(crate) problems: Vec<Problem>,
}

impl LoadError {
    /// Every problem found, in file order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a panic is how a test fails"
)]
mod tests {
    use super::*;

    fn problems(files: &[(&str, &str)]) -> Vec<String> {
        match Policy::from_toml(files.iter().copied()) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(ToString::to_string).collect(),
        }
    }

    const GOOD: &str = r#"
[groups]
platform = ["alice", "bob"]

[[allow]]
who     = ["group:platform"]
what    = ["repository:platform/**"]
actions = ["pull", "push", "delete"]
"#;

    #[test]
    fn namespaces_are_leading_literals_and_globs() {
        let policy = Policy::from_toml([(
            "p.toml",
            r#"
[groups]
platform = []

[[allow]]
who     = ["group:platform"]
what    = ["repository:platform/**", "repository:ci-*/cache", "repository:*/shared"]
actions = ["pull"]

[[allow]]
who     = ["authenticated"]
what    = ["repository:{account}/**"]
actions = ["*"]

[[deny]]
who     = ["anonymous"]
what    = ["repository:**"]
actions = ["push"]
"#,
        )])
        .unwrap();
        let cases = [
            ("platform", true),
            ("ci-foo", true),
            ("ci-", true),
            ("ci", false),
            ("alice", false),
            ("platformx", false),
            ("shared", false),
        ];
        for (name, expected) in cases {
            assert_eq!(policy.is_namespace(name), expected, "{name}");
        }
    }

    #[test]
    fn claim_rules_reserve_the_namespaces_their_when_values_pin() {
        let policy = Policy::from_toml([(
            "ci.toml",
            r#"
[[issuer]]
name     = "github"
url      = "https://token.actions.githubusercontent.com"
audience = "registry.example.com"

[[allow]]
who     = ["oidc:github"]
when    = { repository_owner = "acme", ref = "refs/heads/main" }
what    = ["repository:{claim:repository}/**"]
actions = ["pull", "push"]

[[allow]]
who     = ["oidc:github"]
when    = { repository = "team-*/**" }
what    = ["repository:{claim:repository}"]
actions = ["pull"]

[[allow]]
who     = ["oidc:github"]
when    = { environment = "mirror" }
what    = ["repository:mirrors/{claim:repository}"]
actions = ["pull"]

[[allow]]
who     = ["oidc:github"]
when    = { repository = "*/app" }
what    = ["repository:{claim:repository}"]
actions = ["pull"]
"#,
        )])
        .unwrap();
        let cases = [
            ("acme", true),
            ("refs", true),
            ("team-a", true),
            ("mirrors", true),
            // Only rules whose `what` starts with a claim reserve their `when` values.
            ("mirror", false),
            ("acme2", false),
            ("alice", false),
        ];
        for (name, expected) in cases {
            assert_eq!(policy.is_namespace(name), expected, "{name}");
            let compiled = policy.to_compiled();
            let compiled = crate::CompiledPolicy::new(&compiled).unwrap();
            assert_eq!(compiled.is_namespace(name), expected, "compiled: {name}");
        }
    }

    #[test]
    fn a_good_file_loads() {
        let policy = Policy::from_toml([("teams.toml", GOOD)]).unwrap();
        assert_eq!(policy.rule_count(), 1);
        assert_eq!(policy.groups(), ["platform"]);
    }

    #[test]
    fn rejections_name_file_line_and_fix() {
        // (file text, expected problem substrings, each "line: text")
        let cases: &[(&str, &[&str])] = &[
            (
                "[[allow]]\nwho = [\"anyone\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\nwhom = []\n",
                &["p.toml:5: unknown field `whom`"],
            ),
            ("[[allow]]\nwho = [\"group:nobody\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\n", &["p.toml:2: group \"nobody\" is not defined"]),
            ("[[allow]]\nwho = [\"anyone\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\",\n  \"pul\"]\n", &["p.toml:5: unknown action \"pul\""]),
            ("[[allow]]\nwho = [\"anyone\"]\nwhat = [\"repository:X/**\"]\nactions = [\"pull\"]\n", &["p.toml:3: pattern \"repository:X/**\""]),
            ("[[allow]]\nwho = [\"everyone\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\n", &["p.toml:2: unknown subject \"everyone\""]),
            ("[[allow]]\nwho = [\"anyone\"]\nwhat = [\"registry:catalog\"]\nactions = [\"pull\"]\n", &["p.toml:3: registry:catalog: registry:catalog only takes the action *"]),
            ("[[allow]]\nwho = [\"anyone\"]\nwhat = [\"repository:x\"]\n", &["p.toml:1: missing field `actions`"]),
            ("[[allow]]\nwho = []\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\n", &["p.toml:1: `who` is empty"]),
            ("[[deny]]\nwho = [\"anyone\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\nclaims = { a = 1 }\n", &["p.toml:5: `claims` only apply to allow rules"]),
            ("[[allow]]\nwho = [\"anyone\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\nclaims = { sub = \"root\" }\n", &["p.toml:5: claim \"sub\" is set by scopegate itself"]),
            ("[groups]\nops = [\"a b\"]\n", &["p.toml:2: member \"a b\" of group \"ops\""]),
            ("[rules]\n", &["p.toml:1: unknown field `rules`"]),
            ("[[allow]\n", &["p.toml:1: "]),
            ("[[allow]]\nwho = \"anyone\"\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\n", &["p.toml:2: invalid type: string \"anyone\", expected a sequence"]),
        ];
        for (text, expected) in cases {
            let found = problems(&[("p.toml", text)]);
            for want in *expected {
                assert!(
                    found.iter().any(|p| p.starts_with(want)),
                    "{text:?}\nwanted {want:?}\nfound {found:?}"
                );
            }
        }
    }

    const ISSUER: &str = "[[issuer]]\nname = \"github\"\nurl = \"https://token.actions.githubusercontent.com\"\naudience = \"registry.example.com\"\n";

    #[test]
    fn issuers_load() {
        let text = format!("{ISSUER}\n[[issuer]]\nname = \"lab\"\nurl = \"http://127.0.0.1:9000\"\naudience = [\"a\", \"b\"]\njwks_url = \"http://127.0.0.1:9000/keys\"\nmax_age = 900\nperson = \"email\"\nperson_domain = \"Example.com\"\n\n[[allow]]\nwho = [\"oidc:github\", \"kind:oidc\"]\nwhen = {{ repository_owner = \"acme\", ref = \"refs/heads/*\", \"kubernetes.io\".namespace = \"ci\" }}\nwhat = [\"repository:{{claim:repository}}/**\"]\nactions = [\"pull\", \"push\"]\n");
        let policy = Policy::from_toml([("ci.toml", text.as_str())]).unwrap();
        type Fields<'a> = (&'a str, &'a str, &'a [String], Option<&'a str>, Option<u64>);
        let issuers: Vec<Fields<'_>> = policy
            .issuers()
            .iter()
            .map(|i| (i.name(), i.url(), i.audiences(), i.jwks_url(), i.max_age()))
            .collect();
        assert_eq!(
            issuers,
            [
                (
                    "github",
                    "https://token.actions.githubusercontent.com",
                    &["registry.example.com".to_owned()][..],
                    None,
                    None
                ),
                (
                    "lab",
                    "http://127.0.0.1:9000",
                    &["a".to_owned(), "b".to_owned()][..],
                    Some("http://127.0.0.1:9000/keys"),
                    Some(900)
                ),
            ]
        );
        let people: Vec<_> = policy
            .issuers()
            .iter()
            .map(|i| (i.person_claim(), i.person_domain()))
            .collect();
        assert_eq!(people, [(None, None), (Some("email"), Some("example.com"))]);
        assert_eq!(
            policy.issuer_for("http://127.0.0.1:9000").map(|i| i.name()),
            Some("lab")
        );
        assert!(policy.issuer_for("http://127.0.0.1:9000/").is_none());
        let when: Vec<String> = policy.rules[0].when.iter().map(|c| c.describe()).collect();
        assert_eq!(
            when,
            [
                "kubernetes.io.namespace = \"ci\"",
                "ref = \"refs/heads/*\"",
                "repository_owner = \"acme\""
            ]
        );
        let decoded = Policy::from_compiled(&policy.to_compiled()).unwrap();
        assert_eq!(decoded.issuers(), policy.issuers());
    }

    #[test]
    fn issuer_and_workload_rejections() {
        let rule = |who: &str, extra: &str| {
            format!("{ISSUER}\n[[allow]]\nwho = [{who}]\nwhat = [\"repository:x/**\"]\nactions = [\"pull\"]\n{extra}")
        };
        let cases: Vec<(String, &str)> = vec![
            (ISSUER.replace("https://token", "http://token"), "p.toml:3: issuer `url`: URL \"http://token.actions.githubusercontent.com\": must use https://"),
            (ISSUER.replace("audience =", "audiences ="), "p.toml:4: unknown field `audiences`"),
            (ISSUER.replace("\"registry.example.com\"", "[]"), "p.toml:4: `audience` must be a non-empty string"),
            (format!("{ISSUER}max_age = 0\n"), "p.toml:5: `max_age` must be a positive number"),
            (format!("{ISSUER}jwks_url = \"ftp://x\"\n"), "p.toml:5: `jwks_url`: URL \"ftp://x\": must start with https://"),
            (format!("{ISSUER}jwks_url = \"http://127.0.0.1:9000/keys\"\n"), "p.toml:5: `jwks_url`: URL \"http://127.0.0.1:9000/keys\": must use https://, as the issuer"),
            (format!("{ISSUER}\n{}", ISSUER.replace("token.actions", "other")), "p.toml:7: issuer \"github\" is declared twice (first at p.toml:2)"),
            (format!("{ISSUER}\n{}", ISSUER.replace("github\"", "gh\"")), "p.toml:8: issuer URL \"https://token.actions.githubusercontent.com\" is declared twice"),
            (ISSUER.replace("\"github\"", "\"git:hub\""), "p.toml:2: issuer name \"git:hub\" is not valid"),
            (rule("\"oidc:gitlab\"", ""), "p.toml:7: issuer \"gitlab\" is not declared"),
            (rule("\"anyone\"", "when = { ref = \"refs/heads/main\" }\n"), "p.toml:6: a rule with `when`, {claim:NAME} or {person} is about workloads"),
            (rule("\"oidc:github\", \"authenticated\"", "when = { ref = \"main\" }\n"), "p.toml:6: a rule with `when`"),
            (rule("\"oidc:github\"", "when = { ref = 1 }\n"), "p.toml:10: `when` claim \"ref\" must be a string pattern, not integer"),
            (rule("\"oidc:github\"", "when = { ref = \"a**\" }\n"), "p.toml:10: `when` pattern \"a**\": ** must be a whole segment"),
            (rule("\"oidc:github\"", "when = {}\n"), "p.toml:10: `when` is empty"),
            (rule("\"oidc:github\"", "when = { \"a b\" = \"x\" }\n"), "p.toml:10: `when` claim \"a b\""),
            (rule("\"oidc:github\"", "").replace("repository:x/**", "repository:{claim:repository}/**").replace("[[allow]]", "[[deny]]"), "p.toml:6: {claim:NAME} and {person} only apply to allow rules"),
            (rule("\"anyone\"", "").replace("repository:x/**", "repository:{claim:repository}/**"), "p.toml:6: a rule with `when`, {claim:NAME} or {person}"),
            (rule("\"anyone\"", "").replace("repository:x/**", "repository:{person}/**"), "p.toml:6: a rule with `when`, {claim:NAME} or {person}"),
            (rule("\"oidc:github\"", "").replace("repository:x/**", "repository:{person}/**"), "p.toml:6: {person} needs the issuer to say which claim names a person: add person = \"preferred_username\" (or another claim) to issuer \"github\""),
            (rule("\"kind:oidc\"", "").replace("repository:x/**", "repository:{person}/**"), "p.toml:6: {person} needs an issuer that says which claim names a person"),
            (rule("\"oidc:github\"", "").replace("repository:x/**", "repository:{person}/**").replace("[[allow]]", "[[deny]]").replace("audience = \"registry.example.com\"", "audience = \"registry.example.com\"\nperson = \"email\""), "p.toml:7: {claim:NAME} and {person} only apply to allow rules"),
            (rule("\"oidc:github\"", "").replace("repository:x/**", "repository:x-{person}"), "p.toml:8: pattern \"repository:x-{person}\": segment"),
            (rule("\"oidc:github\"", "").replace("repository:x/**", "repository:home/{person}/**").replace("audience = \"registry.example.com\"", "audience = \"registry.example.com\"\nperson = \"email\""), "p.toml:7: {person} must be the first segment of a pattern"),
            (format!("{ISSUER}person = \"a b\"\n"), "p.toml:5: `person` \"a b\": a claim name"),
            (format!("{ISSUER}person_domain = \"example.com\"\n"), "p.toml:5: `person_domain` needs `person`"),
            (format!("{ISSUER}person = \"email\"\nperson_domain = \"example..com\"\n"), "p.toml:6: `person_domain` \"example..com\" is not a domain name"),
            (rule("\"oidc:github\"", "").replace("repository:x/**", "repository:x-{claim:repository}"), "p.toml:8: pattern \"repository:x-{claim:repository}\": segment"),
            (rule("\"oidc:github\"", "").replace("repository:x/**", "repository:{claim:}/**"), "p.toml:8: pattern \"repository:{claim:}/**\": segment \"{claim:}\": a claim name"),
        ];
        for (text, want) in &cases {
            let found = problems(&[("p.toml", text)]);
            assert!(
                found.iter().any(|p| p.starts_with(want)),
                "{text}\nwanted {want:?}\nfound {found:?}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let text = "[[allow]]\nwho = [\"group:a\", \"group:b\"]\nwhat = [\"repository:X\"]\nactions = [\"fly\"]\n";
        let found = problems(&[("p.toml", text), ("q.toml", "nonsense")]);
        assert_eq!(
            found.len(),
            1,
            "a syntax error stops before validation: {found:?}"
        );
        let found = problems(&[("p.toml", text)]);
        assert_eq!(found.len(), 4, "{found:?}");
    }

    /// An unknown field is one problem among the others of its file and of the other
    /// files, not the only one reported.
    #[test]
    fn an_unknown_field_is_reported_with_every_other_problem() {
        let with_unknown = "[groups]\nops = []\n\n[[allow]]\nwho = [\"group:nobody\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\nwhom = []\n\n[[deny]]\nwho = [\"anyone\"]\nwhat = [\"repository:Y\"]\nactions = [\"pul\"]\n\n[rules]\n\n[[issuer]]\nname = \"gh\"\nurl = \"https://gh.example\"\naudience = \"a\"\naudiences = \"b\"\n";
        let other = "[[allow]]\nwho = [\"group:missing\"]\nwhat = [\"repository:z\"]\nactions = [\"pull\"]\n";
        let found = problems(&[("p.toml", with_unknown), ("q.toml", other)]);
        let expected = [
            "p.toml:5: group \"nobody\" is not defined",
            "p.toml:8: unknown field `whom`",
            "p.toml:12: pattern \"repository:Y\"",
            "p.toml:13: unknown action \"pul\"",
            "p.toml:15: unknown field `rules`",
            "p.toml:21: unknown field `audiences`",
            "q.toml:2: group \"missing\" is not defined",
        ];
        for want in expected {
            assert!(
                found.iter().any(|p| p.starts_with(want)),
                "wanted {want:?}\nfound {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        // In file order, then line order.
        let mut sorted = found.clone();
        sorted.sort_by_key(|p| {
            let (file, rest) = p.split_once(':').unwrap();
            let line: u32 = rest.split_once(':').unwrap().0.parse().unwrap();
            (file.to_string(), line)
        });
        assert_eq!(found, sorted);
    }

    #[test]
    fn groups_are_defined_once_across_files() {
        let found = problems(&[
            ("a.toml", "[groups]\nops = []\n"),
            ("b.toml", "\n[groups]\nops = [\"x\"]\n"),
        ]);
        assert_eq!(found, ["b.toml:3: group \"ops\" is defined twice (first at a.toml:2); list all its members in one place"]);
    }

    #[test]
    fn rules_carry_their_header_line() {
        let text = "# comment\n\n[[allow]]\n# why\nwho = [\"anyone\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\n\n[[deny]]\nwho = [\"anonymous\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\n";
        let policy = Policy::from_toml([("p.toml", text)]).unwrap();
        let lines: Vec<(Effect, u32)> =
            policy.rules.iter().map(|r| (r.effect, r.at.line)).collect();
        assert_eq!(lines, [(Effect::Allow, 3), (Effect::Deny, 9)]);
    }

    #[test]
    fn claims_become_json() {
        let text = "[[allow]]\nwho = [\"anyone\"]\nwhat = [\"repository:x\"]\nactions = [\"pull\"]\nclaims = { region = \"eu\", weight = 2, tags = [\"a\"], at = 1979-05-27T07:32:00Z }\n";
        let policy = Policy::from_toml([("p.toml", text)]).unwrap();
        let claims = policy.rules[0].claims.clone().unwrap();
        assert_eq!(
            serde_json::Value::Object(claims),
            serde_json::json!({"region": "eu", "weight": 2, "tags": ["a"], "at": "1979-05-27T07:32:00Z"})
        );
    }
}
