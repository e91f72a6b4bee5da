//! The validated policy: groups, rules and the index that finds them.
//!
//! [`Policy::build`] is the only way to make one, from a [`PolicySource`] that came from
//! policy files or from the compiled form; it reports every problem with its file and line.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::action::{ActionSet, ResourceType};
use crate::index::{Entry, Index};
use crate::issuer::{self, Issuer};
use crate::pattern::{is_claim_name, ClaimPattern, ResourcePattern};
use crate::person::PersonClaim;
use crate::source::{Effect, Location, PolicySource, Problem};
use crate::subject::CredentialKind;
use crate::subject::{is_identifier, parse_subject, Subject, SubjectText, SUBJECT_HELP};

/// Claims the token server sets itself; a policy may not add them.
pub const RESERVED_CLAIMS: [&str; 9] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "access",
    "auth_type",
];

/// A validated policy, ready to evaluate requests.
///
/// Build it with `Policy::load_dir` (feature `load`) or [`Policy::from_compiled`].
#[derive(Debug)]
pub struct Policy {
    pub(crate) files: Vec<String>,
    pub(crate) groups: Vec<String>,
    group_ids: BTreeMap<String, u32>,
    /// Account name -> static groups it belongs to, sorted.
    memberships: BTreeMap<String, Vec<u32>>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) issuers: Vec<Issuer>,
    indexes: [Index; 2],
    #[cfg(feature = "load")]
    pub(crate) source: PolicySource,
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) effect: Effect,
    pub(crate) who: Vec<Subject>,
    pub(crate) what: Vec<ResourcePattern>,
    /// As written, `*` kept literal.
    pub(crate) declared: ActionSet,
    pub(crate) description: Option<String>,
    pub(crate) claims: Option<Map<String, Value>>,
    /// `when`: every condition must hold (only workloads have claims).
    pub(crate) when: Vec<Condition>,
    pub(crate) at: Location,
}

/// One `when` entry: the claim at `path` (one key, or nested keys) must match `pattern`.
#[derive(Debug)]
pub(crate) struct Condition {
    pub(crate) path: Vec<String>,
    pub(crate) pattern: ClaimPattern,
}

impl Condition {
    /// `too_long_matches`: whether a value too long to look at whole counts as a match
    /// (for denies) or not (for allows).
    pub(crate) fn holds(&self, claims: &Map<String, Value>, too_long_matches: bool) -> bool {
        let mut keys = self.path.iter();
        let Some(first) = keys.next() else {
            return false;
        };
        let mut value = claims.get(first);
        for key in keys {
            value = value.and_then(|v| v.get(key));
        }
        self.pattern.matches(value, too_long_matches)
    }

    /// `claim = "pattern"` as written (nested keys joined by `.`).
    pub(crate) fn describe(&self) -> String {
        format!("{} = {:?}", self.path.join("."), self.pattern.to_string())
    }
}

impl Policy {
    /// Validates `source` and builds the index; returns every problem found otherwise.
    pub(crate) fn build(source: PolicySource) -> Result<Policy, Vec<Problem>> {
        let mut problems = Vec::new();
        let report = |problems: &mut Vec<Problem>, at: Location, message: String| {
            problems.push(Problem {
                file: file_name(&source.files, at),
                line: at.line,
                message,
            });
        };

        let mut groups = Vec::new();
        let mut group_ids = BTreeMap::new();
        let mut group_locations: BTreeMap<&str, Location> = BTreeMap::new();
        let mut memberships: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for group in &source.groups {
            let name = &group.name.value;
            if !is_identifier(name) {
                report(&mut problems, group.name.at, format!(
                    "group name {name:?} is not valid (1 to 128 letters, digits, '.', '_', '-', '@', '+')"
                ));
                continue;
            }
            if let Some(first) = group_locations.get(name.as_str()) {
                let first = format!("{}:{}", file_name(&source.files, *first), first.line);
                report(&mut problems, group.name.at, format!(
                    "group {name:?} is defined twice (first at {first}); list all its members in one place"
                ));
                continue;
            }
            group_locations.insert(name, group.name.at);
            let id = groups.len() as u32;
            groups.push(name.clone());
            group_ids.insert(name.clone(), id);
            for member in &group.members {
                if !is_identifier(&member.value) {
                    report(
                        &mut problems,
                        member.at,
                        format!(
                            "member {:?} of group {name:?} is not a valid account name",
                            member.value
                        ),
                    );
                    continue;
                }
                let ids = memberships.entry(member.value.clone()).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }

        let mut issuers: Vec<Issuer> = Vec::new();
        let mut issuer_locations: BTreeMap<&str, Location> = BTreeMap::new();
        let mut issuer_urls: BTreeMap<&str, Location> = BTreeMap::new();
        for declared in &source.issuers {
            let problems_before = problems.len();
            let name = &declared.name.value;
            if let Err(message) = issuer::check_name(name) {
                report(&mut problems, declared.name.at, message);
            } else if let Some(first) = issuer_locations.get(name.as_str()) {
                let first = format!("{}:{}", file_name(&source.files, *first), first.line);
                report(&mut problems, declared.name.at, format!(
                    "issuer {name:?} is declared twice (first at {first}); give each issuer one name"
                ));
            } else {
                issuer_locations.insert(name, declared.name.at);
            }
            let url = &declared.url.value;
            match issuer::check_url(url) {
                Err(message) => report(
                    &mut problems,
                    declared.url.at,
                    format!("issuer `url`: {message}"),
                ),
                Ok(()) => {
                    if let Some(first) = issuer_urls.get(url.as_str()) {
                        let first = format!("{}:{}", file_name(&source.files, *first), first.line);
                        report(&mut problems, declared.url.at, format!(
                            "issuer URL {url:?} is declared twice (first at {first}); an `iss` must name one issuer"
                        ));
                    } else {
                        issuer_urls.insert(url, declared.url.at);
                    }
                }
            }
            if let Some(jwks_url) = &declared.jwks_url {
                if let Err(message) = issuer::check_key_url(&jwks_url.value, url) {
                    report(&mut problems, jwks_url.at, format!("`jwks_url`: {message}"));
                }
            }
            let audiences = &declared.audiences.value;
            if audiences.is_empty() || audiences.iter().any(|a| a.is_empty() || a.len() > 256) {
                report(&mut problems, declared.audiences.at,
                    "`audience` must be a non-empty string (at most 256 bytes) or a non-empty list of them; ID tokens must be minted for this registry".into());
            }
            let max_age = match &declared.max_age {
                None => None,
                Some(max_age) => match u64::try_from(max_age.value) {
                    Ok(seconds) if seconds > 0 => Some(seconds),
                    _ => {
                        report(
                            &mut problems,
                            max_age.at,
                            "`max_age` must be a positive number of seconds".into(),
                        );
                        None
                    }
                },
            };
            let person = match (&declared.person, &declared.person_domain) {
                (None, None) => None,
                (None, Some(domain)) => {
                    report(&mut problems, domain.at, "`person_domain` needs `person`: name the claim whose address is in that domain (e.g. person = \"email\")".into());
                    None
                }
                (Some(claim), domain) => {
                    match PersonClaim::parse(
                        &claim.value,
                        domain.as_ref().map(|d| d.value.as_str()),
                    ) {
                        Ok(person) => Some(person),
                        Err(message) => {
                            let at = match domain {
                                Some(domain) if message.contains("`person_domain`") => domain.at,
                                _ => claim.at,
                            };
                            report(&mut problems, at, message);
                            None
                        }
                    }
                }
            };
            if problems.len() == problems_before {
                issuers.push(Issuer {
                    name: name.clone(),
                    url: url.clone(),
                    audiences: audiences.clone(),
                    jwks_url: declared.jwks_url.as_ref().map(|u| u.value.clone()),
                    max_age,
                    person,
                });
            }
        }

        let mut rules = Vec::with_capacity(source.rules.len());
        for rule in &source.rules {
            let problems_before = problems.len();
            if rule.who.is_empty() {
                report(
                    &mut problems,
                    rule.at,
                    format!("`who` is empty; {SUBJECT_HELP}"),
                );
            }
            if rule.what.is_empty() {
                report(
                    &mut problems,
                    rule.at,
                    "`what` is empty; name at least one resource, e.g. \"repository:team/**\""
                        .into(),
                );
            }
            if rule.actions.is_empty() {
                report(
                    &mut problems,
                    rule.at,
                    "`actions` is empty; name at least one of pull, push, delete, *".into(),
                );
            }
            let mut who = Vec::with_capacity(rule.who.len());
            for subject in &rule.who {
                match parse_subject(&subject.value) {
                    Ok(SubjectText::Resolved(resolved)) => who.push(resolved),
                    Ok(SubjectText::Group(name)) => match group_ids.get(name) {
                        Some(id) => who.push(Subject::Group(*id)),
                        None => report(&mut problems, subject.at, format!(
                            "group {name:?} is not defined; add it under [groups] (`{name} = []` when its members come only from the user store) or fix the name"
                        )),
                    },
                    Ok(SubjectText::Issuer(name)) => {
                        match source.issuers.iter().position(|i| i.name.value == name) {
                            Some(id) => who.push(Subject::Issuer(id as u32)),
                            None => report(&mut problems, subject.at, format!(
                                "issuer {name:?} is not declared; add an [[issuer]] with name = {name:?} or fix the name"
                            )),
                        }
                    }
                    Err(message) => report(&mut problems, subject.at, message),
                }
            }
            let mut declared = ActionSet::EMPTY;
            for action in &rule.actions {
                match ActionSet::parse_one(&action.value) {
                    Some(known) => declared = declared.union(known),
                    None => report(&mut problems, action.at, format!(
                        "unknown action {:?} (repository actions are pull, push, delete and *; registry:catalog takes *)",
                        action.value
                    )),
                }
            }
            let mut what = Vec::with_capacity(rule.what.len());
            for pattern in &rule.what {
                match ResourcePattern::parse_rule(&pattern.value) {
                    Ok(parsed) => {
                        let resource_type = parsed.resource_type();
                        let is_every_action_accepted = declared
                            .singles()
                            .all(|(single, _)| resource_type.accepts(single));
                        if !is_every_action_accepted {
                            report(
                                &mut problems,
                                pattern.at,
                                format!(
                                    "{}: {}; put it in a rule of its own",
                                    pattern.value,
                                    resource_type.action_help()
                                ),
                            );
                        }
                        what.push(parsed);
                    }
                    Err(message) => report(&mut problems, pattern.at, message),
                }
            }
            let claims = match &rule.claims {
                None => None,
                Some(claims) if rule.effect == Effect::Deny => {
                    report(
                        &mut problems,
                        claims.at,
                        "`claims` only apply to allow rules".into(),
                    );
                    None
                }
                Some(claims) => match parse_claims(&claims.value) {
                    Ok(map) => Some(map),
                    Err(message) => {
                        report(&mut problems, claims.at, message);
                        None
                    }
                },
            };
            let mut when = Vec::new();
            if let Some(conditions) = &rule.when {
                if conditions.value.is_empty() {
                    report(&mut problems, conditions.at, "`when` is empty; name the claims that must match, e.g. { ref = \"refs/heads/main\" }".into());
                }
                for (path, text) in &conditions.value {
                    if path.is_empty() || !path.iter().all(|key| is_claim_name(key)) {
                        report(&mut problems, conditions.at, format!(
                            "`when` claim {:?}: a claim name is 1 to 64 letters, digits, '_', '-' or '.'",
                            path.join(".")
                        ));
                        continue;
                    }
                    match ClaimPattern::parse(text) {
                        Ok(pattern) => when.push(Condition {
                            path: path.clone(),
                            pattern,
                        }),
                        Err(message) => report(&mut problems, conditions.at, message),
                    }
                }
            }
            let uses_claims = rule.when.is_some() || what.iter().any(ResourcePattern::has_claims);
            if uses_claims {
                if rule.effect == Effect::Deny && what.iter().any(ResourcePattern::has_claims) {
                    report(&mut problems, rule.at, "{claim:NAME} and {person} only apply to allow rules (a deny names what it protects; use `when` to say whom it stops)".into());
                }
                let is_workload_only = who.iter().all(|subject| {
                    matches!(
                        subject,
                        Subject::Issuer(_) | Subject::Kind(CredentialKind::Oidc)
                    )
                });
                if !is_workload_only {
                    report(&mut problems, rule.at, "a rule with `when`, {claim:NAME} or {person} is about workloads: its `who` may only list oidc:ISSUER and kind:oidc".into());
                }
            }
            if what
                .iter()
                .any(|pattern| pattern.has_person() && !pattern.starts_with_person())
            {
                report(&mut problems, rule.at, "{person} must be the first segment of a pattern (repository:{person}/**): the namespace guard that keeps a person's name off shared namespaces checks leading segments".into());
            }
            if what.iter().any(ResourcePattern::has_person) {
                for subject in &who {
                    let issuer = match subject {
                        Subject::Issuer(id) => source.issuers.get(*id as usize),
                        _ => None,
                    };
                    if let Some(issuer) = issuer.filter(|issuer| issuer.person.is_none()) {
                        report(&mut problems, rule.at, format!(
                            "{{person}} needs the issuer to say which claim names a person: add person = \"preferred_username\" (or another claim) to issuer {:?}",
                            issuer.name.value
                        ));
                    }
                }
                let is_kind_only = who
                    .iter()
                    .all(|subject| matches!(subject, Subject::Kind(CredentialKind::Oidc)));
                if is_kind_only && source.issuers.iter().all(|i| i.person.is_none()) {
                    report(&mut problems, rule.at, "{person} needs an issuer that says which claim names a person (person = \"CLAIM\"); no [[issuer]] does".into());
                }
            }
            if problems.len() == problems_before {
                rules.push(Rule {
                    effect: rule.effect,
                    who,
                    what,
                    declared,
                    description: rule.description.clone(),
                    claims,
                    when,
                    at: rule.at,
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }

        let mut indexes = [Index::default(), Index::default()];
        for (rule_id, rule) in rules.iter().enumerate() {
            for (pattern_id, pattern) in rule.what.iter().enumerate() {
                let resource_type = pattern.resource_type();
                let entry = Entry {
                    rule: rule_id as u32,
                    pattern: pattern_id as u32,
                    actions: resource_type.resolve(rule.declared),
                };
                indexes[resource_type.index()].insert(pattern, entry);
            }
        }
        for ids in memberships.values_mut() {
            ids.sort_unstable();
        }
        Ok(Policy {
            files: source.files.clone(),
            groups,
            group_ids,
            memberships,
            rules,
            issuers,
            indexes,
            #[cfg(feature = "load")]
            source,
        })
    }

    /// Number of rules, allow and deny.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Names of the groups the policy defines.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The trusted OIDC issuers, in declaration order.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// The issuer whose `url` is exactly `iss`, if one is declared.
    pub fn issuer_for(&self, iss: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|issuer| issuer.url == iss)
    }

    pub(crate) fn issuer_id(&self, name: &str) -> Option<u32> {
        self.issuers
            .iter()
            .position(|issuer| issuer.name == name)
            .map(|id| id as u32)
    }

    /// Names of the policy files, in the order they were merged.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Whether an account called `name` would capture a shared namespace: some
    /// rule's pattern that does not start with `{account}` has a leading segment
    /// matching `name`, literally (`team/**`) or as a glob (`ci-*/**`). Such an
    /// account would own that namespace through `{account}/**`, so account
    /// creation (users, and the owners of API tokens) must refuse it.
    ///
    /// A leading `*` or `**` matches every name and so reserves none: a rule
    /// such as `repository:*/cache` is everyone's by design.
    ///
    /// A rule whose pattern starts with `{claim:NAME}` reaches the namespace its
    /// workloads' claims name, which its `when` conditions pin (`repository_owner
    /// = "acme"` for `{claim:repository}/**`): the leading segment of each of its
    /// `when` values is reserved the same way, so no account called `acme` owns
    /// what that organisation's CI pushes.
    pub fn is_namespace(&self, name: &str) -> bool {
        self.rules.iter().any(|rule| {
            rule.what
                .iter()
                .any(|pattern| pattern.is_leading_segment(name))
                || (rule.what.iter().any(ResourcePattern::starts_with_claim)
                    && rule
                        .when
                        .iter()
                        .any(|condition| condition.pattern.is_leading_segment(name)))
        })
    }

    pub(crate) fn index(&self, resource_type: ResourceType) -> &Index {
        &self.indexes[resource_type.index()]
    }

    pub(crate) fn group_id(&self, name: &str) -> Option<u32> {
        self.group_ids.get(name).copied()
    }

    pub(crate) fn static_groups(&self, account: &str) -> &[u32] {
        self.memberships.get(account).map_or(&[], Vec::as_slice)
    }

    /// `file:line` of a rule.
    pub(crate) fn rule_source(&self, rule: &Rule) -> String {
        format!("{}:{}", file_name(&self.files, rule.at), rule.at.line)
    }
}

fn file_name(files: &[String], at: Location) -> String {
    files
        .get(at.file as usize)
        .cloned()
        .unwrap_or_else(|| "<unknown file>".into())
}

/// Parses a rule's `claims` (JSON object text) and refuses the claims scopegate sets itself.
fn parse_claims(text: &str) -> Result<Map<String, Value>, String> {
    let map: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| format!("`claims` must be a table: {e}"))?;
    if let Some(reserved) = map.keys().find(|k| RESERVED_CLAIMS.contains(&k.as_str())) {
        return Err(format!(
            "claim {reserved:?} is set by scopegate itself and cannot come from a policy (reserved: {})",
            RESERVED_CLAIMS.join(", ")
        ));
    }
    Ok(map)
}
