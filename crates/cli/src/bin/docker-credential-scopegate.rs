//! `docker-credential-scopegate`: the docker credential helper for single sign-on logins
//! made with `scopegate auth login --oidc` (the protocol is in `src/sso/helper.rs`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use scopegate_cli::sso::{helper, store, unix_now, Http};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
