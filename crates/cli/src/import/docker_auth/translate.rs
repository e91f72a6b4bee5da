//! docker_auth's first-match ACL as scopegate's deny-wins policy, for the callers the
//! file names: each static user and, when `""` is among the users, the anonymous
//! caller. Every entry's account, label, type and service conditions are decided per
//! caller (they are known), so what is left per caller and action is an ordered list of
//! name sets; entry i grants the names it matches that no earlier entry matched. That
//! becomes `allow` rules for the entries that grant, and `deny` rules for the earlier
//! entries that refuse part of what a later one grants, when such a deny takes nothing
//! from an entry before it; otherwise the order has no deny-wins equivalent and the
//! translation is refused, naming the entries.
//!
//! Rules name `user:NAME` and `anonymous`, not groups: a first-match decision depends on
//! all of a caller's labels at once, so only the known users' outcomes are exact.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use scopegate::authenticate::is_valid_account;

use super::acl::{self, field_alternatives, field_matches, labels_match, regex_body};
use super::config::{Config, Entry};
use super::pattern::NamePattern;

/// The repository actions, in scopegate's order.
pub const ACTIONS: [&str; 3] = ["pull", "push", "delete"];

/// A caller the file names.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    /// `""` for the anonymous caller.
    pub account: &'a str,
    pub labels: &'a BTreeMap<String, Vec<String>>,
}

impl Caller<'_> {
    fn subject(&self) -> String {
        if self.account.is_empty() {
            "anonymous".into()
        } else {
            format!("user:{}", self.account)
        }
    }

    fn describe(&self) -> String {
        if self.account.is_empty() {
            "the anonymous caller".into()
        } else {
            format!("user {}", self.account)
        }
    }
}

/// The callers of a configuration: the users with a name, then the anonymous caller
/// when `""` is a user (docker_auth refuses anonymous requests otherwise).
pub fn callers(config: &Config) -> Vec<Caller<'_>> {
    let named = config.users.iter().filter(|user| !user.name.is_empty());
    let anonymous = config.users.iter().filter(|user| user.name.is_empty());
    named
        .chain(anonymous)
        .map(|user| Caller {
            account: &user.name,
            labels: &user.labels,
        })
        .collect()
}

/// One rule of the translated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub is_deny: bool,
    pub who: Vec<String>,
    pub what: Vec<String>,
    pub actions: Vec<String>,
    /// The ACL entries it comes from.
    pub entries: BTreeSet<usize>,
}

/// A translation: the rules, and remarks on entries left out because they cannot
/// apply to any caller of the file.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    pub rules: Vec<Rule>,
    pub notes: Vec<String>,
    /// The entries' comments, by number, for the rules' descriptions.
    pub comments: BTreeMap<usize, String>,
}

/// An entry as it applies to one caller and the repository type.
#[derive(Debug, Clone)]
struct Applicable<'a> {
    entry: &'a Entry,
    names: Vec<NamePattern>,
}

fn grants(entry: &Entry, action: &str) -> bool {
    entry.actions == ["*"] || entry.actions.iter().any(|listed| listed == action)
}

/// What refuses an entry whoever asks: an invalid pattern, a capture reference, an
/// `ip` match, a `service` match without `--service`, `${name}`.
fn entry_problems(config: &Config, service: Option<&str>) -> BTreeSet<String> {
    let mut problems: BTreeSet<String> = BTreeSet::new();
    if let Err(found) = acl::Acl::new(&config.acl) {
        problems.extend(found);
    }
    for entry in &config.acl {
        let conditions = &entry.conditions;
        if conditions.ip.is_some() {
            problems.insert(format!(
                "{}: matches the client's address (`ip`), which a policy cannot see",
                entry.describe()
            ));
        }
        if conditions.service.is_some() && service.is_none() {
            problems.insert(format!(
                "{}: matches on `service`; give --service with the service name your registry \
                 sends, and entries for other services are left out",
                entry.describe()
            ));
        }
        if acl::condition_values(conditions).any(|value| value.contains("${name}")) {
            problems.insert(format!(
                "{}: uses ${{name}}, which the importer does not translate",
                entry.describe()
            ));
        }
    }
    problems
}

/// Translates the ACL; `service` is the service name the registry sends (what a
/// `service` condition is decided against). Errors list every entry that cannot be
/// translated exactly, with why.
pub fn translate(config: &Config, service: Option<&str>) -> Result<Translation, Vec<String>> {
    let mut problems = entry_problems(config, service);
    // The rest is judged without the entries refused so far, so that one report
    // names every problem.
    let refused: BTreeSet<usize> = config
        .acl
        .iter()
        .filter(|entry| {
            let mention = format!("{}:", entry.describe());
            problems.iter().any(|problem| problem.starts_with(&mention))
        })
        .map(|entry| entry.number)
        .collect();
    let remaining = Config {
        users: config.users.clone(),
        acl: config
            .acl
            .iter()
            .filter(|entry| !refused.contains(&entry.number))
            .cloned()
            .collect(),
    };
    let config = &remaining;
    let service = service.unwrap_or_default();
    let mut callers = callers(config);
    for caller in callers.iter().filter(|caller| !caller.account.is_empty()) {
        if !is_valid_account(caller.account) {
            problems.insert(format!(
                "user {:?}: not a valid account name (1 to 64 of a-z 0-9 . _ - @, starting \
                 with a letter or digit), so no policy rule can name it",
                caller.account
            ));
        }
    }
    callers.retain(|caller| caller.account.is_empty() || is_valid_account(caller.account));
    // (is_deny, subject, what) -> action -> entries
    let mut emitted = Emitted::new();
    let mut used: BTreeSet<usize> = BTreeSet::new();
    for caller in &callers {
        let applicable = match applicable_entries(config, caller, service) {
            Ok(applicable) => applicable,
            Err(found) => {
                problems.extend(found);
                continue;
            }
        };
        used.extend(applicable.iter().map(|a| a.entry.number));
        let subject = caller.subject();
        for action in ACTIONS {
            for (is_deny, names, entry) in decide(caller, action, &applicable, &mut problems) {
                for name in names {
                    let name = name.with_account(caller.account);
                    emitted
                        .entry((is_deny, subject.clone(), format!("repository:{name}")))
                        .or_default()
                        .entry(action.to_string())
                        .or_default()
                        .insert(entry);
                }
            }
        }
        if let Some(entry) = catalog_entry(config, caller, service) {
            used.insert(entry.number);
            if entry.actions.iter().any(|a| a == "*") {
                emitted
                    .entry((false, subject.clone(), "registry:catalog".into()))
                    .or_default()
                    .entry("*".into())
                    .or_default()
                    .insert(entry.number);
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.into_iter().collect());
    }
    let notes = config
        .acl
        .iter()
        .filter(|entry| !used.contains(&entry.number) && !refused.contains(&entry.number))
        .map(|entry| {
            format!(
                "{}: applies to none of the file's users (nor the anonymous caller), left out",
                entry.describe()
            )
        })
        .collect();
    let comments = config
        .acl
        .iter()
        .filter_map(|entry| Some((entry.number, entry.comment.clone()?)))
        .collect();
    Ok(Translation {
        rules: merge(emitted),
        notes,
        comments,
    })
}

/// The entries that apply to `caller` for the repository type, with their name sets.
fn applicable_entries<'a>(
    config: &'a Config,
    caller: &Caller<'_>,
    service: &str,
) -> Result<Vec<Applicable<'a>>, Vec<String>> {
    let mut applicable = Vec::new();
    let mut problems = Vec::new();
    for entry in &config.acl {
        if !applies(entry, caller, "repository", service) {
            continue;
        }
        let Some(name) = &entry.conditions.name else {
            applicable.push(Applicable {
                entry,
                names: vec![NamePattern::everything()],
            });
            continue;
        };
        let vars = vars(caller, "repository", service);
        let mut names = Vec::new();
        for alternative in field_alternatives(name, &vars, caller.labels) {
            if alternative.contains("${labels:") {
                // A placeholder left in: `$` and `{` are in no name, and in a regex `$`
                // anchors the end before more text, so it matches nothing.
                continue;
            }
            let patterns = match regex_body(&alternative) {
                Some(body) => NamePattern::from_regex(body),
                None => NamePattern::from_glob(&alternative).map(|p| p.into_iter().collect()),
            };
            match patterns {
                Ok(patterns) => names.extend(patterns),
                Err(why) => problems.push(format!(
                    "{}: for {}, the name {why}",
                    entry.describe(),
                    caller.describe()
                )),
            }
        }
        if !names.is_empty() {
            applicable.push(Applicable { entry, names });
        }
    }
    if problems.is_empty() {
        Ok(applicable)
    } else {
        Err(problems)
    }
}

/// The placeholders of a caller's requests of one type (`${name}` is refused earlier).
fn vars(caller: &Caller<'_>, resource_type: &str, service: &str) -> Vec<(String, String)> {
    [
        ("${account}", caller.account),
        ("${type}", resource_type),
        ("${service}", service),
    ]
    .into_iter()
    .map(|(placeholder, value)| (placeholder.to_string(), acl::quote_meta(value)))
    .collect()
}

/// Whether an entry's conditions other than the name hold for the caller and type.
fn applies(entry: &Entry, caller: &Caller<'_>, resource_type: &str, service: &str) -> bool {
    let conditions = &entry.conditions;
    let vars = vars(caller, resource_type, service);
    field_matches(
        conditions.account.as_deref(),
        caller.account,
        &vars,
        caller.labels,
    ) && field_matches(
        conditions.resource_type.as_deref(),
        resource_type,
        &vars,
        caller.labels,
    ) && field_matches(conditions.service.as_deref(), service, &vars, caller.labels)
        && labels_match(&conditions.labels, caller.labels, &vars)
}

/// The entry that decides the caller's `registry:catalog` requests, if any.
fn catalog_entry<'a>(config: &'a Config, caller: &Caller<'_>, service: &str) -> Option<&'a Entry> {
    config.acl.iter().find(|entry| {
        let mut vars = vars(caller, "registry", service);
        vars.push(("${name}".into(), "catalog".into()));
        applies(entry, caller, "registry", service)
            && field_matches(
                entry.conditions.name.as_deref(),
                "catalog",
                &vars,
                caller.labels,
            )
    })
}

/// The rules for one caller and action: `(is_deny, names, entry)`.
fn decide(
    caller: &Caller<'_>,
    action: &str,
    entries: &[Applicable<'_>],
    problems: &mut BTreeSet<String>,
) -> Vec<(bool, Vec<NamePattern>, usize)> {
    let meets = |a: &Applicable<'_>, b: &Applicable<'_>| {
        a.names
            .iter()
            .any(|x| b.names.iter().any(|y| x.intersects(y)))
    };
    let mut rules = Vec::new();
    let mut kept: Vec<&Applicable<'_>> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if !grants(entry.entry, action) {
            continue;
        }
        let earlier = &entries[..i];
        let is_shadowed = entry.names.iter().all(|name| {
            earlier
                .iter()
                .any(|e| e.names.iter().any(|other| name.is_within(other)))
        });
        if is_shadowed {
            continue;
        }
        for refusing in earlier.iter().filter(|e| !grants(e.entry, action)) {
            if !meets(entry, refusing) {
                continue;
            }
            if let Some(before) = kept
                .iter()
                .find(|k| k.entry.number < refusing.entry.number && meets(k, refusing))
            {
                problems.insert(format!(
                    "entries {}, {} and {}: for {} and {action}, entry {} refuses names that entry \
                     {} before it grants and entry {} after it grants too; a deny-wins policy \
                     cannot refuse them for one and not the other",
                    before.entry.number,
                    refusing.entry.number,
                    entry.entry.number,
                    caller.describe(),
                    refusing.entry.number,
                    before.entry.number,
                    entry.entry.number,
                ));
                continue;
            }
            rules.push((true, refusing.names.clone(), refusing.entry.number));
        }
        rules.push((false, entry.names.clone(), entry.entry.number));
        kept.push(entry);
    }
    rules
}

/// `(is_deny, subject, what)` to action to the entries behind it.
type Emitted = BTreeMap<(bool, String, String), BTreeMap<String, BTreeSet<usize>>>;
/// `(is_deny, subject, actions)` to the patterns and entries.
type BySubject = BTreeMap<(bool, String, Vec<String>), (BTreeSet<String>, BTreeSet<usize>)>;
/// `(is_deny, patterns, actions)` to the subjects and entries.
type ByRule = BTreeMap<(bool, Vec<String>, Vec<String>), (Vec<String>, BTreeSet<usize>)>;

/// Groups `(effect, subject, what) -> actions` into few rules: same actions and
/// subjects share a rule.
fn merge(emitted: Emitted) -> Vec<Rule> {
    let mut by_subject = BySubject::new();
    for ((is_deny, subject, what), actions) in emitted {
        let entries: BTreeSet<usize> = actions.values().flatten().copied().collect();
        let mut names: Vec<String> = ACTIONS
            .iter()
            .filter(|a| actions.contains_key(**a))
            .map(|a| a.to_string())
            .collect();
        if names.len() == ACTIONS.len() || actions.contains_key("*") {
            names = vec!["*".into()];
        }
        let slot = by_subject.entry((is_deny, subject, names)).or_default();
        slot.0.insert(what);
        slot.1.extend(entries);
    }
    let mut by_rule = ByRule::new();
    for ((is_deny, subject, actions), (whats, entries)) in by_subject {
        let slot = by_rule
            .entry((is_deny, whats.into_iter().collect(), actions))
            .or_default();
        slot.0.push(subject);
        slot.1.extend(entries);
    }
    by_rule
        .into_iter()
        .map(|((is_deny, what, actions), (who, entries))| Rule {
            is_deny,
            who,
            what,
            actions,
            entries,
        })
        .collect()
}

fn quoted(text: &str) -> String {
    // JSON string escapes are TOML basic-string escapes.
    serde_json::Value::String(text.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|item| quoted(item)).collect();
    format!("[{}]", items.join(", "))
}

/// The policy file: a header naming its source, then the rules, allows first.
pub fn to_toml(translation: &Translation, source: &str) -> String {
    let mut out = format!(
        "# Translated from docker_auth's ACL in {source} by `scopegate import docker-auth`.\n\
         # Exact for the users that file names; regenerate rather than edit.\n"
    );
    let mut rules: Vec<&Rule> = translation.rules.iter().collect();
    rules.sort_by_key(|rule| rule.is_deny);
    for rule in rules {
        let entries: Vec<String> = rule
            .entries
            .iter()
            .map(|number| match translation.comments.get(number) {
                Some(comment) => format!("{number} ({comment})"),
                None => number.to_string(),
            })
            .collect();
        let _ = write!(
            out,
            "\n[{kind}]\ndescription = {description}\nwho     = {who}\nwhat    = {what}\nactions = {actions}\n",
            kind = if rule.is_deny { "[deny]" } else { "[allow]" },
            description = quoted(&format!(
                "docker_auth entr{} {}",
                if entries.len() == 1 { "y" } else { "ies" },
                entries.join(", ")
            )),
            who = list(&rule.who),
            what = list(&rule.what),
            actions = list(&rule.actions),
        );
    }
    out
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a panic is how a test fails"
)]
mod tests {
    use super::super::config;
    use super::*;

    fn translated(yaml: &str, service: Option<&str>) -> Result<Vec<String>, Vec<String>> {
        let config = config::parse(yaml).unwrap();
        translate(&config, service).map(|t| {
            t.rules
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {} {}",
                        if r.is_deny { "deny" } else { "allow" },
                        r.who.join(","),
                        r.what.join(","),
                        r.actions.join(",")
                    )
                })
                .collect()
        })
    }

    const USERS: &str = r#"
users:
  admin: {password: "$2y$05$x"}
  test: {password: "$2y$05$x"}
  dave: {password: "$2y$05$x", labels: {group: [devs]}}
  "": {}
"#;

    #[test]
    fn the_common_patterns_translate() {
        let yaml = format!(
            "{USERS}acl:
  - match: {{account: admin}}
    actions: [\"*\"]
  - match: {{account: test, name: \"test-*\"}}
    actions: [\"*\"]
  - match: {{account: test}}
    actions: []
  - match: {{account: \"/.+/\", name: \"${{account}}/*\"}}
    actions: [\"*\"]
  - match: {{labels: {{group: devs}}, name: \"${{labels:group}}/*\"}}
    actions: [push, pull]
  - match: {{account: \"/.+/\", type: registry, name: catalog}}
    actions: [\"*\"]
  - match: {{account: \"/.+/\"}}
    actions: [pull]
  - match: {{account: \"\", name: hello-world}}
    actions: [pull]
"
        );
        let rules = translated(&yaml, None).unwrap();
        assert_eq!(
            rules,
            [
                "allow user:admin registry:catalog,repository:** *",
                "allow user:dave registry:catalog,repository:{account}/* *",
                "allow user:dave repository:** pull",
                "allow user:dave repository:devs/* pull,push",
                "allow anonymous repository:hello-world pull",
                "allow user:test repository:test-* *",
            ],
            "{rules:#?}"
        );
        assert!(
            rules.contains(&"allow user:test repository:test-* *".to_string()),
            "{rules:#?}"
        );
        assert!(
            rules.contains(&"allow anonymous repository:hello-world pull".to_string()),
            "{rules:#?}"
        );
        assert!(rules.iter().all(|r| !r.starts_with("deny")), "{rules:#?}");
        assert!(
            rules
                .iter()
                .all(|r| !(r.contains("user:test") && r.contains("**"))),
            "test is denied the rest: {rules:#?}"
        );
    }

    #[test]
    fn the_anonymous_caller_has_the_labels_of_its_entry_and_bad_names_are_refused() {
        let yaml = "users:\n  \"\": {labels: {team: [guests]}}\nacl:\n  - match: {labels: {team: guests}, name: \"${labels:team}/*\"}\n    actions: [pull]\n";
        let rules = translated(yaml, None).unwrap();
        assert_eq!(rules, ["allow anonymous repository:guests/* pull"]);
        let problems = translated(
            "users:\n  Alice: {password: x}\n  bob: {password: x}\nacl:\n  - match: {name: \"/dev/\"}\n    actions: [pull]\n",
            None,
        )
        .unwrap_err();
        // One report names every problem: the name, and the entry for the valid user.
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("entry 1: for user bob, the name /dev/"),
            "{problems:?}"
        );
        let problems = &problems[1..];
        assert!(
            problems[0].starts_with("user \"Alice\": not a valid account name"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_earlier_refusal_becomes_a_deny_when_nothing_before_it_grants_there() {
        let yaml = format!(
            "{USERS}acl:
  - match: {{account: dave, name: \"secret/*\"}}
    actions: [pull]
  - match: {{account: \"/.+/\"}}
    actions: [pull, push]
"
        );
        let rules = translated(&yaml, None).unwrap();
        assert_eq!(
            rules,
            [
                "allow user:admin,user:dave,user:test repository:** pull,push",
                "allow user:dave repository:secret/* pull",
                "deny user:dave repository:secret/* push",
            ],
            "{rules:#?}"
        );
    }

    #[test]
    fn an_order_with_no_deny_wins_equivalent_is_refused_with_its_entries() {
        let yaml = format!(
            "{USERS}acl:
  - match: {{account: dave, name: \"secret/app\"}}
    actions: [push]
  - match: {{account: dave, name: \"secret/*\"}}
    actions: []
  - match: {{account: dave}}
    actions: [push]
"
        );
        let problems = translated(&yaml, None).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].starts_with("entries 1, 2 and 3: for user dave and push"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn what_a_policy_cannot_see_is_refused_with_entry_numbers() {
        let yaml = format!(
            "{USERS}acl:
  - match: {{ip: \"127.0.0.0/8\"}}
    actions: [\"*\"]
  - match: {{account: admin, name: \"/team/\"}}
    actions: [pull]
  - match: {{service: other}}
    actions: [pull]
"
        );
        let problems = translated(&yaml, None).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("entry 1: matches the client's address")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("entry 3: matches on `service`")),
            "{problems:#?}"
        );
        let problems = translated(
            &yaml.replace(
                "  - match: {ip: \"127.0.0.0/8\"}\n    actions: [\"*\"]\n",
                "",
            ),
            Some("reg"),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].starts_with("entry 1: for user admin, the name /team/: only ^NAME$"),
            "{}",
            problems[0]
        );
        let problems = translated(
            &format!("{USERS}acl:\n  - match: {{account: \"/${{name}}/\"}}\n    actions: [pull]\n"),
            None,
        )
        .unwrap_err();
        assert_eq!(
            problems,
            ["entry 1: uses ${name}, which the importer does not translate"]
        );
        // With --service, entries for another service are left out.
        let rules = translated(
            &format!("{USERS}acl:\n  - match: {{service: other}}\n    actions: [pull]\n  - match: {{service: reg, account: admin}}\n    actions: [push]\n"),
            Some("reg"),
        )
        .unwrap();
        assert_eq!(rules, ["allow user:admin repository:** push"]);
    }

    /// A pool of conditions the random ACLs below are drawn from.
    const ACCOUNTS: [Option<&str>; 7] = [
        None,
        Some("alice"),
        Some("bob"),
        Some("/.+/"),
        Some(""),
        Some("/^a/"),
        Some("/^(alice|carol)$/"),
    ];
    const NAMES: [Option<&str>; 11] = [
        None,
        Some("alice/*"),
        Some("${account}/*"),
        Some("test-*"),
        Some("web/*"),
        Some("${labels:team}/*"),
        Some("/^lib\\//"),
        Some("hello"),
        Some("*"),
        Some("/^${account}-.*$/"),
        Some("catalog"),
    ];
    const TYPES: [Option<&str>; 3] = [None, Some("repository"), Some("registry")];
    const LABELS: [Option<&str>; 3] = [None, Some("web"), Some("/^w/")];
    const ACTIONS_POOL: [&str; 6] = [
        "[]",
        "[\"*\"]",
        "[pull]",
        "[push, pull]",
        "[delete]",
        "[pull, \"*\"]",
    ];

    fn yaml_value(value: &str) -> String {
        serde_json::Value::String(value.to_string()).to_string()
    }

    /// Random ACLs over known users: every translation that succeeds passes the
    /// cases generated from docker_auth's semantics (the translator and the evaluator
    /// agree), and most of them succeed.
    #[test]
    fn translations_agree_with_docker_auth_on_random_acls() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(24);
        let users = "users:\n  alice: {password: x}\n  bob: {password: x, labels: {team: [web]}}\n  carol: {password: x, labels: {team: [ops, web]}}\n  \"\": {}\n";
        let (mut translated_count, mut refused_count) = (0, 0);
        for round in 0..400 {
            let mut yaml = format!("{users}acl:\n");
            for _ in 0..rng.gen_range(1..=8) {
                let mut conditions = Vec::new();
                fn pick(
                    rng: &mut rand::rngs::StdRng,
                    pool: &[Option<&'static str>],
                ) -> Option<&'static str> {
                    pool[rng.gen_range(0..pool.len())]
                }
                if let Some(account) = pick(&mut rng, &ACCOUNTS) {
                    conditions.push(format!("account: {}", yaml_value(account)));
                }
                if let Some(name) = pick(&mut rng, &NAMES) {
                    conditions.push(format!("name: {}", yaml_value(name)));
                }
                if let Some(kind) = pick(&mut rng, &TYPES) {
                    conditions.push(format!("type: {kind}"));
                }
                if let Some(label) = pick(&mut rng, &LABELS) {
                    conditions.push(format!("labels: {{team: {}}}", yaml_value(label)));
                }
                let actions = ACTIONS_POOL[rng.gen_range(0..ACTIONS_POOL.len())];
                yaml.push_str(&format!(
                    "  - match: {{{}}}\n    actions: {actions}\n",
                    conditions.join(", ")
                ));
            }
            let config = config::parse(&yaml).unwrap();
            let Ok(translation) = translate(&config, None) else {
                refused_count += 1;
                continue;
            };
            translated_count += 1;
            let policy_text = to_toml(&translation, "random.yml");
            let policy =
                scopegate_policy::Policy::from_toml([("imported.toml", policy_text.as_str())])
                    .unwrap_or_else(|error| {
                        panic!("round {round}: {error}\n{policy_text}\n{yaml}")
                    });
            let cases_text = super::super::cases::generate(&config, None).unwrap();
            let cases =
                scopegate_policy::PolicyTests::from_toml("tests/imported.toml", &cases_text)
                    .unwrap();
            let report = cases.run(&policy);
            let failures: Vec<String> = report
                .results
                .iter()
                .filter(|result| !result.is_passed())
                .map(ToString::to_string)
                .collect();
            assert!(
                failures.is_empty(),
                "round {round}:\n{yaml}\n{policy_text}\n{}",
                failures.join("\n")
            );
        }
        // The pool reaches orders with no deny-wins equivalent too (with this seed).
        assert!(
            translated_count > 300 && refused_count > 0,
            "{translated_count} translated, {refused_count} refused"
        );
    }
}
