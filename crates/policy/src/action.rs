//! Actions and resource types: the small closed vocabulary every decision is made in.

use std::fmt;

/// The resource types a policy can grant; any other type in a request is never granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ResourceType {
    /// `repository:NAME` with actions `pull`, `push`, `delete` (`*` for all three).
    Repository,
    /// `registry:catalog`, whose only action is `*`.
    Registry,
}

impl ResourceType {
    pub(crate) fn parse(text: &str) -> Option<ResourceType> {
        match text {
            "repository" => Some(ResourceType::Repository),
            "registry" => Some(ResourceType::Registry),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ResourceType::Repository => "repository",
            ResourceType::Registry => "registry",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            ResourceType::Repository => 0,
            ResourceType::Registry => 1,
        }
    }

    /// Every action this type knows, as granted bits.
    pub(crate) fn every_action(self) -> ActionSet {
        match self {
            ResourceType::Repository => ActionSet::REPOSITORY_ALL,
            ResourceType::Registry => ActionSet::ANY,
        }
    }

    /// The concrete bits that a declared set (which may hold the literal `*`) stands for.
    pub(crate) fn resolve(self, declared: ActionSet) -> ActionSet {
        match self {
            ResourceType::Repository if declared.contains(ActionSet::ANY) => {
                ActionSet::REPOSITORY_ALL
            }
            ResourceType::Repository => declared.intersection(ActionSet::REPOSITORY_ALL),
            ResourceType::Registry => declared.intersection(ActionSet::ANY),
        }
    }

    /// Whether a policy or a limit may name this action on this type.
    pub(crate) fn accepts(self, action: ActionSet) -> bool {
        match self {
            ResourceType::Repository => true,
            ResourceType::Registry => action == ActionSet::ANY,
        }
    }

    /// The actions a person may write for this type, for error messages.
    pub(crate) fn action_help(self) -> &'static str {
        match self {
            ResourceType::Repository => "repository actions are pull, push, delete and *",
            ResourceType::Registry => "registry:catalog only takes the action *",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of known actions as bits. `ANY` is the literal `*`: in a request or a declaration
/// it is kept as written; [`ResourceType::resolve`] turns it into the concrete bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct ActionSet(u8);

impl ActionSet {
    pub(crate) const EMPTY: ActionSet = ActionSet(0);
    pub(crate) const PULL: ActionSet = ActionSet(1);
    pub(crate) const PUSH: ActionSet = ActionSet(2);
    pub(crate) const DELETE: ActionSet = ActionSet(4);
    pub(crate) const ANY: ActionSet = ActionSet(8);
    pub(crate) const REPOSITORY_ALL: ActionSet = ActionSet(1 | 2 | 4);

    /// Known actions in canonical (printing) order.
    pub(crate) const NAMED: [(ActionSet, &'static str); 4] = [
        (ActionSet::PULL, "pull"),
        (ActionSet::PUSH, "push"),
        (ActionSet::DELETE, "delete"),
        (ActionSet::ANY, "*"),
    ];

    /// The single known action spelled `text`, if any.
    pub(crate) fn parse_one(text: &str) -> Option<ActionSet> {
        ActionSet::NAMED
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(set, _)| *set)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn contains(self, other: ActionSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn intersects(self, other: ActionSet) -> bool {
        self.0 & other.0 != 0
    }

    pub(crate) fn union(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 | other.0)
    }

    pub(crate) fn intersection(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 & other.0)
    }

    pub(crate) fn difference(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 & !other.0)
    }

    /// The names of the actions in this set, in canonical order.
    pub(crate) fn names(self) -> impl Iterator<Item = &'static str> {
        ActionSet::NAMED
            .into_iter()
            .filter(move |(set, _)| self.contains(*set))
            .map(|(_, name)| name)
    }

    /// Each single action in this set, in canonical order.
    pub(crate) fn singles(self) -> impl Iterator<Item = (ActionSet, &'static str)> {
        ActionSet::NAMED
            .into_iter()
            .filter(move |(set, _)| self.contains(*set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_expands_the_wildcard_per_type() {
        let cases = [
            (
                ResourceType::Repository,
                ActionSet::ANY,
                ActionSet::REPOSITORY_ALL,
            ),
            (ResourceType::Repository, ActionSet::PULL, ActionSet::PULL),
            (
                ResourceType::Repository,
                ActionSet::PULL.union(ActionSet::ANY),
                ActionSet::REPOSITORY_ALL,
            ),
            (ResourceType::Registry, ActionSet::ANY, ActionSet::ANY),
            (ResourceType::Registry, ActionSet::PULL, ActionSet::EMPTY),
        ];
        for (resource_type, declared, expected) in cases {
            assert_eq!(
                resource_type.resolve(declared),
                expected,
                "{resource_type} {declared:?}"
            );
        }
    }

    #[test]
    fn names_are_in_canonical_order() {
        let set = ActionSet::DELETE.union(ActionSet::PULL);
        assert_eq!(set.names().collect::<Vec<_>>(), ["pull", "delete"]);
        assert_eq!(ActionSet::parse_one("push"), Some(ActionSet::PUSH));
        assert_eq!(ActionSet::parse_one("PUSH"), None);
    }
}
