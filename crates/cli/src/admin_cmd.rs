//! `scopegate user|token|refresh|explain`: a client for the admin API of a
//! running scopegate, so nobody edits the key-value store by hand.

use anyhow::{bail, Context, Result};

use crate::confirm::confirm;
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal};

/// Where the server is and how to authenticate to its admin API. Global: given before
/// or after the subcommand (`scopegate user list --server URL`).
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Base URL of scopegate, e.g. https://auth.example.com
    #[arg(
        long,
        env = "SCOPEGATE_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub server: String,
    /// The admin bearer secret (its SHA-256 is the `admin_token_sha256` variable).
    /// Required; a global argument cannot be marked so, `main` checks it.
    #[arg(
        long,
        env = "SCOPEGATE_ADMIN_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub admin_secret: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `scopegate user ...`
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is prompted for without echo, or read
    /// from the first line of standard input when it is not a terminal.
    Add {
        /// The new user's name (their account, `{account}` in the policy).
        name: String,
        /// A group to put the user in (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The user's existing password hash instead of a new password: a
        /// bcrypt hash from htpasswd, docker_auth or GitLab (cost 4 to 12;
        /// replaced by argon2id at the first login) or an argon2 PHC string.
        #[arg(long, value_name = "HASH")]
        password_hash: Option<String>,
    },
    /// List users.
    List,
    /// Show one user.
    Show {
        /// The user's name.
        name: String,
    },
    /// Replace a user's groups: every --group given, or none with --none.
    SetGroups {
        /// The user's name.
        name: String,
        /// A group of the user from now on (repeatable): their groups become exactly these.
        #[arg(long = "group", required_unless_present = "none")]
        groups: Vec<String>,
        /// Remove the user from every group (instead of --group).
        #[arg(long, conflicts_with = "groups")]
        none: bool,
    },
    /// Set a new password (prompted, or from standard input).
    Passwd {
        /// The user's name.
        name: String,
    },
    /// Refuse all logins of a user (their tokens stop working too).
    Disable {
        /// The user's name.
        name: String,
    },
    /// Allow a disabled user again.
    Enable {
        /// The user's name.
        name: String,
    },
    /// Delete a user with their API and refresh tokens (asks first on a terminal).
    Delete {
        /// The user's name.
        name: String,
        #[command(flatten)]
        yes: Yes,
    },
    /// Lift a lockout after repeated password failures.
    Unlock {
        /// The user's name.
        name: String,
    },
}

/// `scopegate token ...`
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create an API token; its secret is printed once.
    Create {
        /// The kind of token: a person's, a deployment's, or a short-lived job's.
        #[arg(long, value_parser = ["personal", "deploy", "job"])]
        kind: String,
        /// The account the token acts for.
        #[arg(long)]
        owner: String,
        /// A name to recognise it by.
        #[arg(long)]
        name: Option<String>,
        /// Scope limit in policy pattern syntax, e.g. 'repository:team/**:pull'; repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime: 90d, 12h, 15m, 3600s or seconds. Without it: 90 days for personal
        /// and deploy tokens (at most 400 days), 15 minutes for job tokens (at most 1 hour).
        #[arg(long)]
        ttl: Option<String>,
    },
    /// List API tokens (never their secrets).
    List {
        /// Only the tokens of this user.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Revoke an API token by id (at least 8 characters of it), or with
    /// --secret by the secret itself, read from standard input (prompted on
    /// a terminal) and sent in the request body, never in a URL.
    Revoke {
        /// The token's id (as `token list` shows it), at least 8 characters of it.
        #[arg(required_unless_present = "secret")]
        id: Option<String>,
        /// Revoke by the token's secret, read from standard input.
        #[arg(long, conflicts_with = "id")]
        secret: bool,
        #[command(flatten)]
        yes: Yes,
    },
}

/// `scopegate refresh ...`
#[derive(Debug, clap::Subcommand)]
pub enum RefreshCommand {
    /// List refresh tokens.
    List {
        /// Only the refresh tokens of this account.
        #[arg(long)]
        account: Option<String>,
    },
    /// Revoke one refresh token by id, all of an account's with --account,
    /// or one by its secret with --secret (an identity token from a docker
    /// or podman auth file), read from standard input (prompted on a
    /// terminal) and sent in the request body, never in a URL.
    Revoke {
        /// The refresh token's id (as `refresh list` shows it).
        id: Option<String>,
        /// Revoke every refresh token of this account.
        #[arg(long, conflicts_with_all = ["id", "secret"])]
        account: Option<String>,
        /// Revoke by the refresh token itself, read from standard input.
        #[arg(long, conflicts_with = "id")]
        secret: bool,
        #[command(flatten)]
        yes: Yes,
    },
}

/// `--yes` of the commands that delete or revoke.
#[derive(Debug, clap::Args)]
pub struct Yes {
    /// Do not ask for confirmation (it is asked only when stdin is a terminal; scripts
    /// are never asked).
    #[arg(long, short = 'y')]
    yes: bool,
}

/// `scopegate explain ...` against the server's compiled policy and users.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The account asking (none: an anonymous caller).
    #[arg(long)]
    pub account: Option<String>,
    /// A group the caller is in, in addition to the server's groups of the account
    /// (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// The credential used: password, personal, deploy or job.
    #[arg(long)]
    pub kind: Option<String>,
    /// A token's scope limit in policy pattern syntax, e.g. 'repository:team/**:pull'
    /// (repeatable).
    #[arg(long = "limit")]
    pub limits: Vec<String>,
    /// A scope asked for, `repository:NAME:ACTION[,ACTION...]` (repeatable).
    #[arg(long = "scope", required = true)]
    pub scopes: Vec<String>,
}

struct Client<'a> {
    server: &'a ServerArgs,
    agent: ureq::Agent,
}

impl<'a> Client<'a> {
    fn new(server: &'a ServerArgs) -> Self {
        Self {
            server,
            agent: ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(30))
                .build(),
        }
    }

    /// Sends one admin request; a non-2xx answer becomes an error carrying
    /// the server's message.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}/admin/{path}", self.server.server.trim_end_matches('/'));
        let secret = self.server.admin_secret.as_deref().unwrap_or_default();
        let request = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {secret}"));
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        match result {
            Ok(response) => {
                let text = response.into_string().context("reading the answer")?;
                serde_json::from_str(&text).context("the server's answer is not JSON")
            }
            Err(ureq::Error::Status(401, _)) if secret.is_empty() => bail!(
                "{method} {url}: 401: no admin secret given (--admin-secret or SCOPEGATE_ADMIN_SECRET)"
            ),
            Err(ureq::Error::Status(401, _)) => bail!(
                "{method} {url}: 401: the server refused the admin secret (is it the one whose \
                 SHA-256 is the server's admin_token_sha256?)"
            ),
            Err(ureq::Error::Status(status, response)) => {
                let text = response.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
                    .unwrap_or(text);
                bail!("{method} {url}: {status}: {message}")
            }
            Err(ureq::Error::Transport(transport)) => bail!(
                "{method} {url}: {}",
                crate::transport_error::describe(&transport)
            ),
        }
    }
}

/// Reads a token secret from standard input, hidden on a terminal, so it
/// appears in no command line, shell history or URL.
fn read_secret(prompt: &str) -> Result<String> {
    let secret = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim().to_string()
    };
    if secret.is_empty() {
        bail!("empty secret");
    }
    Ok(secret)
}

fn read_password(prompt: &str) -> Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}

/// Parses `90d`, `12h`, `15m`, `30s` or a plain number of seconds.
pub fn parse_ttl(text: &str) -> Result<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => (&text[..at], unit),
        _ => (text, 's'),
    };
    let number: u64 = number
        .parse()
        .with_context(|| format!("ttl {text:?} is not like 90d, 12h, 15m or 3600s"))?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => bail!("ttl {text:?}: unit must be s, m, h or d"),
    };
    number.checked_mul(factor).context("ttl is too large")
}

fn output(server: &ServerArgs, value: &Value, table: impl FnOnce(&Value)) {
    if server.json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        table(value);
    }
}

fn time(value: &Value) -> String {
    value
        .as_u64()
        .map_or_else(|| "-".to_string(), scopegate::respond::rfc3339)
}

fn print_users(users: &[Value]) {
    println!(
        "{:<24} {:<8} {:<22} GROUPS",
        "NAME", "STATE", "LOCKED UNTIL"
    );
    for user in users {
        let state = if user["disabled"].as_bool() == Some(true) {
            "disabled"
        } else {
            "active"
        };
        let groups: Vec<&str> = user["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "{:<24} {:<8} {:<22} {}",
            user["name"].as_str().unwrap_or("?"),
            state,
            time(&user["locked_until"]),
            groups.join(",")
        );
    }
}

/// Runs `scopegate user ...`.
pub fn user(server: &ServerArgs, command: &UserCommand) -> Result<()> {
    let client = Client::new(server);
    let answer = match command {
        UserCommand::Add {
            name,
            groups,
            password_hash: Some(hash),
        } => client.call(
            "POST",
            "users",
            Some(json!({"name": name, "password_hash": hash, "groups": groups})),
        )?,
        UserCommand::Add {
            name,
            groups,
            password_hash: None,
        } => {
            let password = read_password(&format!("Password for {name}: "))?;
            client.call(
                "POST",
                "users",
                Some(json!({"name": name, "password": password, "groups": groups})),
            )?
        }
        UserCommand::List => {
            let answer = client.call("GET", "users", None)?;
            output(server, &answer, |v| {
                print_users(v["users"].as_array().map_or(&[], Vec::as_slice))
            });
            return Ok(());
        }
        UserCommand::Show { name } => client.call("GET", &format!("users/{name}"), None)?,
        UserCommand::SetGroups { name, groups, .. } => client.call(
            "PATCH",
            &format!("users/{name}"),
            Some(json!({"groups": groups})),
        )?,
        UserCommand::Passwd { name } => {
            let password = read_password(&format!("New password for {name}: "))?;
            client.call(
                "PATCH",
                &format!("users/{name}"),
                Some(json!({"password": password})),
            )?
        }
        UserCommand::Disable { name } => client.call(
            "PATCH",
            &format!("users/{name}"),
            Some(json!({"disabled": true})),
        )?,
        UserCommand::Enable { name } => client.call(
            "PATCH",
            &format!("users/{name}"),
            Some(json!({"disabled": false})),
        )?,
        UserCommand::Delete { name, yes } => {
            confirm(
                &format!("Delete user {name} with all their API and refresh tokens?"),
                yes.yes,
            )?;
            client.call("DELETE", &format!("users/{name}"), None)?
        }
        UserCommand::Unlock { name } => {
            client.call("POST", &format!("users/{name}/unlock"), None)?
        }
    };
    for warning in answer["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", warning.as_str().unwrap_or_default());
    }
    output(server, &answer, |v| {
        if v.get("name").is_some() {
            print_users(std::slice::from_ref(v));
        } else if let Some(name) = v["deleted"].as_str() {
            println!(
                "deleted user {name} and {} API tokens",
                v["revoked_tokens"].as_u64().unwrap_or(0)
            );
        } else if let Some(name) = v["unlocked"].as_str() {
            println!("unlocked user {name}");
        } else {
            print_fields(v);
        }
    });
    Ok(())
}

/// `key: value` lines for an answer with no table of its own.
fn print_fields(value: &Value) {
    match value.as_object() {
        Some(fields) => {
            for (key, value) in fields {
                match value.as_str() {
                    Some(text) => println!("{key}: {text}"),
                    None => println!("{key}: {value}"),
                }
            }
        }
        None => println!("{value}"),
    }
}

fn print_tokens(tokens: &[Value]) {
    println!(
        "{:<14} {:<9} {:<16} {:<20} {:<21} {:<21} SCOPES",
        "ID", "KIND", "OWNER", "NAME", "EXPIRES", "LAST USED"
    );
    for token in tokens {
        let id = token["id"].as_str().unwrap_or("?");
        let scopes: Vec<&str> = token["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "{:<14} {:<9} {:<16} {:<20} {:<21} {:<21} {}",
            &id[..id.len().min(12)],
            token["kind"].as_str().unwrap_or("?"),
            token["owner"].as_str().unwrap_or("?"),
            token["name"].as_str().unwrap_or("?"),
            time(&token["expires_at"]),
            time(&token["last_used"]),
            if scopes.is_empty() {
                "(policy only)".to_string()
            } else {
                scopes.join(" ")
            }
        );
    }
}

/// Runs `scopegate token ...`.
pub fn token(server: &ServerArgs, command: &TokenCommand) -> Result<()> {
    let client = Client::new(server);
    match command {
        TokenCommand::Create {
            kind,
            owner,
            name,
            scopes,
            ttl,
        } => {
            let mut body = json!({
                "kind": kind,
                "owner": owner,
                "name": name.clone().unwrap_or_else(|| format!("{kind}-token")),
                "scopes": scopes,
            });
            if let Some(ttl) = ttl {
                body["ttl_seconds"] = json!(parse_ttl(ttl)?);
            }
            let answer = client.call("POST", "tokens", Some(body))?;
            output(server, &answer, |v| {
                print_tokens(std::slice::from_ref(v));
                println!();
                println!("Secret (shown once; use it as the password with any username):");
                println!("{}", v["secret"].as_str().unwrap_or("?"));
            });
        }
        TokenCommand::List { owner } => {
            let path = match owner {
                Some(owner) => format!("tokens?owner={owner}"),
                None => "tokens".to_string(),
            };
            let answer = client.call("GET", &path, None)?;
            output(server, &answer, |v| {
                print_tokens(v["tokens"].as_array().map_or(&[], Vec::as_slice))
            });
        }
        TokenCommand::Revoke { id, secret, yes } => {
            let what = id.as_deref().map_or_else(
                || "the API token whose secret you give next".to_string(),
                |id| format!("API token {id}"),
            );
            confirm(
                &format!("Revoke {what} and the refresh tokens issued through it?"),
                yes.yes,
            )?;
            let answer = match (id, secret) {
                (_, true) => {
                    let token = read_secret("API token secret: ")?;
                    client.call("POST", "tokens/revoke", Some(json!({ "token": token })))?
                }
                (Some(id), false) => client.call("DELETE", &format!("tokens/{id}"), None)?,
                (None, false) => bail!("give a token id or --secret"),
            };
            output(server, &answer, |v| {
                println!(
                    "revoked token {} and {} refresh tokens issued through it",
                    v["revoked"]
                        .as_str()
                        .map_or("?", |id| &id[..id.len().min(12)]),
                    v["revoked_refresh_tokens"]
                );
            });
        }
    }
    Ok(())
}

/// Runs `scopegate refresh ...`.
pub fn refresh(server: &ServerArgs, command: &RefreshCommand) -> Result<()> {
    let client = Client::new(server);
    match command {
        RefreshCommand::List { account } => {
            let path = match account {
                Some(account) => format!("refresh-tokens?account={account}"),
                None => "refresh-tokens".to_string(),
            };
            let answer = client.call("GET", &path, None)?;
            output(server, &answer, |v| {
                println!(
                    "{:<14} {:<16} {:<9} {:<24} EXPIRES",
                    "ID", "ACCOUNT", "KIND", "SERVICE"
                );
                for token in v["refresh_tokens"].as_array().into_iter().flatten() {
                    let id = token["id"].as_str().unwrap_or("?");
                    println!(
                        "{:<14} {:<16} {:<9} {:<24} {}",
                        &id[..id.len().min(12)],
                        token["account"].as_str().unwrap_or("?"),
                        token["kind"].as_str().unwrap_or("?"),
                        token["service"].as_str().unwrap_or("?"),
                        time(&token["expires_at"])
                    );
                }
            });
        }
        RefreshCommand::Revoke {
            id,
            account,
            secret,
            yes,
        } => {
            let what = match (id, account) {
                (Some(id), _) => format!("refresh token {id}"),
                (None, Some(account)) => format!("every refresh token of {account}"),
                (None, None) => "the refresh token you give next".to_string(),
            };
            confirm(&format!("Revoke {what}?"), yes.yes)?;
            let answer = match (id, account, secret) {
                (None, None, true) => {
                    let token = read_secret("Refresh token (identity token): ")?;
                    client.call(
                        "POST",
                        "refresh-tokens/revoke",
                        Some(json!({ "token": token })),
                    )?
                }
                (Some(id), None, false) => {
                    client.call("DELETE", &format!("refresh-tokens/{id}"), None)?
                }
                (None, Some(account), false) => client.call(
                    "POST",
                    "refresh-tokens/revoke",
                    Some(json!({"account": account})),
                )?,
                _ => bail!("give a refresh token id, --account or --secret"),
            };
            output(server, &answer, |v| {
                println!("revoked {} refresh tokens", v["revoked"])
            });
        }
    }
    Ok(())
}

/// `scopegate store ...` over this module's admin client.
pub fn store(server: &ServerArgs, command: &crate::store_cmd::StoreCommand) -> Result<()> {
    let client = Client::new(server);
    crate::store_cmd::run(command, &|method, path, body| {
        client.call(method, path, body)
    })
}

/// `scopegate import ...` over this module's admin client, or with none when
/// `needs_server` is false (a docker_auth ACL translated without users).
pub fn import(
    server: &ServerArgs,
    command: &crate::import::ImportCommand,
    needs_server: bool,
) -> Result<()> {
    if !needs_server {
        return crate::import::run(command, None);
    }
    let client = Client::new(server);
    crate::import::run(
        command,
        Some(&|method, path, body| client.call(method, path, body)),
    )
}

/// Runs `scopegate explain ...` against the server.
pub fn explain(server: &ServerArgs, args: &ExplainArgs) -> Result<()> {
    let client = Client::new(server);
    let answer = client.call(
        "POST",
        "explain",
        Some(json!({
            "account": args.account,
            "groups": args.groups,
            "kind": args.kind,
            "limits": args.limits,
            "scopes": args.scopes,
        })),
    )?;
    output(server, &answer, |v| {
        println!(
            "granted: {}",
            v["granted"]
                .as_str()
                .filter(|g| !g.is_empty())
                .unwrap_or("(nothing)")
        );
        print!("{}", v["text"].as_str().unwrap_or_default());
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]

    use super::{parse_ttl, RefreshCommand, TokenCommand};
    use clap::Parser;
    use scopegate::admin;

    #[derive(Debug, Parser)]
    enum Cli {
        #[command(subcommand)]
        Token(TokenCommand),
        #[command(subcommand)]
        Refresh(RefreshCommand),
    }

    /// Revoking by secret takes no secret on the command line: it is read
    /// from standard input, so it reaches no URL, log or shell history.
    #[test]
    fn revoke_by_secret_takes_the_secret_from_stdin_only() {
        let parse = |args: &[&str]| Cli::try_parse_from(["scopegate"].iter().chain(args));
        assert!(matches!(
            parse(&["token", "revoke", "--secret"]),
            Ok(Cli::Token(TokenCommand::Revoke {
                id: None,
                secret: true,
                ..
            }))
        ));
        assert!(matches!(
            parse(&["refresh", "revoke", "--secret"]),
            Ok(Cli::Refresh(RefreshCommand::Revoke { secret: true, .. }))
        ));
        for args in [
            &["token", "revoke", "--secret", "sgp_x"][..],
            &["token", "revoke", "--secret=sgp_x"],
            &["refresh", "revoke", "--secret", "sgr_x"],
            &["refresh", "revoke", "--secret", "--account", "alice"],
            &["token", "revoke"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    /// `--help` states the server's real defaults and limits (`scopegate::admin`).
    #[test]
    fn ttl_help_states_the_defaults() {
        use clap::CommandFactory as _;
        let mut command = Cli::command();
        let help = command
            .find_subcommand_mut("token")
            .and_then(|token| token.find_subcommand_mut("create"))
            .unwrap()
            .render_long_help()
            .to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let days = |seconds: u64| format!("{} days", seconds / 86_400);
        for expected in [
            format!(
                "{} for personal and deploy tokens",
                days(admin::DEFAULT_TOKEN_TTL)
            ),
            format!("(at most {})", days(admin::MAX_TOKEN_TTL)),
            format!("{} minutes for job tokens", admin::DEFAULT_JOB_TTL / 60),
            format!("(at most {} hour)", admin::MAX_JOB_TTL / 3600),
        ] {
            assert!(help.contains(&expected), "{expected:?} in {help}");
        }
    }

    #[test]
    fn ttl_units() {
        for (text, seconds) in [
            ("90d", 7_776_000),
            ("12h", 43_200),
            ("15m", 900),
            ("30s", 30),
            ("3600", 3600),
        ] {
            assert_eq!(parse_ttl(text).ok(), Some(seconds), "{text}");
        }
        for text in ["", "d", "5w", "-1", "1.5h"] {
            assert!(parse_ttl(text).is_err(), "{text}");
        }
    }
}
