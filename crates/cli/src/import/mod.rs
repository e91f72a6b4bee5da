//! `scopegate import ...`: users (and, later, policy) from the servers
//! operators run today, through the admin API. One file per format.

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
}

/// What an import did, for its summary line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub left_alone: Vec<String>,
}

/// Runs an import with `call` as the admin client.
pub fn run(command: &ImportCommand, call: &Call<'_>) -> Result<()> {
    match command {
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
            let users: Vec<(String, String)> = entries
                .into_iter()
                .map(|entry| (entry.name, entry.hash))
                .collect();
            let summary = import_users(call, &users, groups, *update)?;
            print_summary(&summary, *update);
            Ok(())
        }
    }
}

/// Creates every user of `users` (name, password hash) that does not exist;
/// with `update`, replaces the hash of those that do.
pub fn import_users(
    call: &Call<'_>,
    users: &[(String, String)],
    groups: &[String],
    update: bool,
) -> Result<Summary> {
    let listed = call("GET", "users", None)?;
    let existing: BTreeSet<String> = listed["users"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|user| user["name"].as_str().map(str::to_string))
        .collect();
    let mut summary = Summary::default();
    for (name, hash) in users {
        if !existing.contains(name) {
            let body = json!({"name": name, "password_hash": hash, "groups": groups});
            call("POST", "users", Some(body)).with_context(|| format!("creating {name}"))?;
            summary.created.push(name.clone());
        } else if update {
            let body: Value = json!({"password_hash": hash});
            call("PATCH", &format!("users/{name}"), Some(body))
                .with_context(|| format!("updating {name}"))?;
            summary.updated.push(name.clone());
        } else {
            summary.left_alone.push(name.clone());
        }
    }
    Ok(summary)
}

fn print_summary(summary: &Summary, update: bool) {
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
        let users = vec![
            ("old".to_string(), "$2y$05$x".to_string()),
            ("new".to_string(), "$2y$05$y".to_string()),
        ];
        let summary = import_users(&call, &users, &["team".into()], false).unwrap();
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
        let summary = import_users(&call, &users, &[], true).unwrap();
        assert_eq!(summary.updated, ["old"]);
        let posted: Vec<_> = sent
            .borrow()
            .iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect();
        assert_eq!(posted, ["GET users", "PATCH users/old", "POST users"]);
    }
}
