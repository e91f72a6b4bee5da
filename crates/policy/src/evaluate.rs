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

/// The caller, resolved against one policy.
pub(crate) struct CallerContext<'c> {
    pub(crate) account: Option<&'c str>,
    /// The account as `{account}` may match it.
    pub(crate) account_segment: Option<&'c str>,
    /// Static and store groups the policy knows, sorted.
    pub(crate) groups: Vec<u32>,
    pub(crate) kind: Option<CredentialKind>,
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
        let Some(account) = caller.account else {
            return CallerContext {
                account: None,
                account_segment: None,
                groups: Vec::new(),
                kind: None,
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
            kind: caller.kind,
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

        let mut matches = Vec::new();
        self.index(resource_type)
            .candidates(&name_segments, account, &mut |entry| {
                let Some(rule) = self.rules.get(entry.rule as usize) else {
                    return;
                };
                let is_match = self.is_subject_match(context, rule)
                    && rule
                        .what
                        .get(entry.pattern as usize)
                        .is_some_and(|p| p.matches(&name_segments, account));
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

    fn is_subject_match(&self, context: &CallerContext<'_>, rule: &Rule) -> bool {
        rule.who.iter().any(|subject| match subject {
            Subject::Anyone => true,
            Subject::Anonymous => context.account.is_none(),
            Subject::Authenticated => context.account.is_some(),
            Subject::User(name) => context.account == Some(name.as_str()),
            Subject::Group(id) => context.groups.binary_search(id).is_ok(),
            Subject::Kind(kind) => context.account.is_some() && context.kind == Some(*kind),
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
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

    #[test]
    fn claims_come_from_granting_allows_first_rule_wins() {
        let policy = policy();
        let groups = vec!["ci".to_owned()];
        let alice_in_ci = Caller {
            account: ALICE,
            groups: &groups,
            kind: None,
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
