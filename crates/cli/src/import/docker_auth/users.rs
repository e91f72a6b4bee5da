//! docker_auth's static users as scopegate users: the bcrypt hash as it is, and each
//! label value as a group of the same name (`labels: {group: [admins]}` puts the user
//! in group `admins`, whatever the key). Refused, naming the user: a name or label
//! value that is not a valid scopegate name, a missing or non-bcrypt password, and a
//! value used under two keys (one group cannot stand for both labels).

use std::collections::{BTreeMap, BTreeSet};

use scopegate::authenticate::is_valid_account;

use super::config::Config;
use crate::import::{htpasswd, NewUser};

const NAME_RULE: &str = "1 to 64 of a-z 0-9 . _ - @, starting with a letter or digit";

/// The users to create, in name order, or every problem found. The anonymous entry
/// `""` is not a user of the store (scopegate lets anonymous callers ask anyway).
pub fn users(config: &Config) -> Result<Vec<NewUser>, Vec<String>> {
    let mut problems = Vec::new();
    let mut users = Vec::new();
    // label value -> key -> users
    let mut keys_of_value: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for user in config.users.iter().filter(|user| !user.name.is_empty()) {
        let name = &user.name;
        let mut is_importable = true;
        if !is_valid_account(name) {
            problems.push(format!(
                "user {name:?}: not a valid account name ({NAME_RULE})"
            ));
            is_importable = false;
        }
        let hash = match &user.password {
            None => {
                problems.push(format!(
                    "user {name}: no password (docker_auth accepts any password for it); give it \
                     a bcrypt hash in the file, or create it with `scopegate user add`"
                ));
                None
            }
            Some(hash) => match htpasswd::refusal(hash) {
                Some(why) => {
                    problems.push(format!("user {name}: {why}"));
                    None
                }
                None => Some(hash.clone()),
            },
        };
        let mut groups = BTreeSet::new();
        for (key, values) in &user.labels {
            for value in values {
                if is_valid_account(value) {
                    groups.insert(value.clone());
                    keys_of_value
                        .entry(value)
                        .or_default()
                        .entry(key)
                        .or_default()
                        .push(name);
                } else {
                    problems.push(format!(
                        "user {name}: label {key}: {value:?} cannot be a group name ({NAME_RULE})"
                    ));
                    is_importable = false;
                }
            }
        }
        if let (Some(hash), true) = (hash, is_importable) {
            users.push(NewUser {
                name: name.clone(),
                hash,
                groups: groups.into_iter().collect(),
            });
        }
    }
    for (value, keys) in &keys_of_value {
        if keys.len() > 1 {
            let uses: Vec<String> = keys
                .iter()
                .map(|(key, names)| format!("label {key} of {}", names.join(", ")))
                .collect();
            problems.push(format!(
                "group {value} would stand for {}: rename the value under one key",
                uses.join(" and ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(users)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::super::config;
    use super::*;

    const HASH: &str = "$2y$05$Sb7fX/NPr2mnOID/wCY1eeW3hJ/4/yudAXHJvB4f1YUVEq.M/zOBi";

    #[test]
    fn labels_become_groups_and_anonymous_is_no_user() {
        let yaml = format!(
            "users:\n  alice: {{password: \"{HASH}\", labels: {{group: [admins, devs], project: [web]}}}}\n  bob: {{password: \"{HASH}\"}}\n  \"\": {{}}\n"
        );
        let users = users(&config::parse(&yaml).unwrap()).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].name, "alice");
        assert_eq!(users[0].groups, ["admins", "devs", "web"]);
        assert_eq!(users[0].hash, HASH);
        assert!(users[1].groups.is_empty());
    }

    #[test]
    fn every_problem_is_named_with_its_user() {
        let yaml = format!(
            "users:
  Alice: {{password: \"{HASH}\"}}
  nopass: {{}}
  md5: {{password: \"$apr1$Yp6i0Kk5$Yl0mZ3d6/0yC0lZp9y5eI/\"}}
  dear: {{password: \"$2y$13$Sb7fX/NPr2mnOID/wCY1eeW3hJ/4/yudAXHJvB4f1YUVEq.M/zOBi\"}}
  carol: {{password: \"{HASH}\", labels: {{group: [\"Team A\"], project: [web]}}}}
  dave: {{password: \"{HASH}\", labels: {{group: [web]}}}}
"
        );
        let problems = users(&config::parse(&yaml).unwrap()).unwrap_err();
        let expected = [
            "user \"Alice\": not a valid account name",
            "user carol: label group: \"Team A\" cannot be a group name",
            "user dear: bcrypt cost 13 is outside 4..=12",
            "user md5: an Apache MD5 hash",
            "user nopass: no password",
            "group web would stand for label group of dave and label project of carol",
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        for (problem, start) in problems.iter().zip(expected) {
            assert!(problem.starts_with(start), "{problem} / {start}");
        }
    }
}
