//! Property tests: the scope printer and parser agree, and evaluation is monotone in the
//! way the policy language promises (grants never exceed requests, denies only take away,
//! allows only add).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use scopegate_policy::{parse_scopes, Caller, CredentialKind, Grant, Policy, Scope, ScopeLimit};

// ---- scope grammar ----

fn path_component() -> impl Strategy<Value = String> {
    let run = "[a-z0-9]{1,6}";
    let separator = prop_oneof![Just("."), Just("_"), Just("__"), Just("-"), Just("--")];
    (run, prop::collection::vec((separator, run), 0..3)).prop_map(|(first, rest)| {
        let mut component = first;
        for (separator, run) in rest {
            component.push_str(separator);
            component.push_str(&run);
        }
        component
    })
}

fn name() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just(None),
        Just(Some("localhost:5000".to_owned())),
        Just(Some("registry.example.com".to_owned())),
        Just(Some("[::1]:443".to_owned())),
    ];
    (host, prop::collection::vec(path_component(), 1..5)).prop_map(|(host, path)| {
        let path = path.join("/");
        match host {
            Some(host) => format!("{host}/{path}"),
            None => path,
        }
    })
}

fn action() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("pull".to_owned()),
        Just("push".to_owned()),
        Just("delete".to_owned()),
        Just("*".to_owned()),
        "[a-z]{1,8}",
    ]
}

fn scope_text() -> impl Strategy<Value = String> {
    let resource_type = prop_oneof![
        Just("repository".to_owned()),
        Just("registry".to_owned()),
        "[a-z0-9]{1,8}"
    ];
    let class = prop::option::of("[a-z0-9]{1,6}");
    (
        resource_type,
        class,
        name(),
        prop::collection::vec(action(), 1..5),
    )
        .prop_map(|(resource_type, class, name, actions)| match class {
            Some(class) => format!("{resource_type}({class}):{name}:{}", actions.join(",")),
            None => format!("{resource_type}:{name}:{}", actions.join(",")),
        })
}

proptest! {
    #[test]
    fn parse_print_parse_is_identity(text in scope_text()) {
        let scope = Scope::parse(&text).unwrap();
        let printed = scope.to_string();
        let again = Scope::parse(&printed).unwrap();
        prop_assert_eq!(&again, &scope);
        prop_assert_eq!(again.to_string(), printed);
    }

    #[test]
    fn lists_print_back_to_themselves(texts in prop::collection::vec(scope_text(), 0..6)) {
        let values: Vec<&str> = texts.iter().map(String::as_str).collect();
        let scopes = parse_scopes(values).unwrap();
        let printed: Vec<String> = scopes.iter().map(ToString::to_string).collect();
        let joined = printed.join(" ");
        if joined.len() <= 1024 {
            let again = parse_scopes([joined.as_str()]).unwrap();
            prop_assert_eq!(again, scopes);
        }
    }

    #[test]
    fn anything_that_parses_prints_stably(text in "\\PC{0,40}") {
        if let Ok(scope) = Scope::parse(&text) {
            let printed = scope.to_string();
            prop_assert_eq!(Scope::parse(&printed).unwrap(), scope);
        }
    }

    #[test]
    fn limits_round_trip(pattern in prop::sample::select(PATTERNS), actions in prop::sample::subsequence(vec!["pull", "push", "delete", "*"], 1..4)) {
        let actions = if pattern.starts_with("registry") { vec!["*"] } else { actions };
        let limit = ScopeLimit::parse(&format!("{pattern}:{}", actions.join(","))).unwrap();
        prop_assert_eq!(ScopeLimit::parse(&limit.to_string()).unwrap(), limit);
    }
}

// ---- evaluation ----

const SUBJECTS: &[&str] = &[
    "anyone",
    "anonymous",
    "authenticated",
    "group:g1",
    "group:g2",
    "user:alice",
    "user:bob",
    "kind:deploy",
    "kind:personal",
    "kind:password",
];
const PATTERNS: &[&str] = &[
    "repository:**",
    "repository:a/**",
    "repository:a/*",
    "repository:a/b",
    "repository:*/b",
    "repository:{account}/**",
    "repository:a-*/**",
    "repository:a/**/c",
    "registry:catalog",
];
const NAMES: &[&str] = &[
    "a", "a/b", "a/b/c", "a/c", "alice/x", "bob", "a-1/x", "x/b", "catalog",
];
const ACCOUNTS: &[Option<&str>] = &[None, Some("alice"), Some("bob"), Some("carol"), Some("a")];

#[derive(Debug, Clone)]
struct RuleSpec {
    is_deny: bool,
    who: Vec<&'static str>,
    what: &'static str,
    actions: Vec<&'static str>,
}

impl RuleSpec {
    fn toml(&self) -> String {
        let list = |items: &[&str]| {
            items
                .iter()
                .map(|i| format!("{i:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let actions = if self.what.starts_with("registry") {
            vec!["*"]
        } else {
            self.actions.clone()
        };
        format!(
            "[[{}]]\nwho = [{}]\nwhat = [{:?}]\nactions = [{}]\n\n",
            if self.is_deny { "deny" } else { "allow" },
            list(&self.who),
            self.what,
            list(&actions),
        )
    }
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    (
        any::<bool>(),
        prop::sample::subsequence(SUBJECTS.to_vec(), 1..3),
        prop::sample::select(PATTERNS),
        prop::sample::subsequence(vec!["pull", "push", "delete", "*"], 1..4),
    )
        .prop_map(|(is_deny, who, what, actions)| RuleSpec {
            is_deny,
            who,
            what,
            actions,
        })
}

fn policy(rules: &[RuleSpec]) -> Policy {
    let mut text = String::from("[groups]\ng1 = [\"alice\"]\ng2 = []\n\n");
    for rule in rules {
        text.push_str(&rule.toml());
    }
    Policy::from_toml([("p.toml", text.as_str())]).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[derive(Debug, Clone)]
struct Request {
    account: Option<&'static str>,
    groups: Vec<String>,
    kind: CredentialKind,
    scopes: Vec<String>,
    limits: Option<Vec<String>>,
}

fn request() -> impl Strategy<Value = Request> {
    let scope = (
        prop::sample::select(NAMES),
        prop::bool::ANY,
        prop::sample::subsequence(vec!["pull", "push", "delete", "*", "frob"], 1..4),
    )
        .prop_map(|(name, is_registry, actions)| {
            let resource_type = if is_registry {
                "registry"
            } else {
                "repository"
            };
            format!("{resource_type}:{name}:{}", actions.join(","))
        });
    let limit = (
        prop::sample::select(PATTERNS),
        prop::sample::subsequence(vec!["pull", "push", "delete", "*"], 1..4),
    )
        .prop_map(|(pattern, actions)| {
            let actions = if pattern.starts_with("registry") {
                vec!["*"]
            } else {
                actions
            };
            format!("{pattern}:{}", actions.join(","))
        });
    (
        prop::sample::select(ACCOUNTS),
        prop::sample::subsequence(
            vec!["g1".to_owned(), "g2".to_owned(), "other".to_owned()],
            0..3,
        ),
        prop::sample::select(CredentialKind::ALL.to_vec()),
        prop::collection::vec(scope, 1..4),
        prop::option::of(prop::collection::vec(limit, 0..3)),
    )
        .prop_map(|(account, groups, kind, scopes, limits)| Request {
            account,
            groups,
            kind,
            scopes,
            limits,
        })
}

fn evaluate(policy: &Policy, request: &Request) -> Grant {
    let caller = Caller {
        account: request.account,
        groups: &request.groups,
        kind: Some(request.kind),
        workload: None,
    };
    let scopes = parse_scopes(request.scopes.iter().map(String::as_str)).unwrap();
    let limits: Option<Vec<ScopeLimit>> = request
        .limits
        .as_ref()
        .map(|l| l.iter().map(|t| ScopeLimit::parse(t).unwrap()).collect());
    policy.evaluate(&caller, &scopes, limits.as_deref())
}

/// (type, name) -> concrete actions, `*` expanded.
fn concrete(grant: &Grant) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut map: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for access in &grant.access {
        let entry = map
            .entry((access.resource_type.clone(), access.name.clone()))
            .or_default();
        for action in &access.actions {
            if action == "*" && access.resource_type == "repository" {
                entry.extend(["pull", "push", "delete"].map(String::from));
            } else {
                entry.insert(action.clone());
            }
        }
    }
    map
}

fn is_subset(
    smaller: &BTreeMap<(String, String), BTreeSet<String>>,
    larger: &BTreeMap<(String, String), BTreeSet<String>>,
) -> bool {
    smaller
        .iter()
        .all(|(resource, actions)| larger.get(resource).is_some_and(|l| actions.is_subset(l)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_grant_is_never_larger_than_the_request(rules in prop::collection::vec(rule(), 0..8), request in request()) {
        let grant = evaluate(&policy(&rules), &request);
        let scopes = parse_scopes(request.scopes.iter().map(String::as_str)).unwrap();
        for access in &grant.access {
            prop_assert!(!access.actions.is_empty());
            let asked = scopes
                .iter()
                .find(|s| s.resource_type() == access.resource_type && s.name() == access.name)
                .expect("granted a resource that was not requested");
            let asked: Vec<&str> = asked.actions().collect();
            for action in &access.actions {
                prop_assert!(
                    asked.contains(&action.as_str()) || asked.contains(&"*"),
                    "granted {action} on {}, asked {asked:?}", access.name
                );
            }
        }
        if request.limits.as_ref().is_some_and(Vec::is_empty) {
            prop_assert!(grant.is_empty(), "empty limits must grant nothing");
        }
    }

    #[test]
    fn adding_a_deny_never_adds_access(rules in prop::collection::vec(rule(), 0..8), extra in rule(), request in request()) {
        let deny = RuleSpec { is_deny: true, ..extra };
        let before = concrete(&evaluate(&policy(&rules), &request));
        let mut more = rules.clone();
        more.push(deny.clone());
        let after = concrete(&evaluate(&policy(&more), &request));
        prop_assert!(is_subset(&after, &before), "before {before:?}\nafter {after:?}");
        // Deny wins wherever it is written.
        let mut first = vec![deny];
        first.extend(rules);
        prop_assert_eq!(concrete(&evaluate(&policy(&first), &request)), after);
    }

    #[test]
    fn adding_an_allow_never_removes_access(rules in prop::collection::vec(rule(), 0..8), extra in rule(), request in request()) {
        let before = concrete(&evaluate(&policy(&rules), &request));
        let mut more = rules;
        more.push(RuleSpec { is_deny: false, ..extra });
        let after = concrete(&evaluate(&policy(&more), &request));
        prop_assert!(is_subset(&before, &after), "before {before:?}\nafter {after:?}");
    }

    #[test]
    fn a_matching_deny_always_wins(rules in prop::collection::vec(rule(), 0..8), request in request(), action in prop::sample::select(vec!["pull", "push", "delete"])) {
        let mut more = rules;
        more.push(RuleSpec { is_deny: true, who: vec!["anyone"], what: "repository:**", actions: vec![action] });
        let grant = concrete(&evaluate(&policy(&more), &request));
        for ((resource_type, _), actions) in &grant {
            if resource_type == "repository" {
                prop_assert!(!actions.contains(action));
            }
        }
    }

    #[test]
    fn compiled_policies_decide_the_same(rules in prop::collection::vec(rule(), 0..8), request in request()) {
        let policy = policy(&rules);
        let decoded = Policy::from_compiled(&policy.to_compiled()).unwrap();
        prop_assert_eq!(evaluate(&policy, &request), evaluate(&decoded, &request));
    }
}

// ---- workloads (OIDC callers) ----

const WORKLOAD_SUBJECTS: &[&str] = &["oidc:gh", "oidc:lab", "kind:oidc"];
const WORKLOAD_PATTERNS: &[&str] = &[
    "repository:{claim:repository}/**",
    "repository:{claim:repository}",
    "repository:mirror/{claim:repository}/*",
    "repository:a/**",
    "repository:**",
];
const CONDITIONS: &[&str] = &[
    "ref = \"main\"",
    "ref = \"*\"",
    "owner = \"a\", ref = \"main\"",
    "repository = \"a/**\"",
];
const CLAIM_VALUES: &[Option<&str>] = &[
    None,
    Some("a"),
    Some("a/b"),
    Some("A/b"),
    Some("main"),
    Some("x/y/z"),
];

fn workload_rules() -> impl Strategy<Value = String> {
    let allow = (
        prop::sample::subsequence(WORKLOAD_SUBJECTS.to_vec(), 1..3),
        prop::option::of(prop::sample::select(CONDITIONS)),
        prop::sample::select(WORKLOAD_PATTERNS),
        prop::sample::subsequence(vec!["pull", "push", "delete"], 1..3),
    )
        .prop_map(|(who, when, what, actions)| {
            let when = when
                .map(|w| format!("when = {{ {w} }}\n"))
                .unwrap_or_default();
            format!("[[allow]]\nwho = {who:?}\n{when}what = [{what:?}]\nactions = {actions:?}\n\n")
        });
    let deny = (
        prop::sample::subsequence(
            vec![
                "oidc:gh",
                "kind:oidc",
                "anyone",
                "anonymous",
                "authenticated",
            ],
            1..3,
        ),
        prop::sample::select(&PATTERNS[..8]),
        prop::sample::subsequence(vec!["pull", "push", "delete"], 1..3),
    )
        .prop_map(|(who, what, actions)| {
            format!("[[deny]]\nwho = {who:?}\nwhat = [{what:?}]\nactions = {actions:?}\n\n")
        });
    (
        prop::collection::vec(allow, 0..5),
        prop::collection::vec(deny, 0..3),
        any::<bool>(),
    )
        .prop_map(|(allows, denies, denies_first)| {
            let (first, second) = if denies_first {
                (denies, allows)
            } else {
                (allows, denies)
            };
            first.concat() + &second.concat()
        })
}

fn workload_policy(rules: &str) -> Policy {
    let issuers = "[[issuer]]\nname = \"gh\"\nurl = \"https://gh.example\"\naudience = \"r\"\n\n[[issuer]]\nname = \"lab\"\nurl = \"https://lab.example\"\naudience = \"r\"\n\n";
    let text = format!("{issuers}{rules}");
    Policy::from_toml([("ci.toml", text.as_str())]).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn claims() -> impl Strategy<Value = serde_json::Map<String, serde_json::Value>> {
    (
        prop::sample::select(CLAIM_VALUES),
        prop::sample::select(CLAIM_VALUES),
        prop::sample::select(CLAIM_VALUES),
    )
        .prop_map(|(repository, owner, reference)| {
            let mut map = serde_json::Map::new();
            for (name, value) in [
                ("repository", repository),
                ("owner", owner),
                ("ref", reference),
            ] {
                if let Some(value) = value {
                    map.insert(name.into(), value.into());
                }
            }
            map
        })
}

fn workload_grant(
    policy: &Policy,
    issuer: &str,
    claims: &serde_json::Map<String, serde_json::Value>,
    scopes: &[String],
) -> Grant {
    let caller = Caller {
        account: Some("gh:sub"),
        groups: &[],
        kind: None,
        workload: Some(scopegate_policy::Workload { issuer, claims }),
    };
    let scopes = parse_scopes(scopes.iter().map(String::as_str)).unwrap();
    policy.evaluate(&caller, &scopes, None)
}

fn workload_scopes() -> impl Strategy<Value = Vec<String>> {
    let name = prop::sample::select(vec![
        "a",
        "a/b",
        "a/b/c",
        "mirror/a/b/c",
        "x/y/z",
        "x/y/z/w",
    ]);
    let scope = (
        name,
        prop::sample::subsequence(vec!["pull", "push", "delete", "*"], 1..3),
    )
        .prop_map(|(name, actions)| format!("repository:{name}:{}", actions.join(",")));
    prop::collection::vec(scope, 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_workload_grant_is_never_larger_than_the_request(
        rules in workload_rules(),
        issuer in prop::sample::select(vec!["gh", "lab", "nobody"]),
        claims in claims(),
        scopes in workload_scopes(),
    ) {
        let grant = workload_grant(&workload_policy(&rules), issuer, &claims, &scopes);
        let asked = concrete(&Grant {
            access: parse_scopes(scopes.iter().map(String::as_str)).unwrap().iter().map(|s| scopegate_policy::GrantedAccess {
                resource_type: s.resource_type().to_owned(),
                name: s.name().to_owned(),
                actions: s.actions().map(str::to_owned).collect(),
            }).collect(),
            ..Grant::default()
        });
        prop_assert!(is_subset(&concrete(&grant), &asked), "{grant:?}");
        // Claims must be valid paths to stand for one: an uppercase one never grants.
        for access in &grant.access {
            prop_assert!(!access.name.contains('A'));
        }
    }

    #[test]
    fn for_workloads_deny_wins_and_only_takes_away(
        rules in workload_rules(),
        deny_who in prop::sample::select(vec!["oidc:gh", "kind:oidc", "anyone"]),
        deny_what in prop::sample::select(&PATTERNS[..8]),
        claims in claims(),
        scopes in workload_scopes(),
    ) {
        let deny = format!("[[deny]]\nwho = [{deny_who:?}]\nwhat = [{deny_what:?}]\nactions = [\"push\"]\n\n");
        let before = concrete(&workload_grant(&workload_policy(&rules), "gh", &claims, &scopes));
        let after = concrete(&workload_grant(&workload_policy(&format!("{rules}{deny}")), "gh", &claims, &scopes));
        prop_assert!(is_subset(&after, &before));
        let first = concrete(&workload_grant(&workload_policy(&format!("{deny}{rules}")), "gh", &claims, &scopes));
        prop_assert_eq!(first, after);
    }

    #[test]
    fn a_workload_gets_from_rules_for_others_exactly_what_an_anonymous_caller_gets(
        rules in prop::collection::vec(rule(), 0..8),
        issuer in prop::sample::select(vec!["gh", "nobody"]),
        claims in claims(),
        request in request(),
    ) {
        // Rules that name no workload subject (`anyone`, `anonymous`, accounts, groups,
        // kinds): a workload's grant is the anonymous caller's, so it never gets more from
        // `anyone` than an anonymous caller while escaping a deny aimed at `anonymous`.
        let text: String = rules.iter().map(RuleSpec::toml).collect();
        let policy = workload_policy(&format!("[groups]\ng1 = [\"alice\"]\ng2 = []\n\n{text}"));
        let anonymous = Request { account: None, ..request.clone() };
        let scopes = &request.scopes;
        let as_workload = workload_grant(&policy, issuer, &claims, scopes);
        let as_anonymous = evaluate(&policy, &Request { limits: None, ..anonymous });
        prop_assert_eq!(concrete(&as_workload), concrete(&as_anonymous));
    }

    #[test]
    fn a_deny_for_anonymous_callers_binds_workloads(
        rules in workload_rules(),
        deny_what in prop::sample::select(&PATTERNS[..8]),
        claims in claims(),
        scopes in workload_scopes(),
    ) {
        let deny = format!("[[deny]]\nwho = [\"anonymous\"]\nwhat = [{deny_what:?}]\nactions = [\"pull\", \"push\", \"delete\"]\n\n");
        let policy = workload_policy(&format!("{rules}{deny}"));
        let denied = Policy::from_toml([("d.toml", format!("[[allow]]\nwho = [\"anyone\"]\nwhat = [{deny_what:?}]\nactions = [\"*\"]\n").as_str())]).unwrap();
        let grant = workload_grant(&policy, "gh", &claims, &scopes);
        let covered = concrete(&workload_grant(&denied, "gh", &claims, &scopes));
        for resource in concrete(&grant).keys() {
            prop_assert!(!covered.contains_key(resource), "{resource:?} escaped the deny: {grant:?}");
        }
    }

    #[test]
    fn accounts_never_get_what_only_workload_rules_give(
        rules in workload_rules(),
        request in request(),
    ) {
        // Strip the denies' non-workload subjects' effect: with only workload allows, an
        // account caller of any kind (oidc included) is granted nothing.
        let allows_only: String = rules
            .split("\n\n")
            .filter(|rule| rule.starts_with("[[allow]]"))
            .map(|rule| format!("{rule}\n\n"))
            .collect();
        let grant = evaluate(&workload_policy(&allows_only), &request);
        prop_assert!(grant.is_empty(), "{grant:?}");
    }
}
