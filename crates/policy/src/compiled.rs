//! The compiled form build.rs embeds, read in place.
//!
//! A fresh WASI 0.2 instance serves one request, so decoding a whole 10,000-rule policy
//! for it (milliseconds) would dominate the request. The compiled form therefore keeps
//! each rule's source separately, with a table from each pattern's leading literal
//! segment to the rules that use it. [`CompiledPolicy`] reads that table in place and
//! decodes only the rules a request could match: those with a pattern whose first segment
//! is the first segment of a requested name, plus every rule whose first segment is not a
//! literal (`{account}`, `*`, `**`, globs). Rules with any other literal first segment can
//! match none of the requested names (see `index.rs`), so leaving them out changes nothing.
//! The chosen rules go through [`Policy::build`], the same validation the files went
//! through, in their original order.
//!
//! Layout after the magic (integers are little-endian `u32`):
//! header length, header (postcard: files, groups); rule count, rule count + 1 offsets
//! into the rule bytes; count and ids of the rules every request includes; key count, per
//! key (start, end) in the key bytes and (start, end) in the key ids, sorted by key
//! bytes; key bytes length and key bytes; key id count and key ids; the rule bytes (each
//! rule in postcard).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::explain::{CallerSummary, Explanation};
use crate::grant::Grant;
use crate::limit::ScopeLimit;
#[cfg(feature = "load")]
use crate::pattern::{ResourcePattern, Segment};
use crate::policy::Policy;
use crate::scope::Scope;
use crate::source::{GroupSource, IssuerSource, PolicySource, RuleSource};
use crate::subject::Caller;

/// Identifies the format and its version; bump the last byte on any layout change.
const MAGIC: &[u8; 8] = b"scopeg\x00\x04";

/// What every subset of the policy shares.
#[derive(Serialize, Deserialize)]
struct Header {
    files: Vec<String>,
    groups: Vec<GroupSource>,
    issuers: Vec<IssuerSource>,
}

/// A compiled policy read in place: construction checks the layout's bounds only, and each
/// evaluation decodes just the rules the request could match.
#[derive(Debug, Clone, Copy)]
pub struct CompiledPolicy<'a> {
    header: &'a [u8],
    rule_count: usize,
    rule_offsets: &'a [u8],
    always: &'a [u8],
    key_entries: &'a [u8],
    keys: &'a [u8],
    key_ids: &'a [u8],
    rules: &'a [u8],
}

/// A cursor over the compiled bytes; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < len {
            return Err(truncated());
        }
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(read_u32(self.take(4)?, 0).unwrap_or(0))
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.u32()?).map_err(|_| truncated())
    }

    /// `count` items of `width` u32 each.
    fn table(&mut self, count: usize, width: usize) -> Result<&'a [u8], DecodeError> {
        let len = count.checked_mul(width * 4).ok_or_else(truncated)?;
        self.take(len)
    }
}

/// The `index`-th little-endian u32 of `bytes`, if there is one.
fn read_u32(bytes: &[u8], index: usize) -> Option<u32> {
    let start = index.checked_mul(4)?;
    let word = bytes.get(start..start.checked_add(4)?)?;
    Some(u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
}

fn read_usize(bytes: &[u8], index: usize) -> Option<usize> {
    read_u32(bytes, index).and_then(|value| usize::try_from(value).ok())
}

fn truncated() -> DecodeError {
    DecodeError("malformed compiled policy: truncated".into())
}

impl<'a> CompiledPolicy<'a> {
    /// Checks the magic and the layout's bounds, without decoding any rule.
    ///
    /// Errors mean the bytes are not a policy of this version (a build mix-up): the caller
    /// must fail closed.
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| DecodeError("not a compiled scopegate policy of this version".into()))?;
        let mut reader = Reader(body);
        let header_len = reader.len()?;
        let header = reader.take(header_len)?;
        let rule_count = reader.len()?;
        let rule_offsets = reader.table(rule_count.checked_add(1).ok_or_else(truncated)?, 1)?;
        let always_count = reader.len()?;
        let always = reader.table(always_count, 1)?;
        let key_count = reader.len()?;
        let key_entries = reader.table(key_count, 4)?;
        let keys_len = reader.len()?;
        let keys = reader.take(keys_len)?;
        let key_id_count = reader.len()?;
        let key_ids = reader.table(key_id_count, 1)?;
        let rules = reader.0;
        if read_usize(rule_offsets, rule_count) != Some(rules.len()) {
            return Err(truncated());
        }
        Ok(Self {
            header,
            rule_count,
            rule_offsets,
            always,
            key_entries,
            keys,
            key_ids,
            rules,
        })
    }

    /// How many rules the whole policy has.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Whether some rule's pattern starts with a segment that matches `name`, literally
    /// (`team` for `repository:team/**`) or as a glob (`ci-foo` for `repository:ci-*/**`):
    /// such a name must not be given to an account, whose `{account}/**` would then reach
    /// into the namespace. For the admin API only: it decodes the rules that do not start
    /// with a literal. A policy that does not decode counts every name as a namespace.
    pub fn is_namespace(&self, name: &str) -> bool {
        self.key_rules(name).is_some()
            || self
                .policy()
                .map_or(true, |policy| policy.is_namespace(name))
    }

    /// Names of the groups the policy defines. For the admin API only: it decodes the
    /// whole policy.
    pub fn groups(&self) -> Result<Vec<String>, DecodeError> {
        self.policy().map(|policy| policy.groups().to_vec())
    }

    /// The policy's groups and issuers with no rule: what checking an ID token needs.
    pub fn without_rules(&self) -> Result<Policy, DecodeError> {
        self.build(Vec::new())
    }

    /// The whole policy, every rule decoded and validated.
    pub fn policy(&self) -> Result<Policy, DecodeError> {
        self.build((0..self.rule_count).collect())
    }

    /// The rules that could match any of `requested`, as a policy that evaluates every
    /// one of `requested` exactly as the whole policy does.
    pub fn for_scopes(&self, requested: &[Scope]) -> Result<Policy, DecodeError> {
        let mut ids: Vec<usize> = (0..self.always.len() / 4)
            .filter_map(|index| read_usize(self.always, index))
            .collect();
        for scope in requested {
            let first = scope.name().split('/').next().unwrap_or_default();
            if let Some((start, end)) = self.key_rules(first) {
                ids.extend((start..end).filter_map(|index| read_usize(self.key_ids, index)));
            }
        }
        ids.sort_unstable();
        ids.dedup();
        self.build(ids)
    }

    /// Like [`Policy::evaluate`] on the whole policy. A policy that does not decode grants
    /// nothing (build.rs decodes it before it is embedded, so this cannot happen short of
    /// a build mix-up).
    pub fn evaluate(
        &self,
        caller: &Caller<'_>,
        requested: &[Scope],
        limits: Option<&[ScopeLimit]>,
    ) -> Grant {
        self.for_scopes(requested)
            .map(|policy| policy.evaluate(caller, requested, limits))
            .unwrap_or_default()
    }

    /// Like [`Policy::explain`] on the whole policy. A policy that does not decode
    /// explains as an empty one: nothing granted.
    pub fn explain(
        &self,
        caller: &Caller<'_>,
        requested: &[Scope],
        limits: Option<&[ScopeLimit]>,
    ) -> Explanation {
        let policy = self
            .for_scopes(requested)
            .or_else(|_| Policy::build(PolicySource::default()).map_err(|_| truncated()));
        match policy {
            Ok(policy) => policy.explain(caller, requested, limits),
            // An empty source always validates; were it not to, nothing is granted.
            Err(_) => Explanation {
                caller: CallerSummary {
                    account: caller.account.map(str::to_owned),
                    kind: None,
                    groups: Vec::new(),
                    limits: None,
                    issuer: None,
                },
                scopes: Vec::new(),
                grant: Grant::default(),
            },
        }
    }

    /// The range in the key ids of the rules filed under `key`, found by binary search.
    fn key_rules(&self, key: &str) -> Option<(usize, usize)> {
        let count = self.key_entries.len() / 16;
        let key_at = |index: usize| {
            let start = read_usize(self.key_entries, index * 4)?;
            let end = read_usize(self.key_entries, index * 4 + 1)?;
            self.keys.get(start..end)
        };
        let (mut low, mut high) = (0, count);
        while low < high {
            let middle = low + (high - low) / 2;
            match key_at(middle)?.cmp(key.as_bytes()) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => {
                    let start = read_usize(self.key_entries, middle * 4 + 2)?;
                    let end = read_usize(self.key_entries, middle * 4 + 3)?;
                    return (start <= end).then_some((start, end));
                }
            }
        }
        None
    }

    /// Decodes the header and the rules `ids` (ascending) and builds them into a policy.
    fn build(&self, ids: Vec<usize>) -> Result<Policy, DecodeError> {
        let header: Header = postcard::from_bytes(self.header)
            .map_err(|e| DecodeError(format!("malformed compiled policy: {e}")))?;
        let mut rules = Vec::with_capacity(ids.len());
        for id in ids {
            let start = read_usize(self.rule_offsets, id).ok_or_else(truncated)?;
            let end = read_usize(self.rule_offsets, id + 1).ok_or_else(truncated)?;
            let bytes = self.rules.get(start..end).ok_or_else(truncated)?;
            let rule: RuleSource = postcard::from_bytes(bytes)
                .map_err(|e| DecodeError(format!("malformed compiled policy: {e}")))?;
            rules.push(rule);
        }
        let source = PolicySource {
            files: header.files,
            groups: header.groups,
            issuers: header.issuers,
            rules,
        };
        Policy::build(source).map_err(|problems| {
            let first = problems
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            DecodeError(format!("compiled policy does not validate: {first}"))
        })
    }
}

impl Policy {
    /// Decodes the whole compact form made by `Policy::to_compiled`.
    ///
    /// Errors mean the bytes are not a policy of this version (a build mix-up): the caller
    /// must fail closed.
    pub fn from_compiled(bytes: &[u8]) -> Result<Policy, DecodeError> {
        CompiledPolicy::new(bytes)?.policy()
    }

    /// The compact form for [`CompiledPolicy`] and `Policy::from_compiled`.
    #[cfg(feature = "load")]
    pub fn to_compiled(&self) -> Vec<u8> {
        use std::collections::BTreeMap;

        // Serialising plain strings, integers and vectors into a Vec cannot fail; if it
        // ever did, the empty part fails `from_compiled` (build.rs checks), never silently.
        let header = postcard::to_allocvec(&Header {
            files: self.source.files.clone(),
            groups: self.source.groups.clone(),
            issuers: self.source.issuers.clone(),
        })
        .unwrap_or_default();
        let mut rule_bytes = Vec::new();
        let mut offsets = vec![0u32];
        let mut always = Vec::new();
        let mut by_key: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for (id, (source, rule)) in self.source.rules.iter().zip(&self.rules).enumerate() {
            rule_bytes.extend(postcard::to_allocvec(source).unwrap_or_default());
            offsets.push(len_u32(rule_bytes.len()));
            let id = len_u32(id);
            let mut is_always = false;
            for pattern in &rule.what {
                match first_literal(pattern) {
                    Some(key) => {
                        let ids = by_key.entry(key).or_default();
                        if ids.last() != Some(&id) {
                            ids.push(id);
                        }
                    }
                    None => is_always = true,
                }
            }
            if is_always {
                always.push(id);
            }
        }
        let mut key_entries = Vec::new();
        let mut keys = Vec::new();
        let mut key_ids = Vec::new();
        for (key, ids) in &by_key {
            let key_start = len_u32(keys.len());
            keys.extend_from_slice(key.as_bytes());
            let ids_start = len_u32(key_ids.len());
            key_ids.extend_from_slice(ids);
            key_entries.extend([
                key_start,
                len_u32(keys.len()),
                ids_start,
                len_u32(key_ids.len()),
            ]);
        }

        let mut out = MAGIC.to_vec();
        let words = |out: &mut Vec<u8>, values: &[u32]| {
            for value in values {
                out.extend_from_slice(&value.to_le_bytes());
            }
        };
        words(&mut out, &[len_u32(header.len())]);
        out.extend(&header);
        words(&mut out, &[len_u32(self.source.rules.len())]);
        words(&mut out, &offsets);
        words(&mut out, &[len_u32(always.len())]);
        words(&mut out, &always);
        words(&mut out, &[len_u32(by_key.len())]);
        words(&mut out, &key_entries);
        words(&mut out, &[len_u32(keys.len())]);
        out.extend(&keys);
        words(&mut out, &[len_u32(key_ids.len())]);
        words(&mut out, &key_ids);
        out.extend(rule_bytes);
        out
    }
}

/// A length as stored; compiled policies stay far below 4 GiB (policy files are read
/// into memory whole, and build.rs decodes the result).
#[cfg(feature = "load")]
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The pattern's first segment when it is a literal: the key its rule is filed under.
#[cfg(feature = "load")]
fn first_literal(pattern: &ResourcePattern) -> Option<&str> {
    match pattern.segments().first() {
        Some(Segment::Literal(literal)) => Some(literal),
        _ => None,
    }
}

/// Bytes that are not a compiled policy of this version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a panic is how a test fails"
)]
mod tests {
    use super::*;
    use crate::evaluate::tests::policy;
    use crate::scope::parse_scopes;
    use crate::subject::CredentialKind;

    #[test]
    fn namespaces_are_literal_and_glob_leading_segments() {
        let bytes = policy().to_compiled();
        let compiled = CompiledPolicy::new(&bytes).unwrap();
        for (name, expected) in [
            ("platform", true),
            ("public", true),
            ("ci-7", true),
            ("ci-", true),
            ("alice", false),
            ("platformer", false),
        ] {
            assert_eq!(compiled.is_namespace(name), expected, "{name}");
            assert_eq!(policy().is_namespace(name), expected, "{name}");
        }
        assert!(compiled.groups().unwrap().contains(&"ci".to_string()));
    }

    /// Evaluating through the in-place form (only the rules a request could match) gives
    /// exactly what the whole policy gives, explanations included.
    #[test]
    fn subsets_evaluate_like_the_whole_policy() {
        let whole = policy();
        let bytes = whole.to_compiled();
        let compiled = CompiledPolicy::new(&bytes).unwrap();
        assert_eq!(compiled.rule_count(), whole.rule_count());
        let callers: &[(Option<&str>, &[&str], Option<CredentialKind>)] = &[
            (None, &[], None),
            (Some("alice"), &[], Some(CredentialKind::Password)),
            (Some("bob"), &["ci"], Some(CredentialKind::Deploy)),
            (Some("root"), &[], Some(CredentialKind::Password)),
            (Some("platform"), &[], Some(CredentialKind::Password)),
        ];
        let requests = [
            "repository:platform/api:pull,push,delete",
            "repository:platform/api/deep:*",
            "repository:public/app:pull repository:alice/tools:*",
            "repository:public/secret/x:pull",
            "repository:bob/app:push repository:ci-7/cache:pull",
            "registry:catalog:*",
            "repository:unrelated/app:pull",
            "repository:root:pull",
        ];
        for (account, group_names, kind) in callers {
            let groups: Vec<String> = group_names.iter().map(|g| g.to_string()).collect();
            let caller = Caller {
                account: *account,
                groups: &groups,
                kind: *kind,
                workload: None,
            };
            for request in requests {
                let scopes = parse_scopes([request]).unwrap();
                let expected = whole.evaluate(&caller, &scopes, None);
                assert_eq!(
                    compiled.evaluate(&caller, &scopes, None),
                    expected,
                    "{account:?} {request}"
                );
                assert_eq!(
                    compiled.explain(&caller, &scopes, None),
                    whole.explain(&caller, &scopes, None),
                    "{account:?} {request}"
                );
            }
        }
        for name in ["platform", "public", "alice", "ci-7", "catalog"] {
            assert_eq!(
                compiled.is_namespace(name),
                whole.is_namespace(name),
                "{name}"
            );
        }
    }

    /// People (`{person}`, list claims, a deny with `when`) evaluate in the in-place form
    /// as in the whole policy, the namespace guard on `{person}` included: the subset
    /// holds every rule that reserves the namespace a person's name could reach.
    #[test]
    fn people_evaluate_in_subsets_like_the_whole_policy() {
        let whole = Policy::from_toml([
            ("people.toml", crate::evaluate::tests::PEOPLE_POLICY),
            ("teams.toml", "[[allow]]\nwho = [\"authenticated\"]\nwhat = [\"repository:team/**\"]\nactions = [\"pull\"]\n"),
        ])
        .unwrap();
        let bytes = whole.to_compiled();
        let compiled = CompiledPolicy::new(&bytes).unwrap();
        let people = [
            serde_json::json!({"sub": "1", "preferred_username": "jane", "groups": ["platform"]}),
            serde_json::json!({"sub": "2", "preferred_username": "carl", "groups": ["contractors", "platform"]}),
            serde_json::json!({"sub": "3", "preferred_username": "platform"}),
            serde_json::json!({"sub": "4", "preferred_username": "team"}),
        ];
        let requests = [
            "repository:jane/app:*",
            "repository:platform/base:push,delete repository:platform/prod:push",
            "repository:team/x:push",
            "repository:carl/prod:push",
        ];
        for claims in &people {
            let claims = claims.as_object().unwrap();
            let caller = Caller {
                account: Some("corp:x"),
                groups: &[],
                kind: Some(CredentialKind::Oidc),
                workload: Some(crate::Workload {
                    issuer: "corp",
                    claims,
                }),
            };
            for request in requests {
                let scopes = parse_scopes([request]).unwrap();
                assert_eq!(
                    compiled.evaluate(&caller, &scopes, None),
                    whole.evaluate(&caller, &scopes, None),
                    "{claims:?} {request}"
                );
            }
        }
        let team = serde_json::json!({"preferred_username": "team"});
        let caller = Caller {
            account: Some("corp:x"),
            groups: &[],
            kind: Some(CredentialKind::Oidc),
            workload: Some(crate::Workload {
                issuer: "corp",
                claims: team.as_object().unwrap(),
            }),
        };
        let scopes = parse_scopes(["repository:team/x:push"]).unwrap();
        assert!(compiled.evaluate(&caller, &scopes, None).access.is_empty());
    }

    #[test]
    fn truncated_or_foreign_bytes_are_refused() {
        let bytes = policy().to_compiled();
        for cut in [0, 7, 8, 11, 12, bytes.len() / 2, bytes.len() - 1] {
            assert!(CompiledPolicy::new(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut old = bytes.clone();
        old[7] = 1;
        assert!(CompiledPolicy::new(&old).is_err());
    }
}
