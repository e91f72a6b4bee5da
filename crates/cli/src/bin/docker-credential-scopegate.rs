//! `docker-credential-scopegate`: the docker credential helper for single sign-on logins
//! made with `scopegate auth login --oidc` (the protocol is in `src/sso/helper.rs`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use scopegate_cli::sso::{helper, store, unix_now, Http};

fn main() -> ExitCode {
    // Arguments that are not UTF-8 are no action of the protocol: the usage error.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.into_string().unwrap_or_else(|_| "(not UTF-8)".into()))
        .collect();
    let http = Http::new();
    let env = helper::Env {
        dir: store::directory(),
        now: unix_now(),
        http: &http,
    };
    let code = helper::run(
        &args,
        &env,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}
