//! Evaluation: per requested scope, (union of matching allows) minus (union of matching
//! denies), intersected with the request and with the credential's limits.

use crate::action::{ActionSet, ResourceType};
use crate::grant::{Grant, GrantedAccess, RuleRef};
use crate::limit::ScopeLimit;
use crate::pattern::account_segment;
use crate::policy::{Policy, Rule};
use crate::scope::Scope;
use crate::source::Effect;
use crate::subject::{Caller, CredentialKind, Subject};
use serde_json::{Map, Value};

/// The caller, resolved against one policy.
pub(crate) struct CallerContext<'c> {
    pub(crate) account: Option<&'c str>,
    /// The account as `{account}` may match it.
    pub(crate) account_segment: Option<&'c str>,
    /// Static and store groups the policy knows, sorted.
    pub(crate) groups: Vec<u32>,
    pub(crate) kind: Option<CredentialKind>,
    /// A workload's claims and the index of its issuer (`None`: not declared, so no
    /// `oidc:NAME` subject matches).
    pub(crate) workload: Option<WorkloadContext<'c>>,
}

#[derive(Clone, Copy)]
pub(crate) struct WorkloadContext<'c> {
    pub(crate) issuer: Option<u32>,
    pub(crate) issuer_name: &'c str,
    pub(crate) claims: &'c Map<String, Value>,
    /// The person the token identifies, as `{person}` stands for it (the issuer's
    /// `person` claim); `None` when the issuer names no person or the claim does not.
    pub(crate) person: Option<&'c str>,
}

/// A rule whose subject and pattern matched one requested resource.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleMatch {
    pub(crate) rule: u32,
    pub(crate) pattern: u32,
    /// The concrete actions the rule names for this resource's type.
    pub(crate) actions: ActionSet,
}

/// The decision for one requested scope, with everything that led to it.
pub(crate) struct ScopeDecision {
    pub(crate) resource_type: Option<ResourceType>,
    /// Concrete requested actions (`*` expanded).
    pub(crate) requested: ActionSet,
    pub(crate) allowed: ActionSet,
    pub(crate) denied: ActionSet,
    pub(crate) granted: ActionSet,
    /// Matching rules in policy order.
    pub(crate) matches: Vec<RuleMatch>,
    /// Indexes of the limits that matched; `None` when the credential has no limits.
    pub(crate) matched_limits: Option<Vec<usize>>,
}

impl Policy {
    /// Decides what `caller` gets for each of `requested`.
    ///
    /// `limits` are the credential's own scope limits: `None` for no limits; `Some` narrows
    /// every scope to what a matching limit lists, and a scope no limit matches gets
    /// nothing. Unknown types and actions are never granted. The result never holds more
    /// than was requested. Never fails: anything unexpected grants less, not more.
    pub fn evaluate(
        &self,
        caller: &Caller<'_>,
        requested: &[Scope],
        limits: Option<&[ScopeLimit]>,
    ) -> Grant {
        let context = self.context(caller);
        let mut grant = Grant::default();
        let mut matched: Vec<u32> = Vec::new();
        let mut granting_allows: Vec<u32> = Vec::new();
        for scope in requested {
            let decision = self.decide(&context, scope, limits);
            for m in &decision.matches {
                if m.actions.intersects(decision.requested) {
                    matched.push(m.rule);
                }
                if m.actions.intersects(decision.granted) && self.is_allow(m.rule) {
                    granting_allows.push(m.rule);
                }
            }
            if let Some(resource_type) = decision.resource_type {
                if !decision.granted.is_empty() {
                    grant.access.push(GrantedAccess {
                        resource_type: resource_type.as_str().to_owned(),
                        name: scope.name().to_owned(),
                        actions: granted_names(resource_type, scope, decision.granted),
                    });
                }
            }
        }
        matched.sort_unstable();
        matched.dedup();
        granting_allows.sort_unstable();
        granting_allows.dedup();
        grant.matched_rules = matched
            .iter()
            .filter_map(|id| self.rules.get(*id as usize))
            .map(|rule| self.rule_ref(rule))
            .collect();
        for rule in granting_allows
            .iter()
            .filter_map(|id| self.rules.get(*id as usize))
        {
            for (key, value) in rule.claims.iter().flatten() {
                grant
                    .claims
                    .entry(key.clone())
                    .or_insert_with(|| value.clone());
            }
        }
        grant
    }

    pub(crate) fn context<'c>(&self, caller: &Caller<'c>) -> CallerContext<'c> {
        if let Some(workload) = caller.workload {
            let issuer = self.issuer_id(workload.issuer);
            // A person named like a namespace the policy hands out (`platform`
            // for `platform/**`) would own it through `{person}/**`: such a
            // name gets no personal namespace, as no account may be so named.
            // A compiled policy holds every rule that could match the request's
            // names, so this sees every rule reserving the one `{person}` could
            // reach.
            let person = issuer
                .and_then(|id| self.issuers.get(id as usize))
                .and_then(|issuer| issuer.person_name(workload.claims))
                .filter(|name| !self.is_namespace(name));
            return CallerContext {
                account: caller.account,
                account_segment: None,
                groups: Vec::new(),
                kind: Some(CredentialKind::Oidc),
                workload: Some(WorkloadContext {
                    issuer,
                    issuer_name: workload.issuer,
                    claims: workload.claims,
                    person,
                }),
            };
        }
        let Some(account) = caller.account else {
            return CallerContext {
                account: None,
                account_segment: None,
                groups: Vec::new(),
                kind: None,
                workload: None,
            };
        };
        let mut groups: Vec<u32> = self.static_groups(account).to_vec();
        groups.extend(caller.groups.iter().filter_map(|name| self.group_id(name)));
        groups.sort_unstable();
        groups.dedup();
        CallerContext {
            account: Some(account),
            account_segment: account_segment(Some(account)),
            groups,
            // Only a verified workload is of kind oidc.
            kind: caller.kind.filter(|kind| *kind != CredentialKind::Oidc),
            workload: None,
        }
    }

    pub(crate) fn decide(
        &self,
        context: &CallerContext<'_>,
        scope: &Scope,
        limits: Option<&[ScopeLimit]>,
    ) -> ScopeDecision {
        let Some(resource_type) = scope.known_type() else {
            return ScopeDecision {
                resource_type: None,
                requested: ActionSet::EMPTY,
                allowed: ActionSet::EMPTY,
                denied: ActionSet::EMPTY,
                granted: ActionSet::EMPTY,
                matches: Vec::new(),
                matched_limits: limits.map(|_| Vec::new()),
            };
        };
        let requested = resource_type.resolve(scope.known_actions());
        let name_segments: Vec<&str> = scope.name().split('/').collect();
        let account = context.account_segment;
        let claims = context.workload.map(|w| w.claims);
        let person = context.workload.and_then(|w| w.person);

        let mut matches = Vec::new();
        self.index(resource_type)
            .candidates(&name_segments, account, &mut |entry| {
                let Some(rule) = self.rules.get(entry.rule as usize) else {
                    return;
                };
                let is_match = self.is_subject_match(context, rule)
                    && is_condition_met(rule, claims)
                    && rule
                        .what
                        .get(entry.pattern as usize)
                        .is_some_and(|p| p.matches_with(&name_segments, account, claims, person));
                if is_match {
                    matches.push(RuleMatch {
                        rule: entry.rule,
                        pattern: entry.pattern,
                        actions: entry.actions,
                    });
                }
            });
        matches.sort_unstable_by_key(|m| (m.rule, m.pattern));

        let mut allowed = ActionSet::EMPTY;
        let mut denied = ActionSet::EMPTY;
        for m in &matches {
            match self.rules.get(m.rule as usize).map(|r| r.effect) {
                Some(Effect::Allow) => allowed = allowed.union(m.actions),
                Some(Effect::Deny) => denied = denied.union(m.actions),
                None => {}
            }
        }

        let (within_limits, matched_limits) = match limits {
            None => (resource_type.every_action(), None),
            Some(limits) => {
                let mut open = ActionSet::EMPTY;
                let mut matched = Vec::new();
                for (i, limit) in limits.iter().enumerate() {
                    if limit.resource_type() == resource_type
                        && limit.pattern().matches(&name_segments, account)
                    {
                        open = open.union(limit.resolved());
                        matched.push(i);
                    }
                }
                (open, Some(matched))
            }
        };

        let granted = allowed
            .difference(denied)
            .intersection(requested)
            .intersection(within_limits);
        ScopeDecision {
            resource_type: Some(resource_type),
            requested,
            allowed,
            denied,
            granted,
            matches,
            matched_limits,
        }
    }

    pub(crate) fn is_subject_match(&self, context: &CallerContext<'_>, rule: &Rule) -> bool {
        let is_workload = context.workload.is_some();
        let is_account = context.account.is_some() && !is_workload;
        rule.who.iter().any(|subject| match subject {
            Subject::Anyone => true,
            // Every caller without an account of the store: no credentials, or a
            // workload. A workload must never escape a deny aimed at callers without an
            // account while getting what `anyone` allows them.
            Subject::Anonymous => !is_account,
            Subject::Authenticated => is_account,
            Subject::User(name) => is_account && context.account == Some(name.as_str()),
            Subject::Group(id) => is_account && context.groups.binary_search(id).is_ok(),
            Subject::Kind(CredentialKind::Oidc) => is_workload,
            Subject::Kind(kind) => is_account && context.kind == Some(*kind),
            Subject::Issuer(id) => context
                .workload
                .is_some_and(|workload| workload.issuer == Some(*id)),
        })
    }

    fn is_allow(&self, rule: u32) -> bool {
        self.rules
            .get(rule as usize)
            .is_some_and(|r| r.effect == Effect::Allow)
    }

    pub(crate) fn rule_ref(&self, rule: &Rule) -> RuleRef {
        RuleRef {
            effect: rule.effect,
            file: self
                .files
                .get(rule.at.file as usize)
                .cloned()
                .unwrap_or_default(),
            line: rule.at.line,
        }
    }
}

/// Whether every `when` condition of `rule` holds for the workload's claims; a rule
/// without conditions always passes, one with conditions never does without claims. A
/// deny's condition also holds for a claim too long to look at whole (a list past its
/// first 256 elements, a string over 1 KiB): padding a `groups` claim must not slip past a
/// deny.
pub(crate) fn is_condition_met(rule: &Rule, claims: Option<&Map<String, Value>>) -> bool {
    let fail_closed = rule.effect == Effect::Deny;
    match claims {
        _ if rule.when.is_empty() => true,
        None => false,
        Some(claims) => rule
            .when
            .iter()
            .all(|condition| condition.holds(claims, fail_closed)),
    }
}

/// The action list for the token: `["*"]` where `*` was requested and everything the type
/// knows is granted, the concrete actions otherwise.
pub(crate) fn granted_names(
    resource_type: ResourceType,
    scope: &Scope,
    granted: ActionSet,
) -> Vec<String> {
    let asked_for_everything = scope.known_actions().contains(ActionSet::ANY);
    if asked_for_everything && granted == resource_type.every_action() {
        return vec!["*".to_owned()];
    }
    granted.names().map(str::to_owned).collect()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a panic is how a test fails"
)]
pub(crate) mod tests {
    use super::*;
    use crate::scope::parse_scopes;

    pub(crate) const POLICY: &str = r#"
[groups]
platform = ["alice"]
admins = ["root"]
ci = []

[[allow]]
who = ["group:platform"]
what = ["repository:platform/**"]
actions = ["pull", "push", "delete"]
description = "platform team"
claims = { region = "eu" }

[[allow]]
who = ["anyone"]
what = ["repository:public/**"]
actions = ["pull"]

[[allow]]
who = ["authenticated"]
what = ["repository:{account}/**"]
actions = ["*"]

[[deny]]
who = ["kind:deploy"]
what = ["repository:**"]
actions = ["delete"]

[[allow]]
who = ["group:admins"]
what = ["registry:catalog"]
actions = ["*"]

[[allow]]
who = ["group:ci"]
what = ["repository:platform/*"]
actions = ["pull"]
claims = { region = "us", tier = "ci" }

[[allow]]
who = ["user:bob"]
what = ["repository:ci-*/cache", "registry:catalog"]
actions = ["*"]

[[deny]]
who = ["anonymous"]
what = ["repository:public/secret/**"]
actions = ["*"]
"#;

    pub(crate) fn policy() -> Policy {
        Policy::from_toml([("p.toml", POLICY)]).unwrap()
    }

    struct Case {
        account: Option<&'static str>,
        groups: &'static [&'static str],
        kind: Option<CredentialKind>,
        scope: &'static str,
        limits: Option<&'static [&'static str]>,
        expect: &'static str,
    }

    const fn case(
        account: Option<&'static str>,
        scope: &'static str,
        expect: &'static str,
    ) -> Case {
        Case {
            account,
            groups: &[],
            kind: Some(CredentialKind::Password),
            scope,
            limits: None,
            expect,
        }
    }

    const ALICE: Option<&str> = Some("alice");
    const BOB: Option<&str> = Some("bob");
    const ANONYMOUS: Option<&str> = None;
    const DEPLOY: Option<CredentialKind> = Some(CredentialKind::Deploy);

    fn cases() -> Vec<Case> {
        vec![
            case(
                ALICE,
                "repository:platform/api:pull,push",
                "repository:platform/api:pull,push",
            ),
            case(
                ALICE,
                "repository:platform/api:*",
                "repository:platform/api:*",
            ),
            case(
                ALICE,
                "repository:platform/api:pull,push,delete",
                "repository:platform/api:pull,push,delete",
            ),
            case(
                ALICE,
                "repository:platform:pull",
                "repository:platform:pull",
            ),
            case(ALICE, "repository:platformx/api:pull", ""),
            Case {
                kind: DEPLOY,
                ..case(
                    ALICE,
                    "repository:platform/api:*",
                    "repository:platform/api:pull,push",
                )
            },
            Case {
                kind: DEPLOY,
                ..case(ALICE, "repository:platform/api:delete", "")
            },
            case(
                ANONYMOUS,
                "repository:public/tools:pull,push",
                "repository:public/tools:pull",
            ),
            case(ANONYMOUS, "repository:public/secret/x:pull", ""),
            case(
                BOB,
                "repository:public/secret/x:pull",
                "repository:public/secret/x:pull",
            ),
            case(BOB, "repository:bob/app:*", "repository:bob/app:*"),
            case(BOB, "repository:bob:delete", "repository:bob:delete"),
            case(BOB, "repository:alice/app:pull", ""),
            case(
                Some("alice.smith"),
                "repository:alice.smith/app:push",
                "repository:alice.smith/app:push",
            ),
            case(Some("Alice"), "repository:alice/app:pull", ""),
            case(Some("alice/x"), "repository:alice/x/app:pull", ""),
            case(Some("root"), "registry:catalog:*", "registry:catalog:*"),
            case(ALICE, "registry:catalog:*", ""),
            case(Some("root"), "registry:catalog:pull", ""),
            case(BOB, "registry(special):catalog:*", "registry:catalog:*"),
            case(
                BOB,
                "repository:ci-runner/cache:*",
                "repository:ci-runner/cache:*",
            ),
            case(BOB, "repository:cd-runner/cache:*", ""),
            case(ALICE, "widget:platform/api:pull", ""),
            case(
                ALICE,
                "repository:platform/api:pull,frobnicate",
                "repository:platform/api:pull",
            ),
            case(
                ALICE,
                "repository(plugin):platform/api:pull",
                "repository:platform/api:pull",
            ),
            case(
                ALICE,
                "repository:platform/api:pull repository:public/x:push repository:public/y:pull",
                "repository:platform/api:pull repository:public/y:pull",
            ),
            Case {
                groups: &["ci"],
                ..case(
                    Some("carol"),
                    "repository:platform/api:pull,push",
                    "repository:platform/api:pull",
                )
            },
            Case {
                groups: &["ci"],
                ..case(Some("carol"), "repository:platform/api/v2:pull", "")
            },
            Case {
                groups: &["platform"],
                ..case(
                    Some("carol"),
                    "repository:platform/api:push",
                    "repository:platform/api:push",
                )
            },
            Case {
                groups: &["nonexistent"],
                ..case(Some("carol"), "repository:platform/api:pull", "")
            },
            // Groups and kinds mean nothing without an account.
            Case {
                groups: &["platform"],
                ..case(ANONYMOUS, "repository:platform/api:pull", "")
            },
            Case {
                kind: DEPLOY,
                ..case(
                    ANONYMOUS,
                    "repository:public/x:pull",
                    "repository:public/x:pull",
                )
            },
            // Limits narrow, never widen.
            Case {
                limits: Some(&["repository:platform/**:pull"]),
                ..case(
                    ALICE,
                    "repository:platform/api:*",
                    "repository:platform/api:pull",
                )
            },
            Case {
                limits: Some(&["repository:platform/**:*"]),
                ..case(
                    ALICE,
                    "repository:platform/api:*",
                    "repository:platform/api:*",
                )
            },
            Case {
                limits: Some(&["repository:other/**:*"]),
                ..case(ALICE, "repository:platform/api:pull", "")
            },
            Case {
                limits: Some(&[]),
                ..case(ALICE, "repository:platform/api:pull", "")
            },
            Case {
                limits: Some(&["repository:**:pull", "repository:platform/api:push"]),
                ..case(
                    ALICE,
                    "repository:platform/api:*",
                    "repository:platform/api:pull,push",
                )
            },
            Case {
                limits: Some(&["repository:**:*"]),
                ..case(ALICE, "registry:catalog:*", "")
            },
            Case {
                limits: Some(&["registry:catalog:*"]),
                ..case(Some("root"), "registry:catalog:*", "registry:catalog:*")
            },
            Case {
                limits: Some(&["repository:{account}/**:pull"]),
                ..case(BOB, "repository:bob/app:*", "repository:bob/app:pull")
            },
            Case {
                limits: Some(&["repository:public/**:*"]),
                ..case(BOB, "repository:public/app:*", "repository:public/app:pull")
            },
        ]
    }

    #[test]
    fn decisions() {
        let policy = policy();
        for c in cases() {
            let groups: Vec<String> = c.groups.iter().map(|g| g.to_string()).collect();
            let caller = Caller {
                account: c.account,
                groups: &groups,
                kind: c.kind,
                workload: None,
            };
            let scopes = parse_scopes([c.scope]).unwrap();
            let limits: Option<Vec<ScopeLimit>> = c
                .limits
                .map(|l| l.iter().map(|t| ScopeLimit::parse(t).unwrap()).collect());
            let grant = policy.evaluate(&caller, &scopes, limits.as_deref());
            assert_eq!(
                grant.scope_string(),
                c.expect,
                "{:?} {:?} {:?} asks {} with limits {:?}",
                c.account,
                c.groups,
                c.kind,
                c.scope,
                c.limits
            );
            let explanation = policy.explain(&caller, &scopes, limits.as_deref());
            assert_eq!(explanation.grant, grant, "explain and evaluate agree");
        }
    }

    const WORKLOAD_POLICY: &str = r#"
[groups]
everyone = ["acme"]

[[issuer]]
name = "github"
url = "https://token.actions.githubusercontent.com"
audience = "registry.example.com"

[[issuer]]
name = "gitlab"
url = "https://gitlab.com"
audience = ["registry.example.com", "other"]

[[allow]]
who = ["oidc:github"]
when = { repository_owner = "acme", ref = "refs/heads/main" }
what = ["repository:{claim:repository}/**"]
actions = ["pull", "push"]

[[allow]]
who = ["oidc:github"]
when = { ref = "refs/tags/**" }
what = ["repository:releases/{claim:repository}"]
actions = ["push"]

[[allow]]
who = ["oidc:gitlab"]
when = { namespace_path = "infra/*", "nested".inner = "x-*" }
what = ["repository:infra/**"]
actions = ["pull"]

[[allow]]
who = ["kind:oidc"]
what = ["repository:ci/cache"]
actions = ["pull"]

[[allow]]
who = ["authenticated"]
what = ["repository:shared/**", "repository:{account}/**"]
actions = ["pull", "push"]

[[allow]]
who = ["group:everyone"]
what = ["repository:team/**"]
actions = ["pull"]

[[allow]]
who = ["anyone"]
what = ["repository:public/**"]
actions = ["pull"]

[[deny]]
who = ["kind:oidc"]
what = ["repository:**/prod"]
actions = ["push"]
"#;

    #[test]
    fn workloads() {
        let policy = Policy::from_toml([("ci.toml", WORKLOAD_POLICY)]).unwrap();
        let github = serde_json::json!({
            "sub": "repo:acme/app:ref:refs/heads/main",
            "repository": "acme/app",
            "repository_owner": "acme",
            "ref": "refs/heads/main",
        });
        let tag = serde_json::json!({"repository": "acme/app", "repository_owner": "acme", "ref": "refs/tags/v1.2"});
        let branch = serde_json::json!({"repository": "acme/app", "repository_owner": "acme", "ref": "refs/heads/dev"});
        let upper = serde_json::json!({"repository": "Acme/App", "repository_owner": "acme", "ref": "refs/heads/main"});
        let sneaky = serde_json::json!({"repository": "acme/../root", "repository_owner": "acme", "ref": "refs/heads/main"});
        let not_string = serde_json::json!({"repository": "acme/app", "repository_owner": {"name": "acme"}, "ref": "refs/heads/main"});
        let nested_list = serde_json::json!({"repository": "acme/app", "repository_owner": [["acme"]], "ref": "refs/heads/main"});
        let listed = serde_json::json!({"repository": "acme/app", "repository_owner": ["other", "acme"], "ref": "refs/heads/main"});
        let listed_other = serde_json::json!({"repository": "acme/app", "repository_owner": ["other", 7], "ref": "refs/heads/main"});
        let gitlab =
            serde_json::json!({"namespace_path": "infra/platform", "nested": {"inner": "x-1"}});
        let gitlab_flat =
            serde_json::json!({"namespace_path": "infra/platform", "nested.inner": "x-1"});
        // (issuer, claims, scope, expected)
        let cases: &[(&str, &serde_json::Value, &str, &str)] = &[
            (
                "github",
                &github,
                "repository:acme/app/web:pull,push",
                "repository:acme/app/web:pull,push",
            ),
            (
                "github",
                &github,
                "repository:acme/app:*",
                "repository:acme/app:pull,push",
            ),
            ("github", &github, "repository:acme/other:push", ""),
            ("github", &github, "repository:acme/app/prod:push", ""),
            (
                "github",
                &github,
                "repository:ci/cache:pull",
                "repository:ci/cache:pull",
            ),
            (
                "github",
                &github,
                "repository:public/x:pull",
                "repository:public/x:pull",
            ),
            // Workloads are not `authenticated`, have no `{account}` and are in no group.
            ("github", &github, "repository:shared/x:pull", ""),
            ("github", &github, "repository:team/x:pull", ""),
            ("github", &tag, "repository:acme/app/web:push", ""),
            (
                "github",
                &tag,
                "repository:releases/acme/app:push",
                "repository:releases/acme/app:push",
            ),
            ("github", &branch, "repository:acme/app:push", ""),
            (
                "github",
                &branch,
                "repository:ci/cache:pull",
                "repository:ci/cache:pull",
            ),
            ("github", &upper, "repository:acme/app:pull", ""),
            ("github", &sneaky, "repository:acme/root:pull", ""),
            ("github", &not_string, "repository:acme/app:pull", ""),
            ("github", &nested_list, "repository:acme/app:pull", ""),
            // A list claim matches when any of its strings does.
            (
                "github",
                &listed,
                "repository:acme/app:pull",
                "repository:acme/app:pull",
            ),
            ("github", &listed_other, "repository:acme/app:pull", ""),
            ("gitlab", &github, "repository:acme/app:pull", ""),
            (
                "gitlab",
                &gitlab,
                "repository:infra/x:pull",
                "repository:infra/x:pull",
            ),
            ("gitlab", &gitlab_flat, "repository:infra/x:pull", ""),
            ("undeclared", &github, "repository:acme/app:pull", ""),
            (
                "undeclared",
                &github,
                "repository:ci/cache:pull",
                "repository:ci/cache:pull",
            ),
        ];
        for (issuer, claims, scope, expected) in cases {
            let claims = claims.as_object().unwrap();
            let account = format!("{issuer}:repo:acme/app:ref:refs/heads/main");
            let groups = ["everyone".to_owned()];
            let caller = Caller {
                account: Some(&account),
                groups: &groups,
                kind: Some(CredentialKind::Password),
                workload: Some(crate::Workload { issuer, claims }),
            };
            let scopes = parse_scopes([*scope]).unwrap();
            let grant = policy.evaluate(&caller, &scopes, None);
            assert_eq!(
                grant.scope_string(),
                *expected,
                "{issuer} {claims:?} asks {scope}"
            );
            assert_eq!(policy.explain(&caller, &scopes, None).grant, grant);
        }

        // Accounts never satisfy workload rules, whatever they are called or claim to be.
        for kind in CredentialKind::ALL {
            let caller = Caller {
                account: Some("mallory"),
                groups: &[],
                kind: Some(kind),
                workload: None,
            };
            let scopes =
                parse_scopes(["repository:acme/app:pull repository:ci/cache:pull"]).unwrap();
            assert_eq!(
                policy.evaluate(&caller, &scopes, None).scope_string(),
                "",
                "{kind}"
            );
        }
    }

    #[test]
    fn workload_explanations_name_issuer_and_conditions() {
        let policy = Policy::from_toml([("ci.toml", WORKLOAD_POLICY)]).unwrap();
        let claims = serde_json::json!({"repository": "acme/app", "repository_owner": "acme", "ref": "refs/heads/main"});
        let caller = Caller {
            account: Some("github:repo:acme/app:ref:refs/heads/main"),
            groups: &[],
            kind: None,
            workload: Some(crate::Workload {
                issuer: "github",
                claims: claims.as_object().unwrap(),
            }),
        };
        let scopes = parse_scopes(["repository:acme/app:push"]).unwrap();
        let text = policy.explain(&caller, &scopes, None).to_string();
        assert!(
            text.starts_with(
                "caller: github:repo:acme/app:ref:refs/heads/main (oidc), issuer github\n"
            ),
            "{text}"
        );
        assert!(text.contains("allow ci.toml:15  repository:{claim:repository}/**  pull,push  when ref = \"refs/heads/main\", repository_owner = \"acme\""), "{text}");
    }

    pub(crate) const PEOPLE_POLICY: &str = r#"
[[issuer]]
name = "corp"
url = "https://login.example.com"
audience = "scopegate-cli"
person = "preferred_username"

[[issuer]]
name = "mail"
url = "https://mail.example.com"
audience = "scopegate-cli"
person = "email"
person_domain = "example.com"

[[allow]]
who = ["kind:oidc"]
what = ["repository:{person}/**"]
actions = ["pull", "push", "delete"]

[[allow]]
who = ["oidc:corp"]
when = { groups = "platform" }
what = ["repository:platform/**"]
actions = ["pull", "push"]

[[deny]]
who = ["oidc:corp"]
when = { groups = "contractors" }
what = ["repository:**/prod"]
actions = ["push", "delete"]
"#;

    #[test]
    fn people_get_their_namespace_and_their_groups_grants() {
        let policy = Policy::from_toml([("people.toml", PEOPLE_POLICY)]).unwrap();
        let jane = serde_json::json!({"sub": "1", "preferred_username": "jane", "groups": ["dev", "platform"]});
        let contractor = serde_json::json!({"sub": "2", "preferred_username": "carl", "groups": ["platform", "contractors"]});
        let upper =
            serde_json::json!({"sub": "3", "preferred_username": "Jane", "groups": "platform"});
        let no_groups = serde_json::json!({"sub": "4", "preferred_username": "ann"});
        let verified =
            serde_json::json!({"sub": "5", "email": "bob@example.com", "email_verified": true});
        let unverified = serde_json::json!({"sub": "6", "email": "bob@example.com"});
        let elsewhere =
            serde_json::json!({"sub": "7", "email": "bob@evil.example", "email_verified": true});
        let namespace = serde_json::json!({"sub": "8", "preferred_username": "platform"});
        let mut groups: Vec<String> = (0..300).map(|i| format!("g{i}")).collect();
        groups.extend(["platform".into(), "contractors".into()]);
        let padded =
            serde_json::json!({"sub": "9", "preferred_username": "carl", "groups": groups});
        let long_value = serde_json::json!({"sub": "10", "preferred_username": "carl", "groups": ["platform", "x".repeat(2000)]});
        // (issuer, claims, scope, expected)
        let cases: &[(&str, &serde_json::Value, &str, &str)] = &[
            (
                "corp",
                &jane,
                "repository:jane/app:push,delete",
                "repository:jane/app:push,delete",
            ),
            ("corp", &jane, "repository:carl/app:pull", ""),
            (
                "corp",
                &jane,
                "repository:platform/base:push",
                "repository:platform/base:push",
            ),
            (
                "corp",
                &jane,
                "repository:platform/prod:push",
                "repository:platform/prod:push",
            ),
            // The deny matches one element of the list, so it wins over the group's allow
            // and over the person's own namespace.
            (
                "corp",
                &contractor,
                "repository:platform/base:push",
                "repository:platform/base:push",
            ),
            (
                "corp",
                &contractor,
                "repository:platform/prod:pull,push",
                "repository:platform/prod:pull",
            ),
            ("corp", &contractor, "repository:carl/prod:push", ""),
            (
                "corp",
                &contractor,
                "repository:carl/app:push",
                "repository:carl/app:push",
            ),
            // Not a valid path component: no personal namespace; a string claim still counts.
            ("corp", &upper, "repository:jane/app:pull", ""),
            (
                "corp",
                &upper,
                "repository:platform/x:pull",
                "repository:platform/x:pull",
            ),
            (
                "corp",
                &no_groups,
                "repository:ann/x:push",
                "repository:ann/x:push",
            ),
            ("corp", &no_groups, "repository:platform/x:pull", ""),
            (
                "mail",
                &verified,
                "repository:bob/x:push",
                "repository:bob/x:push",
            ),
            ("mail", &verified, "repository:platform/x:pull", ""),
            ("mail", &unverified, "repository:bob/x:push", ""),
            ("mail", &elsewhere, "repository:bob/x:push", ""),
            // The corp issuer names people by preferred_username: an email says nothing there.
            ("corp", &verified, "repository:bob/x:push", ""),
            // A person named like a namespace the policy hands out does not own it.
            (
                "corp",
                &namespace,
                "repository:platform/base:push,delete",
                "",
            ),
            ("corp", &namespace, "repository:platform:push", ""),
            // A deny is not escaped by padding the list past what `when` looks at.
            ("corp", &padded, "repository:carl/prod:push", ""),
            (
                "corp",
                &padded,
                "repository:carl/app:push",
                "repository:carl/app:push",
            ),
            ("corp", &long_value, "repository:platform/prod:push", ""),
        ];
        for (issuer, claims, scope, expected) in cases {
            let claims = claims.as_object().unwrap();
            let account = format!("{issuer}:x");
            let caller = Caller {
                account: Some(&account),
                groups: &[],
                kind: Some(CredentialKind::Oidc),
                workload: Some(crate::Workload { issuer, claims }),
            };
            let scopes = parse_scopes([*scope]).unwrap();
            let grant = policy.evaluate(&caller, &scopes, None);
            assert_eq!(
                grant.scope_string(),
                *expected,
                "{issuer} {claims:?} asks {scope}"
            );
            assert_eq!(policy.explain(&caller, &scopes, None).grant, grant);
        }
    }

    #[test]
    fn claims_come_from_granting_allows_first_rule_wins() {
        let policy = policy();
        let groups = vec!["ci".to_owned()];
        let alice_in_ci = Caller {
            account: ALICE,
            groups: &groups,
            kind: None,
            workload: None,
        };
        let scopes = parse_scopes(["repository:platform/api:pull"]).unwrap();
        let grant = policy.evaluate(&alice_in_ci, &scopes, None);
        assert_eq!(
            serde_json::Value::Object(grant.claims),
            serde_json::json!({"region": "eu", "tier": "ci"})
        );

        // A rule that grants nothing adds no claims.
        let scopes = parse_scopes(["repository:public/x:pull"]).unwrap();
        assert!(policy
            .evaluate(&alice_in_ci, &scopes, None)
            .claims
            .is_empty());
        // Neither does a rule whose grant a deny took away.
        let deploy = Caller {
            account: ALICE,
            groups: &[],
            kind: DEPLOY,
            workload: None,
        };
        let scopes = parse_scopes(["repository:platform/api:delete"]).unwrap();
        assert!(policy.evaluate(&deploy, &scopes, None).claims.is_empty());
    }

    #[test]
    fn matched_rules_name_file_and_line() {
        let policy = policy();
        let deploy = Caller {
            account: ALICE,
            groups: &[],
            kind: DEPLOY,
            workload: None,
        };
        let scopes = parse_scopes(["repository:platform/api:push,delete"]).unwrap();
        let grant = policy.evaluate(&deploy, &scopes, None);
        let rules: Vec<String> = grant
            .matched_rules
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(rules, ["allow p.toml:7", "deny p.toml:24"]);
    }

    #[test]
    fn access_serializes_as_the_jwt_claim() {
        let policy = policy();
        let caller = Caller {
            account: Some("root"),
            groups: &[],
            kind: None,
            workload: None,
        };
        let scopes = parse_scopes(["registry:catalog:* repository:root/app:pull"]).unwrap();
        let grant = policy.evaluate(&caller, &scopes, None);
        assert_eq!(
            serde_json::to_value(&grant.access).unwrap(),
            serde_json::json!([
                {"type": "registry", "name": "catalog", "actions": ["*"]},
                {"type": "repository", "name": "root/app", "actions": ["pull"]}
            ])
        );
    }

    #[test]
    fn explanation_names_the_rules_per_action() {
        let policy = policy();
        let deploy = Caller {
            account: ALICE,
            groups: &[],
            kind: DEPLOY,
            workload: None,
        };
        let scopes = parse_scopes(["repository:platform/api:push,delete,frob"]).unwrap();
        let explanation = policy.explain(&deploy, &scopes, None);
        let scope = &explanation.scopes[0];
        let outcomes: Vec<(&str, crate::Outcome)> = scope
            .actions
            .iter()
            .map(|a| (a.action.as_str(), a.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("push", crate::Outcome::Granted),
                ("delete", crate::Outcome::Denied),
                ("frob", crate::Outcome::Unknown)
            ]
        );
        assert_eq!(scope.actions[1].denied_by, ["p.toml:24"]);
        assert_eq!(scope.actions[1].allowed_by, ["p.toml:7"]);
        let text = explanation.to_string();
        assert!(
            text.contains("  delete  denied          denied by p.toml:24; allowed by p.toml:7\n"),
            "{text}"
        );
        assert!(
            text.contains("  frob    unknown         never granted\n"),
            "{text}"
        );
        assert!(
            text.contains("token grants: repository:platform/api:push"),
            "{text}"
        );
        let json = serde_json::to_value(&explanation).unwrap();
        assert_eq!(json["scopes"][0]["actions"][1]["outcome"], "denied");

        let limits = [ScopeLimit::parse("repository:platform/**:pull").unwrap()];
        let explanation = policy.explain(&deploy, &scopes, Some(&limits));
        assert_eq!(
            explanation.scopes[0].actions[0].outcome,
            crate::Outcome::OutsideLimits
        );
        assert_eq!(
            explanation.scopes[0].limits.as_deref(),
            Some(&["repository:platform/**:pull".to_owned()][..])
        );
    }

    #[test]
    fn compiled_form_round_trips_and_refuses_garbage() {
        let policy = policy();
        let bytes = policy.to_compiled();
        let decoded = Policy::from_compiled(&bytes).unwrap();
        let caller = Caller {
            account: ALICE,
            groups: &[],
            kind: None,
            workload: None,
        };
        for scope in [
            "repository:platform/api:*",
            "repository:alice/x:push",
            "registry:catalog:*",
        ] {
            let scopes = parse_scopes([scope]).unwrap();
            assert_eq!(
                policy.evaluate(&caller, &scopes, None),
                decoded.evaluate(&caller, &scopes, None)
            );
        }
        assert_eq!(decoded.to_compiled(), bytes);
        assert!(Policy::from_compiled(b"").is_err());
        assert!(Policy::from_compiled(b"not a policy at all").is_err());
        for cut in [8, 9, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                Policy::from_compiled(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        for i in 8..flipped.len() {
            flipped[i] ^= 0x5a;
            let _ = Policy::from_compiled(&flipped);
            flipped[i] ^= 0x5a;
        }
    }
}
