//! Reading docker_auth's YAML configuration: its static `users:` and its `acl:`.
//! Every other top-level section (server, token, other authenticators) is ignored;
//! inside `users:` and `acl:` an unknown key is an error, so a typo is not silently
//! dropped from a translation.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The parts of a docker_auth configuration the importer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The static users, by name; `""` is docker_auth's anonymous caller.
    pub users: Vec<User>,
    /// The ACL, in file order.
    pub acl: Vec<Entry>,
}

/// One static user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// The bcrypt hash; `None` when the file gives none (docker_auth then accepts any
    /// password for the name).
    pub password: Option<String>,
    /// Label key to values.
    pub labels: BTreeMap<String, Vec<String>>,
}

/// One ACL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based position in `acl:`, as the importer's messages name it.
    pub number: usize,
    pub conditions: Conditions,
    /// The actions as written; `["*"]` is every requested action, `[]` denies.
    pub actions: Vec<String>,
    pub comment: Option<String>,
}

/// An entry's `match:`; an absent condition matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub account: Option<String>,
    pub resource_type: Option<String>,
    pub name: Option<String>,
    pub ip: Option<String>,
    pub service: Option<String>,
    /// Label key to the pattern one of the caller's values must match.
    pub labels: BTreeMap<String, String>,
}

impl Entry {
    /// `entry N` with the entry's comment when it has one, for messages.
    pub fn describe(&self) -> String {
        match &self.comment {
            Some(comment) => format!("entry {} ({comment:?})", self.number),
            None => format!("entry {}", self.number),
        }
    }
}

#[derive(Deserialize)]
struct FileYaml {
    #[serde(default)]
    users: Option<BTreeMap<String, Option<UserYaml>>>,
    #[serde(default)]
    acl: Option<Vec<EntryYaml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserYaml {
    password: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryYaml {
    #[serde(rename = "match")]
    conditions: Option<ConditionsYaml>,
    actions: Option<Vec<String>>,
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionsYaml {
    account: Option<String>,
    #[serde(rename = "type")]
    resource_type: Option<String>,
    name: Option<String>,
    ip: Option<String>,
    service: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Parses a configuration file's text. Errors name the YAML position, or the entry
/// that lacks `match:` or `actions:` (docker_auth itself cannot start without them).
pub fn parse(text: &str) -> Result<Config, String> {
    let file: FileYaml = serde_yaml_ng::from_str(text).map_err(|error| error.to_string())?;
    let users = file
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|(name, user)| {
            let user = user.unwrap_or(UserYaml {
                password: None,
                labels: BTreeMap::new(),
            });
            User {
                name,
                password: user.password,
                labels: user.labels,
            }
        })
        .collect();
    let mut acl = Vec::new();
    let mut problems = Vec::new();
    for (index, entry) in file.acl.unwrap_or_default().into_iter().enumerate() {
        let number = index + 1;
        let (Some(conditions), Some(actions)) = (entry.conditions, entry.actions) else {
            problems.push(format!(
                "entry {number}: needs both `match:` and `actions:`"
            ));
            continue;
        };
        acl.push(Entry {
            number,
            conditions: Conditions {
                account: conditions.account,
                resource_type: conditions.resource_type,
                name: conditions.name,
                ip: conditions.ip,
                service: conditions.service,
                labels: conditions.labels,
            },
            actions,
            comment: entry.comment,
        });
    }
    if problems.is_empty() {
        Ok(Config { users, acl })
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn users_and_entries_are_read_in_order_and_other_sections_ignored() {
        let text = r#"
server: {addr: ":5001"}
token: {issuer: "Acme auth", expiration: 900}
users:
  "alice":
    password: "$2y$05$abc"
    labels: {group: [admins, dev]}
  "": {}
  "bob":
acl:
  - match: {account: "alice"}
    actions: ["*"]
    comment: "alice does everything"
  - match: {type: registry, name: catalog, labels: {group: "/dev|ops/"}, ip: "10.0.0.0/8", service: "reg"}
    actions: []
"#;
        let config = parse(text).unwrap();
        let names: Vec<&str> = config.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["", "alice", "bob"]);
        assert_eq!(config.users[1].password.as_deref(), Some("$2y$05$abc"));
        assert_eq!(config.users[1].labels["group"], ["admins", "dev"]);
        assert_eq!(config.users[2].password, None);
        assert_eq!(config.acl.len(), 2);
        assert_eq!(config.acl[0].number, 1);
        assert_eq!(config.acl[0].actions, ["*"]);
        assert_eq!(
            config.acl[0].describe(),
            "entry 1 (\"alice does everything\")"
        );
        let second = &config.acl[1].conditions;
        assert_eq!(second.resource_type.as_deref(), Some("registry"));
        assert_eq!(second.labels["group"], "/dev|ops/");
        assert_eq!(second.ip.as_deref(), Some("10.0.0.0/8"));
        assert_eq!(second.service.as_deref(), Some("reg"));
        assert!(config.acl[1].actions.is_empty());
    }

    #[test]
    fn typos_and_missing_parts_are_errors() {
        let cases = [
            (
                "acl:\n  - match: {acount: x}\n    actions: []\n",
                "unknown field `acount`",
            ),
            ("acl:\n  - match: {account: x}\n", "entry 1: needs both"),
            ("users:\n  a: {pasword: x}\n", "unknown field `pasword`"),
            ("acl: [\n", "did not find expected"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
