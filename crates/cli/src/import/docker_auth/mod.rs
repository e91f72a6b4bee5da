//! `scopegate import docker-auth CONFIG.yml`: docker_auth's static users (through the
//! admin API) and its ACL (as a policy file with its tests). Everything is checked
//! before anything is written: one unimportable user or untranslatable entry stops
//! the whole import.
//!
//! - `config`: reading the YAML.
//! - `acl` (with `glob`): docker_auth's first-match semantics, evaluated.
//! - `pattern`: name sets as policy patterns.
//! - `translate`: the ACL as deny-wins rules.
//! - `cases`: the policy tests, from `acl`'s decisions.
//! - `users`: the users and their labels as groups.

pub mod acl;
pub mod cases;
pub mod config;
pub mod glob;
pub mod pattern;
pub mod translate;
pub mod users;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{import_users, print_summary, Update};
use crate::store_cmd::Call;

/// `scopegate import docker-auth` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DockerAuthArgs {
    /// docker_auth's configuration file (its `users:` and `acl:` are read).
    pub config: PathBuf,
    /// Write the ACL, translated, to this policy file (e.g. policies/imported.toml),
    /// and its tests to tests/ beside it. Needs no server; users are then imported
    /// only when --server is given on the command line.
    #[arg(long)]
    pub policy_out: Option<PathBuf>,
    /// The service name the registry sends (its `auth.token.service`): entries that
    /// match on `service` are decided against it.
    #[arg(long)]
    pub service: Option<String>,
    /// Replace the password and groups of users who exist already (they are left alone
    /// otherwise).
    #[arg(long)]
    pub update: bool,
}

impl DockerAuthArgs {
    /// Whether users go to a server: with `--server` given, or when there is no
    /// `--policy-out` (then the default server, as for every admin command).
    pub fn imports_users(&self, is_server_given: bool) -> bool {
        is_server_given || self.policy_out.is_none()
    }
}

/// The tests file of a policy file: `DIR/tests/STEM.toml`.
pub fn tests_path(policy: &Path) -> PathBuf {
    let dir = policy.parent().unwrap_or_else(|| Path::new(""));
    let stem = policy.file_stem().unwrap_or_default();
    dir.join("tests").join(stem).with_extension("toml")
}

/// Runs the import; `call` is the admin client when users are to be imported.
pub fn run(args: &DockerAuthArgs, call: Option<&Call<'_>>) -> Result<()> {
    let file = args.config.display().to_string();
    let text = std::fs::read_to_string(&args.config).with_context(|| format!("reading {file}"))?;
    let config = config::parse(&text).map_err(|error| anyhow::anyhow!("{file}: {error}"))?;
    let mut problems = Vec::new();
    let users = match call {
        None => None,
        Some(_) => match users::users(&config) {
            Ok(users) => Some(users),
            Err(found) => {
                problems.extend(found);
                None
            }
        },
    };
    let service = args.service.as_deref();
    let policy = match &args.policy_out {
        None => None,
        Some(out) => match translate::translate(&config, service) {
            Ok(translation) => {
                let source = args
                    .config
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_else(|| file.clone());
                let policy_text = translate::to_toml(&translation, &source);
                // A translation the policy loader refuses is the importer's defect; never
                // write it.
                scopegate_policy::Policy::from_toml([("imported.toml", policy_text.as_str())])
                    .map_err(|error| {
                        anyhow::anyhow!("the translated policy does not load:\n{error}")
                    })?;
                let tests_text = cases::generate(&config, service)
                    .map_err(|found| anyhow::anyhow!("{file}: {}", found.join("\n  ")))?;
                Some((out.clone(), translation, policy_text, tests_text))
            }
            Err(found) => {
                problems.extend(found);
                None
            }
        },
    };
    if !problems.is_empty() {
        bail!(
            "{file}: nothing imported, nothing written; {} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    // The server first: if it refuses a user, no policy is left behind for users
    // that are not there.
    if let (Some(users), Some(call)) = (users, call) {
        let update = if args.update {
            Update::PasswordAndGroups
        } else {
            Update::LeaveAlone
        };
        let summary = import_users(call, &users, update)?;
        print_summary(&summary, args.update);
    }
    if let Some((out, translation, policy_text, tests_text)) = policy {
        let tests = tests_path(&out);
        if let Some(dir) = tests.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&out, &policy_text).with_context(|| format!("writing {}", out.display()))?;
        std::fs::write(&tests, &tests_text)
            .with_context(|| format!("writing {}", tests.display()))?;
        for note in &translation.notes {
            eprintln!("note: {note}");
        }
        println!(
            "wrote {} ({} rules) and {} ({} cases)",
            out.display(),
            translation.rules.len(),
            tests.display(),
            tests_text.matches("[[case]]").count()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_go_beside_the_policy_file() {
        assert_eq!(
            tests_path(Path::new("policies/imported.toml")),
            Path::new("policies/tests/imported.toml")
        );
        assert_eq!(tests_path(Path::new("x.toml")), Path::new("tests/x.toml"));
    }
}
