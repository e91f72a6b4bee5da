//! Explanations: the grant plus, per requested action, the rules that allowed or denied it.

use std::fmt;

use serde::Serialize;

use crate::action::ActionSet;
use crate::evaluate::granted_names;
use crate::grant::Grant;
use crate::limit::ScopeLimit;
use crate::policy::Policy;
use crate::scope::Scope;
use crate::source::Effect;
use crate::subject::{Caller, CredentialKind};

/// Why a caller gets what it gets. `Serialize` gives JSON for tools, `Display` a text for
/// people. Explanations name rules by file and line and never carry secrets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Who asked, as the policy sees it.
    pub caller: CallerSummary,
    /// One entry per requested scope (after duplicates were merged), in request order.
    pub scopes: Vec<ScopeExplanation>,
    /// Exactly what [`Policy::evaluate`] returns for the same input.
    pub grant: Grant,
}

/// The caller as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerSummary {
    /// `None` for an anonymous caller.
    pub account: Option<String>,
    /// `None` for an anonymous caller.
    pub kind: Option<CredentialKind>,
    /// The policy's groups the caller is in, static and from the store.
    pub groups: Vec<String>,
    /// The credential's scope limits; `None` when it has none.
    pub limits: Option<Vec<String>>,
    /// For a workload: the name of the issuer that vouched for it; `None` otherwise.
    pub issuer: Option<String>,
}

/// The decision for one requested scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeExplanation {
    /// The requested scope in canonical form.
    pub requested: String,
    /// The actions the token carries for it; empty when nothing is granted.
    pub granted: Vec<String>,
    /// One entry per requested action (`*` expanded to the type's actions).
    pub actions: Vec<ActionExplanation>,
    /// Every rule whose subjects and pattern matched, in policy order.
    pub rules: Vec<MatchedRule>,
    /// The credential limits that matched this resource; `None` when it has no limits.
    pub limits: Option<Vec<String>>,
    /// Why nothing could be granted at all, e.g. an unknown resource type.
    pub note: Option<String>,
}

/// The decision for one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionExplanation {
    /// `pull`, `push`, `delete`, `*` (registry) or an unknown action as requested.
    pub action: String,
    /// What happened to it.
    pub outcome: Outcome,
    /// `file:line` of the allow rules that name it.
    pub allowed_by: Vec<String>,
    /// `file:line` of the deny rules that name it.
    pub denied_by: Vec<String>,
}

/// What happened to one requested action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// In the token.
    Granted,
    /// A deny rule matched (whether or not an allow did).
    Denied,
    /// No allow rule matched.
    NotAllowed,
    /// Allowed, but the credential's limits leave it out.
    OutsideLimits,
    /// An action or resource type the policy cannot grant.
    Unknown,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Granted => "granted",
            Outcome::Denied => "denied",
            Outcome::NotAllowed => "not allowed",
            Outcome::OutsideLimits => "outside limits",
            Outcome::Unknown => "unknown",
        }
    }
}

/// A rule that matched a requested resource and the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedRule {
    /// Allow or deny.
    pub effect: Effect,
    /// `file:line` of the rule.
    pub source: String,
    /// The pattern that matched.
    pub what: String,
    /// The actions the rule names, as written.
    pub actions: Vec<String>,
    /// The rule's `description`.
    pub description: Option<String>,
    /// The rule's `when` conditions (all met), as `claim = "pattern"`.
    pub when: Vec<String>,
}

impl Policy {
    /// Evaluates like [`Policy::evaluate`] and says why, rule by rule.
    pub fn explain(
        &self,
        caller: &Caller<'_>,
        requested: &[Scope],
        limits: Option<&[ScopeLimit]>,
    ) -> Explanation {
        let context = self.context(caller);
        let caller_summary = CallerSummary {
            account: context.account.map(str::to_owned),
            kind: if context.account.is_some() || context.workload.is_some() {
                context.kind
            } else {
                None
            },
            groups: context
                .groups
                .iter()
                .filter_map(|id| self.groups.get(*id as usize).cloned())
                .collect(),
            limits: limits.map(|l| l.iter().map(ToString::to_string).collect()),
            issuer: context.workload.map(|w| {
                if w.issuer.is_some() {
                    w.issuer_name.to_owned()
                } else {
                    format!(
                        "{} (not declared: no oidc:NAME rule applies)",
                        w.issuer_name
                    )
                }
            }),
        };
        let scopes = requested
            .iter()
            .map(|scope| self.explain_scope(&context, scope, limits))
            .collect();
        Explanation {
            caller: caller_summary,
            scopes,
            grant: self.evaluate(caller, requested, limits),
        }
    }

    fn explain_scope(
        &self,
        context: &crate::evaluate::CallerContext<'_>,
        scope: &Scope,
        limits: Option<&[ScopeLimit]>,
    ) -> ScopeExplanation {
        let decision = self.decide(context, scope, limits);
        let unknown = |action: &str| ActionExplanation {
            action: action.to_owned(),
            outcome: Outcome::Unknown,
            allowed_by: Vec::new(),
            denied_by: Vec::new(),
        };
        let Some(resource_type) = decision.resource_type else {
            return ScopeExplanation {
                requested: scope.to_string(),
                granted: Vec::new(),
                actions: scope.actions().map(unknown).collect(),
                rules: Vec::new(),
                limits: decision.matched_limits.map(|_| Vec::new()),
                note: Some(format!(
                    "resource type {:?} is never granted (only repository and registry are)",
                    scope.resource_type()
                )),
            };
        };
        let rule_sources = |action: ActionSet, effect: Effect| -> Vec<String> {
            decision
                .matches
                .iter()
                .filter(|m| m.actions.contains(action))
                .filter_map(|m| self.rules.get(m.rule as usize))
                .filter(|rule| rule.effect == effect)
                .map(|rule| self.rule_source(rule))
                .collect()
        };
        let mut actions: Vec<ActionExplanation> = decision
            .requested
            .singles()
            .map(|(single, name)| {
                let outcome = if decision.granted.contains(single) {
                    Outcome::Granted
                } else if decision.denied.contains(single) {
                    Outcome::Denied
                } else if !decision.allowed.contains(single) {
                    Outcome::NotAllowed
                } else {
                    Outcome::OutsideLimits
                };
                ActionExplanation {
                    action: name.to_owned(),
                    outcome,
                    allowed_by: rule_sources(single, Effect::Allow),
                    denied_by: rule_sources(single, Effect::Deny),
                }
            })
            .collect();
        // Known actions the type has no use for (e.g. `pull` on registry:catalog).
        let ignored = scope
            .known_actions()
            .difference(ActionSet::ANY)
            .difference(decision.requested);
        actions.extend(ignored.names().map(unknown));
        actions.extend(scope.unknown_actions().iter().map(|a| unknown(a)));

        let rules = decision
            .matches
            .iter()
            .filter_map(|m| {
                let rule = self.rules.get(m.rule as usize)?;
                Some(MatchedRule {
                    effect: rule.effect,
                    source: self.rule_source(rule),
                    what: rule.what.get(m.pattern as usize)?.to_string(),
                    actions: rule.declared.names().map(str::to_owned).collect(),
                    description: rule.description.clone(),
                    when: rule.when.iter().map(|c| c.describe()).collect(),
                })
            })
            .collect();
        ScopeExplanation {
            requested: scope.to_string(),
            granted: if decision.granted.is_empty() {
                Vec::new()
            } else {
                granted_names(resource_type, scope, decision.granted)
            },
            actions,
            rules,
            limits: decision.matched_limits.map(|matched| {
                matched
                    .iter()
                    .filter_map(|i| limits.and_then(|l| l.get(*i)))
                    .map(ToString::to_string)
                    .collect()
            }),
            note: None,
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let caller = &self.caller;
        match (&caller.account, caller.kind) {
            (Some(account), Some(kind)) => write!(f, "caller: {account} ({kind})")?,
            (Some(account), None) => write!(f, "caller: {account}")?,
            (None, Some(kind)) => write!(f, "caller: workload ({kind})")?,
            (None, None) => write!(f, "caller: anonymous")?,
        }
        if let Some(issuer) = &caller.issuer {
            write!(f, ", issuer {issuer}")?;
        }
        if caller.groups.is_empty() {
            writeln!(f)?;
        } else {
            writeln!(f, ", groups: {}", caller.groups.join(", "))?;
        }
        if let Some(limits) = &caller.limits {
            writeln!(f, "credential limits: {}", or_none(limits))?;
        }
        for scope in &self.scopes {
            writeln!(f)?;
            write!(f, "{}", scope)?;
        }
        writeln!(f)?;
        if self.grant.is_empty() {
            writeln!(f, "token grants: nothing")?;
        } else {
            writeln!(f, "token grants: {}", self.grant.scope_string())?;
        }
        if !self.grant.claims.is_empty() {
            writeln!(
                f,
                "extra claims: {}",
                serde_json::Value::Object(self.grant.claims.clone())
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for ScopeExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.granted.is_empty() {
            writeln!(f, "{}  ->  nothing", self.requested)?;
        } else {
            writeln!(f, "{}  ->  {}", self.requested, self.granted.join(","))?;
        }
        if let Some(note) = &self.note {
            writeln!(f, "  {note}")?;
        }
        for action in &self.actions {
            let mut reasons = Vec::new();
            if !action.denied_by.is_empty() {
                reasons.push(format!("denied by {}", action.denied_by.join(", ")));
            }
            if !action.allowed_by.is_empty() {
                reasons.push(format!("allowed by {}", action.allowed_by.join(", ")));
            }
            match action.outcome {
                Outcome::NotAllowed if reasons.is_empty() => {
                    reasons.push("no allow rule matches".into())
                }
                Outcome::OutsideLimits => reasons.push("no credential limit lists it".into()),
                Outcome::Unknown => reasons.push("never granted".into()),
                _ => {}
            }
            let line = format!(
                "  {:<7} {:<15} {}",
                action.action,
                action.outcome.as_str(),
                reasons.join("; ")
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        if let Some(limits) = &self.limits {
            writeln!(f, "  matching credential limits: {}", or_none(limits))?;
        }
        if self.rules.is_empty() {
            writeln!(f, "  no rule matches this resource for this caller")?;
        } else {
            writeln!(f, "  matching rules:")?;
            for rule in &self.rules {
                write!(
                    f,
                    "    {:<5} {}  {}  {}",
                    rule.effect.as_str(),
                    rule.source,
                    rule.what,
                    rule.actions.join(",")
                )?;
                if !rule.when.is_empty() {
                    write!(f, "  when {}", rule.when.join(", "))?;
                }
                match &rule.description {
                    Some(description) => writeln!(f, "  ({description})")?,
                    None => writeln!(f)?,
                }
            }
        }
        Ok(())
    }
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(" ")
    }
}
