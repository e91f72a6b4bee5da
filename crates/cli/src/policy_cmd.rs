//! `scopegate policy check|test|explain`: the policy files, checked and tested offline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use scopegate_policy::{
    parse_scopes, Caller, CredentialKind, Policy, PolicyTests, ScopeLimit, Workload,
};
use serde_json::{Map, Value};

/// Exit code for a policy that is invalid or fails its tests.
const FAILED: u8 = 1;
/// Exit code for bad arguments (the code clap uses).
const USAGE: u8 = 2;

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate DIR/*.toml; prints every problem as file:line: message.
    Check {
        /// The policy directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Run the cases in DIR/tests/*.toml against DIR/*.toml.
    Test {
        /// The policy directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Show what a caller would be granted and which rules decided it.
    Explain {
        /// The policy directory.
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
        /// The caller's account; anonymous when left out.
        #[arg(long)]
        account: Option<String>,
        /// A group from the user store (static [groups] membership applies anyway).
        #[arg(long = "group", requires = "account")]
        groups: Vec<String>,
        /// How the caller authenticated: password, personal, deploy or job.
        #[arg(
            long,
            requires = "account",
            default_value_if("account", clap::builder::ArgPredicate::IsPresent, "password")
        )]
        kind: Option<CredentialKind>,
        /// A workload's trusted issuer (an [[issuer]] name): the caller presents an OIDC ID
        /// token of that issuer instead of an account's credential.
        #[arg(long, conflicts_with_all = ["account", "groups", "kind"])]
        issuer: Option<String>,
        /// A claim of the workload's ID token, as NAME=VALUE (repeatable), e.g.
        /// --claim repository=acme/app --claim ref=refs/heads/main. A NAME given twice
        /// is a list claim: --claim groups=dev --claim groups=platform.
        #[arg(long = "claim", requires = "issuer", value_parser = parse_claim)]
        claims: Vec<(String, String)>,
        /// A credential scope limit, e.g. repository:team/**:pull (repeatable).
        #[arg(long = "limit")]
        limits: Vec<ScopeLimit>,
        /// A requested scope, e.g. repository:team/app:pull,push (repeatable).
        #[arg(long = "scope", required = true, num_args = 1..)]
        scopes: Vec<String>,
        /// Print the explanation as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Check { dir } => check(&dir),
        PolicyCommand::Test { dir } => test(&dir),
        PolicyCommand::Explain {
            dir,
            account,
            groups,
            kind,
            issuer,
            claims,
            limits,
            scopes,
            json,
        } => {
            let claims = claims_of(claims);
            let workload_account = issuer.as_ref().map(|issuer| {
                let sub = claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                format!("{issuer}:{sub}")
            });
            let caller = Caller {
                account: workload_account.as_deref().or(account.as_deref()),
                groups: &groups,
                kind,
                workload: issuer.as_deref().map(|issuer| Workload {
                    issuer,
                    claims: &claims,
                }),
            };
            let limits = (!limits.is_empty()).then_some(limits);
            explain(&dir, &caller, &scopes, limits.as_deref(), json)
        }
    }
}

fn load(dir: &Path) -> Option<Policy> {
    match Policy::load_dir(dir) {
        Ok(policy) => Some(policy),
        Err(error) => {
            eprintln!("{error}");
            let count = error.problems().len();
            eprintln!(
                "{}: invalid policy ({count} problem{})",
                dir.display(),
                plural(count)
            );
            None
        }
    }
}

fn check(dir: &Path) -> ExitCode {
    let Some(policy) = load(dir) else {
        return ExitCode::from(FAILED);
    };
    // The component only ever sees the compiled form: make sure it decodes, too.
    if let Err(error) = Policy::from_compiled(&policy.to_compiled()) {
        eprintln!(
            "{}: the compiled form does not decode: {error}",
            dir.display()
        );
        return ExitCode::from(FAILED);
    }
    println!(
        "{}: ok ({} file{}, {} rule{}, {} group{}, {} issuer{})",
        dir.display(),
        policy.files().len(),
        plural(policy.files().len()),
        policy.rule_count(),
        plural(policy.rule_count()),
        policy.groups().len(),
        plural(policy.groups().len()),
        policy.issuers().len(),
        plural(policy.issuers().len()),
    );
    ExitCode::SUCCESS
}

fn test(dir: &Path) -> ExitCode {
    let Some(policy) = load(dir) else {
        return ExitCode::from(FAILED);
    };
    let tests_dir = dir.join("tests");
    let tests = match PolicyTests::load_dir(&tests_dir) {
        Ok(tests) => tests,
        Err(error) => {
            eprintln!("{error}");
            eprintln!("{}: test cases cannot be used", tests_dir.display());
            return ExitCode::from(FAILED);
        }
    };
    let report = tests.run(&policy);
    for result in &report.results {
        println!("{result}");
    }
    println!("{} passed, {} failed", report.passed(), report.failed());
    if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED)
    }
}

fn explain(
    dir: &Path,
    caller: &Caller<'_>,
    scope_values: &[String],
    limits: Option<&[ScopeLimit]>,
    json: bool,
) -> ExitCode {
    let scopes = match parse_scopes(scope_values.iter().map(String::as_str)) {
        Ok(scopes) => scopes,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(USAGE);
        }
    };
    let Some(policy) = load(dir) else {
        return ExitCode::from(FAILED);
    };
    let explanation = policy.explain(caller, &scopes, limits);
    if json {
        match serde_json::to_string_pretty(&explanation) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: cannot print the explanation as JSON: {error}");
                return ExitCode::from(FAILED);
            }
        }
    } else {
        print!("{explanation}");
    }
    ExitCode::SUCCESS
}

/// The `--claim` pairs as ID-token claims: a string per name, or a list of strings for a
/// name given more than once (as providers send `groups`).
fn claims_of(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut claims = Map::new();
    for (name, value) in pairs {
        match claims.get_mut(&name) {
            None => {
                claims.insert(name, Value::String(value));
            }
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                claims.insert(name, Value::Array(vec![first, Value::String(value)]));
            }
        }
    }
    claims
}

/// `NAME=VALUE` for `--claim`.
fn parse_claim(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}
