//! The rule index: a trie over each pattern's leading literal segments.
//!
//! A pattern is filed under the node its literal prefix leads to (`platform/**` under
//! `platform`, `team/app` under `team/app`, `{account}/**` under the account branch, `**`
//! at the root). A lookup walks the name's segments down the trie and collects the entries
//! on the way, so it only ever sees patterns whose literal prefix the name starts with:
//! cost grows with the name's depth and the number of plausible rules, not with the
//! number of rules in the policy.

use std::collections::BTreeMap;

use crate::action::ActionSet;
use crate::pattern::{ResourcePattern, Segment};

/// One pattern of one rule, with the concrete actions the rule names for its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) rule: u32,
    pub(crate) pattern: u32,
    pub(crate) actions: ActionSet,
}

#[derive(Debug, Default)]
struct Node {
    children: BTreeMap<Box<str>, u32>,
    account_child: Option<u32>,
    entries: Vec<Entry>,
}

#[derive(Debug)]
pub(crate) struct Index {
    nodes: Vec<Node>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            nodes: vec![Node::default()],
        }
    }
}

impl Index {
    pub(crate) fn insert(&mut self, pattern: &ResourcePattern, entry: Entry) {
        let mut node = 0usize;
        for segment in pattern.segments() {
            let existing = match segment {
                Segment::Literal(literal) => self.nodes[node].children.get(literal).copied(),
                Segment::Account => self.nodes[node].account_child,
                Segment::Glob(_)
                | Segment::Star
                | Segment::DoubleStar
                | Segment::Claim(_)
                | Segment::Person => break,
            };
            let next = match existing {
                Some(next) => next as usize,
                None => {
                    let next = self.nodes.len();
                    self.nodes.push(Node::default());
                    // Node counts stay far below u32::MAX: each pattern adds at most 128.
                    let id = next as u32;
                    match segment {
                        Segment::Literal(literal) => {
                            self.nodes[node].children.insert(literal.clone(), id);
                        }
                        _ => self.nodes[node].account_child = Some(id),
                    }
                    next
                }
            };
            node = next;
        }
        self.nodes[node].entries.push(entry);
    }

    /// Calls `visit` for every entry whose literal prefix `name_segments` starts with.
    /// `account` is the caller's account as `{account}` may match it.
    pub(crate) fn candidates(
        &self,
        name_segments: &[&str],
        account: Option<&str>,
        visit: &mut impl FnMut(Entry),
    ) {
        self.walk(0, 0, name_segments, account, visit);
    }

    fn walk(
        &self,
        node: usize,
        depth: usize,
        name_segments: &[&str],
        account: Option<&str>,
        visit: &mut impl FnMut(Entry),
    ) {
        let Some(current) = self.nodes.get(node) else {
            return;
        };
        for entry in &current.entries {
            visit(*entry);
        }
        let Some(segment) = name_segments.get(depth) else {
            return;
        };
        if let Some(child) = current.children.get(*segment) {
            self.walk(*child as usize, depth + 1, name_segments, account, visit);
        }
        if account == Some(*segment) {
            if let Some(child) = current.account_child {
                self.walk(child as usize, depth + 1, name_segments, account, visit);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_patterns_are_visited() {
        let patterns = [
            "repository:platform/**",
            "repository:team/app",
            "repository:team/*",
            "repository:{account}/**",
            "repository:**",
            "repository:other/**",
        ];
        let mut index = Index::default();
        for (i, text) in patterns.iter().enumerate() {
            let pattern = ResourcePattern::parse(text).unwrap();
            let entry = Entry {
                rule: i as u32,
                pattern: 0,
                actions: ActionSet::PULL,
            };
            index.insert(&pattern, entry);
        }
        let cases: &[(&str, Option<&str>, &[u32])] = &[
            ("platform/api", None, &[4, 0]),
            ("team/app", None, &[4, 2, 1]),
            ("team/web", None, &[4, 2]),
            ("alice/app", Some("alice"), &[4, 3]),
            ("alice/app", Some("bob"), &[4]),
            ("unrelated", None, &[4]),
        ];
        for (name, account, expected) in cases {
            let segments: Vec<&str> = name.split('/').collect();
            let mut seen = Vec::new();
            index.candidates(&segments, *account, &mut |e| seen.push(e.rule));
            assert_eq!(seen, *expected, "{name}");
        }
    }
}
