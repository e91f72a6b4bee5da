//! `scopegate auth login --registry HOST --oidc ISSUER --client-id ID`: a person logs in at
//! their OpenID Connect provider (device code by default, `--browser` for the
//! authorization code with PKCE), the provider's refresh token and ID token are kept in a
//! private file, and the docker config (and with `--containers-auth`, containers'
//! `auth.json`) sends docker to `docker-credential-scopegate` for that registry.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use scopegate_cli::sso::{self, browser, device, discovery, store, Client, Http};

use super::docker_config;
use super::Registry;

/// The `credHelpers` value: docker runs `docker-credential-scopegate`.
const HELPER: &str = "scopegate";

#[derive(Debug, Clone, clap::Args)]
pub struct SsoArgs {
    /// Log in with single sign-on at this OpenID Connect issuer (its
    /// /.well-known/openid-configuration is read); needs --client-id.
    #[arg(long = "oidc", value_name = "ISSUER_URL", requires = "client_id",
          conflicts_with_all = ["username", "password_stdin", "token_stdin"])]
    pub issuer: Option<String>,
    /// The client id registered at the provider for scopegate (a public client).
    #[arg(long, requires = "issuer")]
    pub client_id: Option<String>,
    /// The client secret some providers give installed applications (Google); not needed
    /// for a public client. Kept in the private login file.
    #[arg(
        long,
        env = "SCOPEGATE_OIDC_CLIENT_SECRET",
        hide_env_values = true,
        requires = "issuer"
    )]
    pub client_secret: Option<String>,
    /// Log in in a browser (authorization code with PKCE, redirected to 127.0.0.1)
    /// instead of with a device code.
    #[arg(long, requires = "issuer")]
    pub browser: bool,
    /// With --browser: print the URL only, start no browser.
    #[arg(long, requires = "browser")]
    pub no_open: bool,
    /// With --browser: the loopback port of the redirect (default: any free port), for
    /// providers that need the exact redirect URI registered.
    #[arg(long, default_value_t = 0, requires = "browser")]
    pub redirect_port: u16,
    /// Seconds to wait for the person to finish logging in.
    #[arg(long, default_value_t = 600, requires = "issuer")]
    pub login_timeout: u64,
    /// A scope to ask for besides `openid offline_access` (repeatable), e.g. `groups`,
    /// `profile` or `email` for providers that put those claims only under their scope.
    #[arg(long = "scope", requires = "issuer")]
    pub scopes: Vec<String>,
    /// Also set credHelpers in containers' auth.json (podman, skopeo, buildah): FILE, else
    /// $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json.
    #[arg(long, value_name = "FILE", num_args = 0..=1, requires = "issuer")]
    pub containers_auth: Option<Option<PathBuf>>,
}

/// Runs the login; prints what was done to stderr and `Login Succeeded` to stdout.
pub fn run(registry: &Registry, issuer: &str, args: &SsoArgs) -> Result<ExitCode> {
    let client_id = args
        .client_id
        .clone()
        .ok_or_else(|| anyhow!("--oidc needs --client-id"))?;
    let client = Client {
        id: client_id,
        secret: args.client_secret.clone().filter(|s| !s.is_empty()),
    };
    let dir = store::required_directory()?;
    // Refuse before the person logs in, not after.
    scopegate_cli::private_files::check_private_dir(&dir)
        .context("refusing to keep the login there")?;
    let docker_path = docker_config::config_path()
        .ok_or_else(|| anyhow!("neither DOCKER_CONFIG nor HOME is set: no docker config"))?;
    let containers_path = match &args.containers_auth {
        None => None,
        Some(Some(path)) => Some(path.clone()),
        Some(None) => Some(containers_auth_path()?),
    };

    let http = Http::new();
    let provider = discovery::discover(&http, issuer)?;
    let scopes = sso::scopes(&args.scopes, provider.scopes_supported.as_deref());
    let timeout = Duration::from_secs(args.login_timeout);
    let tokens = if args.browser {
        browser_login(&http, &provider, &client, &scopes, args, timeout)?
    } else {
        device_login(&http, &provider, &client, &scopes, timeout)?
    };
    tokens
        .claims
        .check(&provider.issuer, &client.id)
        .context("the provider's ID token would be refused by scopegate")?;

    let mut login = store::new_login(
        &registry.name,
        &provider.issuer,
        &client,
        &provider.token_endpoint,
        &scopes,
        args.browser,
        &tokens,
    );
    login.revocation_endpoint = provider.revocation_endpoint.clone();
    // Under the refresh lock, so a `get` refreshing the old login cannot save over this one.
    let file = {
        store::prepare(&dir)?;
        let _lock = store::lock(&dir, &registry.name)?;
        store::save(&dir, &login)?
    };
    eprintln!(
        "logged in at {} as {} (sub {})",
        provider.issuer,
        tokens.claims.person,
        sso::printable(&tokens.claims.sub)
    );
    eprintln!(
        "login kept in {} (mode 0600, directory 0700)",
        file.display()
    );
    if tokens.refresh_token.is_none() {
        eprintln!(
            "warning: the provider gave no refresh token (was `offline_access` granted?): the \
             login ends when this ID token expires, in {} s",
            tokens.claims.exp.saturating_sub(sso::unix_now())
        );
    }
    let key = docker_config::config_key(&registry.name);
    set_helper(&docker_path, &key, "docker config")?;
    if let Some(path) = &containers_path {
        set_helper(path, &registry.name, "containers auth file")?;
    }
    if !is_on_path("docker-credential-scopegate") {
        eprintln!(
            "warning: docker-credential-scopegate is not on PATH: docker will fail to get \
             credentials for {} until it is (`cargo install --path crates/cli` installs it)",
            registry.name
        );
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

fn set_helper(path: &Path, key: &str, what: &str) -> Result<()> {
    let previous = docker_config::set_cred_helper(path, key, HELPER)?;
    eprintln!(
        "{what} {}: credHelpers[{key:?}] = {HELPER:?}",
        path.display()
    );
    if let Some(previous) = previous {
        eprintln!("  (it was {previous:?})");
    }
    Ok(())
}

fn device_login(
    http: &Http,
    provider: &discovery::Provider,
    client: &Client,
    scopes: &[String],
    timeout: Duration,
) -> Result<sso::token::Tokens> {
    let endpoint = provider
        .device_authorization_endpoint
        .as_deref()
        .ok_or_else(|| {
            anyhow!(
                "{} offers no device authorization endpoint: enable the device flow for the \
             client, or log in with --browser",
                provider.issuer
            )
        })?;
    let mut authorization = device::start(http, &provider.issuer, endpoint, client, scopes)?;
    authorization.expires_in = authorization.expires_in.min(timeout.as_secs());
    eprintln!("To log in, open {}", authorization.verification_uri);
    eprintln!("and enter the code: {}", authorization.user_code);
    if let Some(complete) = &authorization.verification_uri_complete {
        eprintln!("(or open {complete})");
    }
    eprintln!("Waiting for the login to be approved...");
    device::wait_for_approval(
        &authorization,
        || device::poll_once(http, &provider.token_endpoint, client, &authorization),
        std::thread::sleep,
    )
}

fn browser_login(
    http: &Http,
    provider: &discovery::Provider,
    client: &Client,
    scopes: &[String],
    args: &SsoArgs,
    timeout: Duration,
) -> Result<sso::token::Tokens> {
    let endpoint = provider
        .authorization_endpoint
        .as_deref()
        .ok_or_else(|| anyhow!("{} offers no authorization endpoint", provider.issuer))?;
    let loopback = browser::Loopback::bind(args.redirect_port)?;
    let pkce = browser::Pkce::generate();
    let state = browser::random_text();
    let is_offline_param = !scopes.iter().any(|s| s == "offline_access");
    let url = browser::authorization_url(
        endpoint,
        client,
        &loopback.redirect_uri,
        scopes,
        &state,
        &pkce,
        is_offline_param,
    )?;
    eprintln!("To log in, open this URL in a browser on this machine:");
    eprintln!("{url}");
    if !args.no_open && browser::open_browser(&url) {
        eprintln!("(a browser was started)");
    }
    eprintln!("Waiting for the redirect to {}...", loopback.redirect_uri);
    let code = loopback.wait_for_code(&state, timeout)?;
    browser::exchange(
        http,
        &provider.token_endpoint,
        client,
        &code,
        &loopback.redirect_uri,
        &pkce,
    )
}

/// Containers' auth file: `$REGISTRY_AUTH_FILE`, else
/// `$XDG_RUNTIME_DIR/containers/auth.json`.
fn containers_auth_path() -> Result<PathBuf> {
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        return Ok(PathBuf::from(file));
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            anyhow!("--containers-auth: neither REGISTRY_AUTH_FILE nor XDG_RUNTIME_DIR is set: name the file")
        })?;
    Ok(PathBuf::from(runtime).join("containers").join("auth.json"))
}

/// Whether `program` is an entry of a directory on PATH.
fn is_on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
