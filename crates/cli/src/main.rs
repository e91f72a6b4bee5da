//! `scopegate`, the command-line tool.
//!
//! Exit codes: 0 success, 1 the thing checked is wrong (invalid policy, failing tests),
//! 2 usage errors (bad arguments, as clap reports them).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

mod admin_cmd;
mod auth_cmd;
mod confirm;
mod import;
mod keygen;
mod policy_cmd;
mod store_cmd;

/// Shared with `docker-credential-scopegate` (in the library).
use scopegate_cli::{private_files, transport_error};

/// Token server for Docker/OCI registries: command-line tools.
#[derive(Debug, Parser)]
#[command(name = "scopegate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check, test and explain the policy files.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Write a new signing key and self-signed certificate; print the registry config.
    Keygen(keygen::KeygenArgs),
    /// Manage users through a running scopegate's admin API.
    User {
        #[command(flatten)]
        server: admin_cmd::ServerArgs,
        #[command(subcommand)]
        command: admin_cmd::UserCommand,
    },
    /// Manage API tokens (personal, deploy, job) through the admin API.
    Token {
        #[command(flatten)]
        server: admin_cmd::ServerArgs,
        #[command(subcommand)]
        command: admin_cmd::TokenCommand,
    },
    /// List and revoke refresh tokens through the admin API.
    Refresh {
        #[command(flatten)]
        server: admin_cmd::ServerArgs,
        #[command(subcommand)]
        command: admin_cmd::RefreshCommand,
    },
    /// Get tokens from any registry's token server, for scripts and CI.
    #[command(subcommand)]
    Auth(auth_cmd::AuthCommand),
    /// Back up, restore or move the store's durable records through the admin API.
    Store {
        #[command(flatten)]
        server: admin_cmd::ServerArgs,
        #[command(subcommand)]
        command: store_cmd::StoreCommand,
    },
    /// Import users (htpasswd, docker_auth) through the admin API, and docker_auth's ACL as policy.
    Import {
        #[command(flatten)]
        server: admin_cmd::ServerArgs,
        #[command(subcommand)]
        command: import::ImportCommand,
    },
    /// Explain a decision with the server's compiled policy and users.
    Explain {
        #[command(flatten)]
        server: admin_cmd::ServerArgs,
        #[command(flatten)]
        args: admin_cmd::ExplainArgs,
    },
}

/// The admin commands' server arguments, when the command talks to a server;
/// `is_server_given` says whether `--server` is on the command line (see
/// [`is_server_on_command_line`]).
fn server_args(command: &Command, is_server_given: bool) -> Option<&admin_cmd::ServerArgs> {
    match command {
        Command::User { server, .. }
        | Command::Token { server, .. }
        | Command::Refresh { server, .. }
        | Command::Store { server, .. }
        | Command::Explain { server, .. } => Some(server),
        Command::Import { server, command } => {
            command.needs_server(is_server_given).then_some(server)
        }
        Command::Policy(_) | Command::Keygen(_) | Command::Auth(_) => None,
    }
}

/// Whether `--server` was typed on the command line, before or after any subcommand
/// (not taken from `SCOPEGATE_URL` or the default: an exported URL does not turn a
/// policy translation into writes to a server).
fn is_server_on_command_line(matches: &ArgMatches) -> bool {
    let mut level = Some(matches);
    while let Some(current) = level {
        // `value_source` panics for an id the level does not define; this does not.
        let has_server = current.try_contains_id("server").unwrap_or(false);
        if has_server && current.value_source("server") == Some(ValueSource::CommandLine) {
            return true;
        }
        level = current.subcommand().map(|(_, sub)| sub);
    }
    false
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let is_server_given = is_server_on_command_line(&matches);
    let needs_server = server_args(&cli.command, is_server_given).is_some();
    if server_args(&cli.command, is_server_given)
        .is_some_and(|server| server.admin_secret.is_none())
    {
        // A global argument cannot be `required` in clap; this is the same usage error.
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the admin secret is required: --admin-secret SECRET or SCOPEGATE_ADMIN_SECRET",
            )
            .exit();
    }
    let result = match cli.command {
        Command::Policy(command) => return policy_cmd::run(command),
        Command::Auth(command) => return auth_cmd::run(command),
        Command::Keygen(args) => keygen::run(&args),
        Command::User { server, command } => admin_cmd::user(&server, &command),
        Command::Token { server, command } => admin_cmd::token(&server, &command),
        Command::Refresh { server, command } => admin_cmd::refresh(&server, &command),
        Command::Store { server, command } => admin_cmd::store(&server, &command),
        Command::Import { server, command } => admin_cmd::import(&server, &command, needs_server),
        Command::Explain { server, args } => admin_cmd::explain(&server, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests: a panic is how a test fails"
    )]

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("scopegate").chain(args.iter().copied()))
    }

    #[test]
    fn server_arguments_work_before_and_after_the_subcommand() {
        let cases: &[&[&str]] = &[
            &[
                "user",
                "--server",
                "http://s:1",
                "--admin-secret",
                "x",
                "list",
            ],
            &[
                "user",
                "list",
                "--server",
                "http://s:1",
                "--admin-secret",
                "x",
            ],
            &[
                "user",
                "--admin-secret",
                "x",
                "list",
                "--server",
                "http://s:1",
            ],
            &[
                "token",
                "list",
                "--owner",
                "alice",
                "--server",
                "http://s:1",
                "--admin-secret",
                "x",
            ],
            &["refresh", "list", "--server=http://s:1", "--admin-secret=x"],
            &[
                "store",
                "export",
                "--server",
                "http://s:1",
                "--admin-secret",
                "x",
            ],
        ];
        for args in cases {
            let cli = parse(args).unwrap_or_else(|error| panic!("{args:?}: {error}"));
            let server = server_args(&cli.command, true).unwrap();
            assert_eq!(server.server, "http://s:1", "{args:?}");
            assert_eq!(server.admin_secret.as_deref(), Some("x"), "{args:?}");
        }
    }

    /// Usage errors exit 2, as clap reports them, with a message a user can act on.
    fn usage_error(args: &[&str]) -> String {
        match parse(args) {
            Ok(cli) => panic!("{args:?} parsed: {cli:?}"),
            Err(error) => {
                assert_eq!(error.exit_code(), 2, "{args:?}: {error}");
                error.to_string()
            }
        }
    }

    /// `path ARG` for every argument of `command` and its subcommands, at any depth,
    /// that has no help text (clap's own `--help` and `--version` have theirs).
    fn arguments_without_help(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        for argument in command.get_arguments() {
            let has_help = argument.get_help().is_some() || argument.get_long_help().is_some();
            if !has_help {
                found.push(format!("{path} {}", argument.get_id()));
            }
        }
        for subcommand in command.get_subcommands() {
            let path = format!("{path} {}", subcommand.get_name());
            arguments_without_help(subcommand, &path, found);
        }
    }

    #[test]
    fn every_argument_has_help() {
        let mut command = Cli::command();
        command.build();
        let mut found = Vec::new();
        arguments_without_help(&command, "scopegate", &mut found);
        assert!(found.is_empty(), "arguments without help: {found:#?}");
    }

    #[test]
    fn docker_auth_with_policy_out_needs_a_server_only_when_one_is_typed() {
        let cases: &[(&[&str], bool)] = &[
            (&["import", "docker-auth", "a.yml"], true),
            (
                &["import", "docker-auth", "a.yml", "--policy-out", "p.toml"],
                false,
            ),
            (
                &[
                    "import",
                    "docker-auth",
                    "a.yml",
                    "--policy-out",
                    "p.toml",
                    "--server",
                    "http://s:1",
                ],
                true,
            ),
            (
                &[
                    "import",
                    "--server",
                    "http://s:1",
                    "docker-auth",
                    "a.yml",
                    "--policy-out",
                    "p.toml",
                ],
                true,
            ),
            (&["import", "htpasswd", "h"], true),
        ];
        for (args, expected) in cases {
            let matches = Cli::command()
                .try_get_matches_from(std::iter::once("scopegate").chain(args.iter().copied()))
                .unwrap();
            let cli = Cli::from_arg_matches(&matches).unwrap();
            let given = is_server_on_command_line(&matches);
            assert_eq!(
                server_args(&cli.command, given).is_some(),
                *expected,
                "{args:?}"
            );
        }
    }

    #[test]
    fn set_groups_needs_a_group_or_an_explicit_none() {
        let message = usage_error(&["user", "set-groups", "alice"]);
        assert!(message.contains("--group <GROUPS>"), "{message}");
        usage_error(&["user", "set-groups", "alice", "--group", "a", "--none"]);
        for (args, expected) in [
            (&["--group", "a", "--group", "b"][..], vec!["a", "b"]),
            (&["--none"][..], vec![]),
        ] {
            let all: Vec<&str> = ["user", "set-groups", "alice"]
                .into_iter()
                .chain(args.iter().copied())
                .collect();
            let Command::User {
                command: admin_cmd::UserCommand::SetGroups { groups, .. },
                ..
            } = parse(&all).unwrap().command
            else {
                panic!("{all:?}")
            };
            assert_eq!(groups, expected, "{all:?}");
        }
    }

    #[test]
    fn single_sign_on_login_arguments() {
        let login = |extra: &[&str]| -> Vec<String> {
            ["auth", "login", "--registry", "r.example"]
                .iter()
                .chain(extra)
                .map(|s| (*s).to_string())
                .collect()
        };
        for extra in [
            &["--oidc", "https://idp.example"][..],
            &["--client-id", "cli"],
            &[
                "--oidc",
                "https://idp.example",
                "--client-id",
                "cli",
                "-u",
                "mia",
            ],
            &[
                "--oidc",
                "https://idp.example",
                "--client-id",
                "cli",
                "--token-stdin",
            ],
            &["--browser"],
            &[
                "--oidc",
                "https://idp.example",
                "--client-id",
                "cli",
                "--no-open",
            ],
            &["--containers-auth"],
        ] {
            let args = login(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            usage_error(&args);
        }
        for extra in [
            &["--oidc", "https://idp.example", "--client-id", "cli"][..],
            &[
                "--oidc",
                "https://idp.example",
                "--client-id",
                "cli",
                "--browser",
                "--no-open",
                "--redirect-port",
                "8400",
                "--scope",
                "groups",
                "--containers-auth",
            ],
            &[
                "--oidc",
                "https://i",
                "--client-id",
                "c",
                "--containers-auth",
                "/tmp/a.json",
            ],
        ] {
            let args = login(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            assert!(parse(&args).is_ok(), "{args:?}: {:?}", parse(&args).err());
        }
    }

    #[test]
    fn an_unknown_token_kind_is_a_usage_error_listing_the_kinds() {
        let message = usage_error(&["token", "create", "--kind", "foo", "--owner", "alice"]);
        assert!(
            message.contains("[possible values: personal, deploy, job]"),
            "{message}"
        );
        for kind in ["password", "oidc"] {
            let message = usage_error(&["token", "create", "--kind", kind, "--owner", "alice"]);
            assert!(message.contains("invalid value"), "{message}");
        }
        for kind in ["personal", "deploy", "job"] {
            assert!(
                parse(&["token", "create", "--kind", kind, "--owner", "alice"]).is_ok(),
                "{kind}"
            );
        }
    }
}
