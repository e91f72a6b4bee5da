//! Routing, and the token flow that runs the stages in order:
//! parse request -> authenticate -> evaluate policy -> sign -> respond.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use scopegate_policy::CompiledPolicy;
use serde_json::json;

use crate::authenticate::{self, Authenticated, Lockout, Offered, PasswordSettings, Workloads};
use crate::config::{Config, Variables};
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::log::RequestLog;
use crate::oidc::Fetch;
use crate::request::{self, GrantRequest, TokenRequest};
use crate::respond::{self, Flow, Issued};
use crate::sign::{KeyError, Signer, TokenClaims};
use crate::store::Store;
use crate::{admin, grant, refresh, secret, Error};

/// What one request may use: the store, the variables, outbound HTTP (for
/// OIDC issuers' keys), and the time.
pub struct Env<'a> {
    pub store: &'a dyn Store,
    pub variables: &'a dyn Variables,
    pub fetch: &'a dyn Fetch,
    /// Unix seconds, read once per request by the entry point.
    pub now: u64,
    pub request_id: String,
    /// What this instance keeps between requests: many of them in the WASI
    /// 0.3 build, one in the WASI 0.2 build (a fresh instance per request).
    pub instance: &'a Instance,
}

/// Immutable state an instance computes once and shares with every request
/// it serves: the configuration (from variables it reads once) and the
/// signer built from it, with its precomputed table. Nothing read from the
/// store is ever kept here, and a failure is not kept either: the next
/// request tries again.
pub struct Instance {
    config: OnceLock<Config>,
    signer: OnceLock<Signer>,
}

impl Instance {
    pub const fn new() -> Self {
        Self {
            config: OnceLock::new(),
            signer: OnceLock::new(),
        }
    }

    fn config(&self, variables: &dyn Variables) -> Result<&Config, Error> {
        if let Some(config) = self.config.get() {
            return Ok(config);
        }
        let config = Config::from_variables(variables)?;
        Ok(self.config.get_or_init(|| config))
    }

    /// The signer, once its key and certificate are known to be a pair:
    /// every route that signs or publishes the key fails closed (503) with
    /// the reason `/healthz` gives when they are not.
    ///
    /// EdDSA and RS256 check the pair while loading, at no cost. ES256's
    /// check is a scalar multiplication, as much as the signature itself:
    /// once it succeeds, a marker under [`Config::checked_pair_key`] (a
    /// digest of key and certificate) spares every later instance from
    /// repeating it. When the store cannot be read, the check runs.
    fn signer(&self, config: &Config, store: &dyn Store) -> Result<&Signer, KeyError> {
        if let Some(signer) = self.signer.get() {
            return Ok(signer);
        }
        let signer = config.signer()?;
        if !signer.is_pair_free() {
            let marker = config.checked_pair_key();
            if !matches!(store.get(&marker), Ok(Some(_))) {
                if !signer.is_pair() {
                    return Err(crate::sign::NOT_A_PAIR);
                }
                // Best effort: without the marker the next instance checks again.
                let _ = store.set(&marker, b"1");
            }
        }
        Ok(self.signer.get_or_init(|| signer))
    }
}

impl Default for Instance {
    fn default() -> Self {
        Self::new()
    }
}

/// What the host gives every request: the store, the variables, outbound
/// HTTP, and the instance's state.
pub struct Host<'a> {
    pub store: &'a dyn Store,
    pub variables: &'a dyn Variables,
    pub fetch: &'a dyn Fetch,
    pub instance: &'a Instance,
}

/// One request as an entry point serves it: its head, and its body or why
/// the body could not be read (over the limit, too slow, broken). Gives it
/// a request id and the time, answers it, and prints its log line on stdout
/// with the latency since `started` (when the entry got the request).
pub fn serve(
    mut request: HttpRequest,
    body: Result<Vec<u8>, Error>,
    host: &Host<'_>,
    started: Instant,
) -> HttpResponse {
    let env = Env {
        store: host.store,
        variables: host.variables,
        fetch: host.fetch,
        now: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
        request_id: secret::random_hex(8).unwrap_or_else(|_| "unknown".to_string()),
        instance: host.instance,
    };
    let mut handled = match body {
        Ok(body) => {
            request.body = body;
            handle(&request, &env)
        }
        Err(error) => unreadable(&error, request.method, request.path, &env.request_id),
    };
    handled.log.latency_us = elapsed_us(started);
    println!("{}", handled.log.to_line());
    handled.response
}

/// The response and the log line of one request.
pub struct Handled {
    pub response: HttpResponse,
    pub log: RequestLog,
}

/// Answers one request. Never panics on client input; every error becomes
/// a response through [`respond::error_response`].
pub fn handle(request: &HttpRequest, env: &Env<'_>) -> Handled {
    let mut log = RequestLog {
        request_id: env.request_id.clone(),
        method: request.method.as_str(),
        path: request.path.clone(),
        ..RequestLog::default()
    };
    let flow = flow(request.method, &request.path);
    let started = Instant::now();
    let config = env.instance.config(env.variables);
    let config_us = elapsed_us(started);
    let realm = match &config {
        Ok(config) => config.realm.as_str(),
        Err(_) => "scopegate",
    };
    let result = config.and_then(|config| route(request, env, config, flow, &mut log));
    if let Some(stages) = &mut log.stages_us {
        stages.config = config_us;
    }
    let response = match result {
        Ok(response) => {
            log.outcome = "ok";
            response
        }
        Err(error) => {
            log.outcome = error.outcome();
            log.detail = Some(error.detail());
            respond::error_response(&error, flow, realm, &env.request_id)
        }
    };
    log.status = response.status;
    Handled { response, log }
}

/// The answer and log line for a request the entry point could not read
/// (a body over the route's limit or not in by its deadline, a broken body
/// stream), in the flow its
/// method and path call for.
pub fn unreadable(error: &Error, method: Method, path: String, request_id: &str) -> Handled {
    let response = respond::error_response(error, flow(method, &path), "scopegate", request_id);
    let log = RequestLog {
        request_id: request_id.to_string(),
        method: method.as_str(),
        path,
        status: response.status,
        outcome: error.outcome(),
        detail: Some(error.detail()),
        ..RequestLog::default()
    };
    Handled { response, log }
}

/// How errors are answered: RFC 6749 bodies for `POST /token` (and its
/// aliases), Docker's everywhere else. The entry points use it too, for
/// errors found while reading the request.
pub fn flow(method: Method, path: &str) -> Flow {
    match method {
        Method::Post if is_token_path(path) => Flow::OAuth,
        _ => Flow::Docker,
    }
}

fn is_token_path(path: &str) -> bool {
    matches!(path, "/token" | "/jwt/auth" | "/auth")
}

fn route(
    request: &HttpRequest,
    env: &Env<'_>,
    config: &Config,
    flow: Flow,
    log: &mut RequestLog,
) -> Result<HttpResponse, Error> {
    match (request.method, request.path.as_str()) {
        (Method::Get, path) if is_token_path(path) => token(
            request::parse_get(request)?,
            request,
            env,
            config,
            flow,
            log,
        ),
        (Method::Post, path) if is_token_path(path) => token(
            request::parse_post(request)?,
            request,
            env,
            config,
            flow,
            log,
        ),
        (Method::Get, "/.well-known/jwks.json") => jwks(env, config),
        (Method::Get, "/healthz") => Ok(healthz(env, config)),
        (_, path) if path.starts_with("/admin/") => admin::handle(request, env, config, log),
        (_, path)
            if is_token_path(path) || path == "/.well-known/jwks.json" || path == "/healthz" =>
        {
            Err(Error::MethodNotAllowed)
        }
        _ => Err(Error::NotFound),
    }
}

fn token(
    token_request: TokenRequest,
    request: &HttpRequest,
    env: &Env<'_>,
    config: &Config,
    flow: Flow,
    log: &mut RequestLog,
) -> Result<HttpResponse, Error> {
    log.service = Some(token_request.service.clone());
    log.client_id = token_request.client_id.clone();
    log.requested = token_request
        .scopes
        .iter()
        .map(ToString::to_string)
        .collect();
    if !config.is_known_service(&token_request.service) {
        return Err(Error::bad_request(format!(
            "unknown service {}",
            request::shorten(&token_request.service)
        )));
    }
    let mut clock = Instant::now();
    let mut lap = || {
        let us = elapsed_us(clock);
        clock = Instant::now();
        us
    };
    let policy = grant::policy()?;
    let caller = authenticate(&token_request, request, env, config, policy)?;
    let authenticate_us = lap();
    log.account = caller.subject().map(str::to_string);
    log.auth_type = Some(caller.auth_type());

    let granted = grant::grant(policy, &caller, &token_request.scopes);
    let policy_us = lap();
    log.granted = Some(granted.access.iter().map(ToString::to_string).collect());

    let signer = env.instance.signer(config, env.store)?;
    let key_us = lap();
    let claims = TokenClaims::new(
        &caller,
        &granted,
        &config.issuer,
        &token_request.service,
        env.now,
        config.token_ttl,
    )?;
    let token = signer.sign(&claims)?;
    let sign_us = lap();

    let wants_refresh = match token_request.grant {
        GrantRequest::Docker { offline } => offline,
        GrantRequest::Password { offline, .. } => offline,
        GrantRequest::Refresh { .. } | GrantRequest::TokenExchange { .. } => false,
    };
    let refresh_token = match (wants_refresh, caller.account()) {
        (true, Some(_)) => Some(refresh::issue(
            env.store,
            &caller,
            &token_request.service,
            env.now,
            config.refresh_ttl,
        )?),
        _ => None,
    };
    // Only a token request that got its token logs its stages.
    log.stages_us = Some(crate::log::Stages {
        config: 0, // filled in by `handle`, which read the configuration
        authenticate: authenticate_us,
        policy: policy_us,
        key: key_us,
        sign: sign_us,
        refresh: lap(),
    });
    Ok(respond::token_response(
        flow,
        &Issued {
            token: &token,
            grant: &granted,
            expires_in: config.token_ttl,
            issued_at: env.now,
            refresh_token: refresh_token.as_deref(),
            is_exchange: matches!(token_request.grant, GrantRequest::TokenExchange { .. }),
        },
    ))
}

fn elapsed_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn authenticate(
    token_request: &TokenRequest,
    request: &HttpRequest,
    env: &Env<'_>,
    config: &Config,
    policy: &CompiledPolicy<'_>,
) -> Result<Authenticated, Error> {
    let workloads = Workloads {
        policy,
        fetch: env.fetch,
    };
    let settings = PasswordSettings {
        lockout: Lockout {
            threshold: config.lockout_threshold,
            seconds: config.lockout_seconds,
        },
        cache_key: config.password_cache_key(),
        cache_seconds: config.token_ttl,
    };
    match &token_request.grant {
        GrantRequest::Docker { .. } => authenticate::authenticate(
            Offered::from_header(request.header("authorization"))?,
            env.store,
            &settings,
            &workloads,
            env.now,
        ),
        GrantRequest::Password {
            username, password, ..
        } => authenticate::authenticate_secret(
            username, password, env.store, &settings, &workloads, env.now,
        ),
        GrantRequest::TokenExchange { subject_token } => {
            authenticate::authenticate_id_token(subject_token, &workloads, env.store, env.now)
        }
        GrantRequest::Refresh { refresh_token } => authenticate::authenticate_refresh(
            refresh_token,
            &token_request.service,
            env.store,
            env.now,
        ),
    }
}

/// `GET /.well-known/jwks.json`: the current key, and the previous one
/// during a rotation, with the same `kid` the tokens carry.
fn jwks(env: &Env<'_>, config: &Config) -> Result<HttpResponse, Error> {
    let mut keys = vec![env.instance.signer(config, env.store)?.public_key().jwk()];
    if let Some(previous) = config.previous_public_key()? {
        keys.push(previous.jwk());
    }
    Ok(HttpResponse::json(200, &json!({ "keys": keys }))
        .with_header("cache-control", "public, max-age=300".to_string()))
}

/// `GET /healthz`: whether the signing key, the store and the compiled
/// policy are usable. Says why not, never with a secret.
fn healthz(env: &Env<'_>, config: &Config) -> HttpResponse {
    let key = env
        .instance
        .signer(config, env.store)
        .map(|_| ())
        .map_err(|error| error.to_string());
    let store = env
        .store
        .get("healthz")
        .map(|_| ())
        .map_err(|error| error.to_string());
    let policy = grant::policy().map(|_| ()).map_err(|error| error.detail());
    let state = |result: &Result<(), String>| match result {
        Ok(()) => "ok".to_string(),
        Err(reason) => reason.clone(),
    };
    let is_healthy = key.is_ok() && store.is_ok() && policy.is_ok();
    HttpResponse::json(
        if is_healthy { 200 } else { 503 },
        &json!({
            "status": if is_healthy { "ok" } else { "unavailable" },
            "signing_key": state(&key),
            "store": state(&store),
            "policy": state(&policy),
        }),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod unreadable_tests {
    use super::*;

    #[test]
    fn an_unreadable_request_is_answered_and_logged_in_its_routes_shape() {
        // (error, method, path, status, outcome, top-level key of the body)
        let cases = [
            (
                Error::BodyTimeout,
                Method::Post,
                "/token",
                408,
                "body_timeout",
                "error",
            ),
            (
                Error::BodyTimeout,
                Method::Post,
                "/auth",
                408,
                "body_timeout",
                "error",
            ),
            (
                Error::BodyTimeout,
                Method::Post,
                "/admin/users",
                408,
                "body_timeout",
                "errors",
            ),
            (
                Error::BodyTimeout,
                Method::Put,
                "/token",
                408,
                "body_timeout",
                "errors",
            ),
            (
                Error::PayloadTooLarge,
                Method::Post,
                "/jwt/auth",
                413,
                "payload_too_large",
                "error",
            ),
            (
                Error::PayloadTooLarge,
                Method::Patch,
                "/admin/users/a",
                413,
                "payload_too_large",
                "errors",
            ),
        ];
        for (error, method, path, status, outcome, key) in cases {
            let handled = unreadable(&error, method, path.to_string(), "r1");
            assert_eq!(handled.response.status, status, "{error} {path}");
            let body: serde_json::Value = serde_json::from_slice(&handled.response.body).unwrap();
            assert!(body.get(key).is_some(), "{error} {path}: {body}");
            assert_eq!(handled.log.status, status);
            assert_eq!(handled.log.outcome, outcome);
            assert_eq!(handled.log.path, path);
            assert_eq!(handled.log.request_id, "r1");
            assert_eq!(handled.log.detail.as_deref(), Some(error.detail().as_str()));
        }
    }
}
