//! `scopegate import ...`: users (through the admin API) and policy from the
//! servers operators run today. One file or folder per format.

pub mod docker_auth;
pub mod htpasswd;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::store_cmd::Call;

/// `scopegate import ...`
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// Users of an htpasswd file (bcrypt only, as distribution's htpasswd
    /// auth): they keep their passwords, rehashed to argon2id at their first
    /// login. Any line that cannot be imported stops the import before
    /// anything is written.
    Htpasswd {
        /// The htpasswd file.
        file: PathBuf,
        /// A group for every imported user (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Replace the password of users who exist already (they are left
        /// alone otherwise).
        #[arg(long)]
        update: bool,
    },
    /// docker_auth's static users (their labels as groups) through the admin API,
    /// and with --policy-out its ACL as a tested policy file. Anything that cannot
    /// be imported or translated exactly stops the import before anything is written.
    DockerAuth(docker_auth::DockerAuthArgs),
}

impl ImportCommand {
    /// Whether the command talks to a server; `is_server_given` says whether
    /// `--server` was given on the command line.
    pub fn needs_server(&self, is_server_given: bool) -> bool {
        match self {
            ImportCommand::Htpasswd { .. } => true,
            ImportCommand::DockerAuth(args) => args.imports_users(is_server_given),
        }
    }
}

/// A user to create: name, password hash (checked), groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub hash: String,
    pub groups: Vec<String>,
}

/// What `--update` replaces in users who exist already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    LeaveAlone,
    Password,
    PasswordAndGroups,
}

/// What an import did, for its summary line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub left_alone: Vec<String>,
}

/// Runs an import with `call` as the admin client (`None` when
/// [`ImportCommand::needs_server`] said no).
pub fn run(command: &ImportCommand, call: Option<&Call<'_>>) -> Result<()> {
    match command {
        ImportCommand::DockerAuth(args) => docker_auth::run(args, call),
        ImportCommand::Htpasswd {
            file,
            groups,
            update,
        } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let entries = match htpasswd::parse(&text) {
                Ok(entries) => entries,
                Err(problems) => bail!(
                    "{}: nothing imported; {} line(s) cannot be:\n  {}",
                    file.display(),
                    problems.len(),
                    problems.join("\n  ")
                ),
            };
            let users: Vec<NewUser> = entries
                .into_iter()
                .map(|entry| NewUser {
                    name: entry.name,
                    hash: entry.hash,
                    groups: groups.clone(),
                })
                .collect();
            let Some(call) = call else {
                bail!("importing users needs a server");
            };
            let update = if *update {
                Update::Password
            } else {
                Update::LeaveAlone
            };
            let summary = import_users(call, &users, update)?;
            print_summary(&summary, update != Update::LeaveAlone);
            Ok(())
        }
    }
}

/// Creates every user of `users` that does not exist; `update` says what to
/// replace in those that do.
pub fn import_users(call: &Call<'_>, users: &[NewUser], update: Update) -> Result<Summary> {
    let listed = call("GET", "users", None)?;
    let existing: BTreeSet<String> = listed["users"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|user| user["name"].as_str().map(str::to_string))
        .collect();
    let mut summary = Summary::default();
    for NewUser { name, hash, groups } in users {
        if !existing.contains(name) {
            let body = json!({"name": name, "password_hash": hash, "groups": groups});
            call("POST", "users", Some(body)).with_context(|| format!("creating {name}"))?;
            summary.created.push(name.clone());
        } else if update != Update::LeaveAlone {
            let body: Value = if update == Update::PasswordAndGroups {
                json!({"password_hash": hash, "groups": groups})
            } else {
                json!({"password_hash": hash})
            };
            call("PATCH", &format!("users/{name}"), Some(body))
                .with_context(|| format!("updating {name}"))?;
            summary.updated.push(name.clone());
        } else {
            summary.left_alone.push(name.clone());
        }
    }
    Ok(summary)
}

pub(crate) fn print_summary(summary: &Summary, update: bool) {
    println!(
        "created {}, updated {}, left alone {}",
        summary.created.len(),
        summary.updated.len(),
        summary.left_alone.len()
    );
    if !summary.left_alone.is_empty() && !update {
        println!(
            "left alone (they exist already; --update replaces their password): {}",
            summary.left_alone.join(", ")
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn existing_users_are_left_alone_unless_update() {
        let sent = RefCell::new(Vec::new());
        let call = |method: &str, path: &str, body: Option<Value>| -> Result<Value> {
            sent.borrow_mut()
                .push((method.to_string(), path.to_string(), body));
            Ok(json!({"users": [{"name": "old"}]}))
        };
        let user = |name: &str, hash: &str| NewUser {
            name: name.into(),
            hash: hash.into(),
            groups: vec!["team".into()],
        };
        let users = vec![user("old", "$2y$05$x"), user("new", "$2y$05$y")];
        let summary = import_users(&call, &users, Update::LeaveAlone).unwrap();
        assert_eq!(summary.created, ["new"]);
        assert_eq!(summary.left_alone, ["old"]);
        let posted: Vec<_> = sent
            .borrow()
            .iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect();
        assert_eq!(posted, ["GET users", "POST users"]);
        assert_eq!(
            sent.borrow()[1].2,
            Some(json!({"name": "new", "password_hash": "$2y$05$y", "groups": ["team"]}))
        );

        sent.borrow_mut().clear();
        let summary = import_users(&call, &users, Update::Password).unwrap();
        assert_eq!(summary.updated, ["old"]);
        assert_eq!(
            sent.borrow()[1].2,
            Some(json!({"password_hash": "$2y$05$x"}))
        );
        let posted: Vec<_> = sent
            .borrow()
            .iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect();
        assert_eq!(posted, ["GET users", "PATCH users/old", "POST users"]);

        sent.borrow_mut().clear();
        import_users(&call, &users, Update::PasswordAndGroups).unwrap();
        assert_eq!(
            sent.borrow()[1].2,
            Some(json!({"password_hash": "$2y$05$x", "groups": ["team"]}))
        );
    }
}
