//! A local OpenID Connect identity provider for the single sign-on tests, in memory on a
//! free 127.0.0.1 port, plain HTTP (the CLI and scopegate allow that for loopback
//! issuers only). It serves:
//!
//! - `/idp/.well-known/openid-configuration` and `/idp/jwks` (one ES256 key, `kid` set);
//! - `/idp/device`: the device authorization endpoint (RFC 8628);
//! - `/idp/token`: the `device_code`, `authorization_code` (PKCE S256 checked) and
//!   `refresh_token` grants, rotating refresh tokens (a spent one is refused), a refresh
//!   token only when `offline_access` was asked for;
//! - `/idp/revoke`: RFC 7009 revocation of a refresh token;
//! - `/idp/authorize`: approves at once as the person set with
//!   [`Idp::set_browser_person`] and redirects to the loopback `redirect_uri` with the
//!   code and the `state`.
//!
//! The test plays the person and the administrator through the methods: approve or deny
//! a user code, change a person's groups (seen in the next ID token), revoke a person's
//! refresh tokens, shorten the ID tokens' lifetime.
//!
//! ID tokens carry `iss` (the issuer URL), `aud` (the client id), `sub`, `exp`, `iat`,
//! `preferred_username`, `email`, `email_verified` and `groups` (a list), from the
//! person's state at the time they are issued.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{
    Claims, ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair, VerificationOptions,
};
use rand::RngCore as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// The path under which everything is served; the issuer is `http://ADDR/idp`.
const BASE: &str = "/idp";
/// The signing key's `kid`.
pub const KEY_ID: &str = "idp-es256-1";
/// Longest request body read.
const MAX_BODY: usize = 64 * 1024;

/// A person the provider knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub sub: String,
    pub preferred_username: String,
    pub email: String,
    pub groups: Vec<String>,
}

impl Person {
    /// `username` with `sub` = `id-USERNAME`, email `USERNAME@example.com`, no groups.
    pub fn new(username: &str) -> Person {
        Person {
            sub: format!("id-{username}"),
            preferred_username: username.to_string(),
            email: format!("{username}@example.com"),
            groups: Vec::new(),
        }
    }

    pub fn with_groups(mut self, groups: &[&str]) -> Person {
        self.groups = groups.iter().map(|g| (*g).to_string()).collect();
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Approval {
    Pending,
    Approved(String),
    Denied,
    Spent,
}

struct Device {
    device_code: String,
    user_code: String,
    scope: String,
    approval: Approval,
}

struct AuthCode {
    sub: String,
    challenge: String,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
}

struct RefreshGrant {
    sub: String,
    scope: String,
    is_live: bool,
}

struct State {
    issuer: String,
    client_id: String,
    id_token_lifetime: u64,
    interval: u64,
    people: HashMap<String, Person>,
    devices: Vec<Device>,
    codes: HashMap<String, AuthCode>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    browser_person: Option<String>,
    /// `grant_type` of every token request, in order.
    grants: Vec<String>,
    /// The form of the last request to each path.
    last_forms: HashMap<String, Vec<(String, String)>>,
}

/// A running identity provider; dropping it stops it.
pub struct Idp {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    key: Arc<ES256KeyPair>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Idp {
    /// Starts a provider with one client, `client_id` (public: no secret), ID tokens of
    /// 300 s, a device poll interval of 1 s.
    pub fn start(client_id: &str) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the identity provider");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            issuer: format!("http://{addr}{BASE}"),
            client_id: client_id.to_string(),
            id_token_lifetime: 300,
            interval: 1,
            people: HashMap::new(),
            devices: Vec::new(),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            browser_person: None,
            grants: Vec::new(),
            last_forms: HashMap::new(),
        }));
        let key = Arc::new(ES256KeyPair::generate().with_key_id(KEY_ID));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, key, stopping) =
                (Arc::clone(&state), Arc::clone(&key), Arc::clone(&stopping));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let (state, key) = (Arc::clone(&state), Arc::clone(&key));
                        std::thread::spawn(move || serve(stream, &state, &key));
                    }
                }
            })
        };
        Idp {
            addr,
            state,
            key,
            stopping,
            thread: Some(thread),
        }
    }

    /// The issuer URL, `http://127.0.0.1:PORT/idp` (the ID tokens' `iss`).
    pub fn issuer(&self) -> String {
        self.state.lock().unwrap().issuer.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The signing key as a public JWK.
    pub fn public_jwk(&self) -> String {
        self.key.public_key().to_jwk()
    }

    /// The user codes waiting for approval.
    pub fn pending_user_codes(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .devices
            .iter()
            .filter(|d| d.approval == Approval::Pending)
            .map(|d| d.user_code.clone())
            .collect()
    }

    /// `person` approves the device login with `user_code` (and becomes known, with the
    /// groups given). Panics when no such code is pending.
    pub fn approve(&self, user_code: &str, person: &Person) {
        let mut state = self.state.lock().unwrap();
        state.people.insert(person.sub.clone(), person.clone());
        let device = state
            .devices
            .iter_mut()
            .find(|d| d.user_code == user_code && d.approval == Approval::Pending)
            .unwrap_or_else(|| panic!("no pending device login with the code {user_code:?}"));
        device.approval = Approval::Approved(person.sub.clone());
    }

    /// The person denies the device login with `user_code`.
    pub fn deny(&self, user_code: &str) {
        let mut state = self.state.lock().unwrap();
        let device = state
            .devices
            .iter_mut()
            .find(|d| d.user_code == user_code && d.approval == Approval::Pending)
            .unwrap_or_else(|| panic!("no pending device login with the code {user_code:?}"));
        device.approval = Approval::Denied;
    }

    /// The authorization endpoint approves every request as `person` from now on.
    pub fn set_browser_person(&self, person: &Person) {
        let mut state = self.state.lock().unwrap();
        state.people.insert(person.sub.clone(), person.clone());
        state.browser_person = Some(person.sub.clone());
    }

    /// The person `sub` is in `groups` from now on (the next ID token shows it).
    pub fn set_groups(&self, sub: &str, groups: &[&str]) {
        let mut state = self.state.lock().unwrap();
        let person = state
            .people
            .get_mut(sub)
            .unwrap_or_else(|| panic!("no person {sub:?}"));
        person.groups = groups.iter().map(|g| (*g).to_string()).collect();
    }

    /// Revokes every refresh token of `sub` (offboarding); how many were live.
    pub fn revoke_refresh_tokens(&self, sub: &str) -> usize {
        let mut state = self.state.lock().unwrap();
        let mut revoked = 0;
        for grant in state.refresh_tokens.values_mut() {
            if grant.sub == sub && grant.is_live {
                grant.is_live = false;
                revoked += 1;
            }
        }
        revoked
    }

    /// How many refresh tokens of `sub` are live (issued, not spent, not revoked).
    pub fn live_refresh_tokens(&self, sub: &str) -> usize {
        let state = self.state.lock().unwrap();
        state
            .refresh_tokens
            .values()
            .filter(|grant| grant.sub == sub && grant.is_live)
            .count()
    }

    /// ID tokens issued from now on live `seconds`.
    pub fn set_id_token_lifetime(&self, seconds: u64) {
        self.state.lock().unwrap().id_token_lifetime = seconds;
    }

    /// The `grant_type` of every token request so far, in order.
    pub fn token_grants(&self) -> Vec<String> {
        self.state.lock().unwrap().grants.clone()
    }

    /// The form fields of the last request to `path` (under `/idp`, e.g. `/device`).
    pub fn last_form(&self, path: &str) -> Vec<(String, String)> {
        let state = self.state.lock().unwrap();
        state
            .last_forms
            .get(&format!("{BASE}{path}"))
            .cloned()
            .unwrap_or_default()
    }

    /// The claims of `id_token` once its signature, `iss` and `aud` are verified against
    /// this provider; panics otherwise.
    pub fn verify(&self, id_token: &str) -> Value {
        let state = self.state.lock().unwrap();
        let options = VerificationOptions {
            allowed_issuers: Some([state.issuer.clone()].into()),
            allowed_audiences: Some([state.client_id.clone()].into()),
            ..VerificationOptions::default()
        };
        let claims = self
            .key
            .public_key()
            .verify_token::<Value>(id_token, Some(options))
            .unwrap_or_else(|error| panic!("the ID token does not verify: {error}"));
        let mut all = claims.custom.clone();
        all["sub"] = json!(claims.subject);
        all["exp"] = json!(claims.expires_at.map(|t| t.as_secs()));
        all
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn random_text(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// A user code as people type them: `XXXX-XXXX` of consonants.
fn user_code() -> String {
    const LETTERS: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut buffer = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut buffer);
    let letters: String = buffer
        .iter()
        .map(|b| LETTERS[usize::from(*b) % LETTERS.len()] as char)
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

/// An HTTP answer: status line, extra headers, JSON or text body.
struct Answer {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn json_answer(status: &'static str, body: &Value) -> Answer {
    Answer {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn oauth_error(status: &'static str, error: &str) -> Answer {
    json_answer(
        status,
        &json!({"error": error, "error_description": format!("local IdP: {error}")}),
    )
}

/// One request, one answer, then the connection closes.
fn serve(stream: TcpStream, state: &Mutex<State>, key: &ES256KeyPair) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {
                if let Some((name, value)) = line.split_once(':') {
                    if name.trim().eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
        }
    }
    let answer = if length > MAX_BODY {
        oauth_error("413 Payload Too Large", "invalid_request")
    } else {
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let query: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        route(method, path, &query, form, state, key)
    };
    let mut head = format!(
        "HTTP/1.1 {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = &stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&answer.body);
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn route(
    method: &str,
    path: &str,
    query: &[(String, String)],
    form: Vec<(String, String)>,
    state: &Mutex<State>,
    key: &ES256KeyPair,
) -> Answer {
    let mut state = state.lock().unwrap();
    if method == "POST" {
        state.last_forms.insert(path.to_string(), form.clone());
    }
    let issuer = state.issuer.clone();
    match (method, path.strip_prefix(BASE).unwrap_or("")) {
        ("GET", "/.well-known/openid-configuration") => json_answer(
            "200 OK",
            &json!({
                "issuer": issuer,
                "jwks_uri": format!("{issuer}/jwks"),
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "device_authorization_endpoint": format!("{issuer}/device"),
                "revocation_endpoint": format!("{issuer}/revoke"),
                "scopes_supported": ["openid", "offline_access", "profile", "email", "groups"],
                "response_types_supported": ["code"],
                "grant_types_supported": [
                    "authorization_code", "refresh_token",
                    "urn:ietf:params:oauth:grant-type:device_code"
                ],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "subject_types_supported": ["public"],
            }),
        ),
        ("GET", "/jwks") => Answer {
            status: "200 OK",
            headers: vec![("content-type".into(), "application/json".into())],
            body: format!("{{\"keys\":[{}]}}", key.public_key().to_jwk()).into_bytes(),
        },
        ("POST", "/device") => device_authorization(&mut state, &form),
        ("POST", "/token") => token(&mut state, &form, key),
        ("POST", "/revoke") => revoke(&mut state, &form),
        ("GET", "/authorize") => authorize(&mut state, query),
        _ => oauth_error("404 Not Found", "not_found"),
    }
}

fn device_authorization(state: &mut State, form: &[(String, String)]) -> Answer {
    if field(form, "client_id") != Some(state.client_id.as_str()) {
        return oauth_error("401 Unauthorized", "invalid_client");
    }
    let device = Device {
        device_code: random_text(24),
        user_code: user_code(),
        scope: field(form, "scope").unwrap_or_default().to_string(),
        approval: Approval::Pending,
    };
    let verification_uri = format!("{}/activate", state.issuer);
    let answer = json!({
        "device_code": device.device_code,
        "user_code": device.user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={}", device.user_code),
        "expires_in": 600,
        "interval": state.interval,
    });
    state.devices.push(device);
    json_answer("200 OK", &answer)
}

fn authorize(state: &mut State, query: &[(String, String)]) -> Answer {
    let redirect_uri = field(query, "redirect_uri").unwrap_or_default().to_string();
    if !redirect_uri.starts_with("http://127.0.0.1:") {
        return oauth_error("400 Bad Request", "invalid_request");
    }
    let redirect = |params: &[(&str, &str)]| -> Answer {
        let mut location = url_with(&redirect_uri, params);
        if let Some(state) = field(query, "state") {
            location = url_with(&location, &[("state", state)]);
        }
        Answer {
            status: "302 Found",
            headers: vec![("location".into(), location)],
            body: Vec::new(),
        }
    };
    let is_valid = field(query, "response_type") == Some("code")
        && field(query, "client_id") == Some(state.client_id.as_str())
        && field(query, "code_challenge_method") == Some("S256")
        && field(query, "code_challenge").is_some_and(|c| !c.is_empty());
    if !is_valid {
        return redirect(&[("error", "invalid_request")]);
    }
    let Some(sub) = state.browser_person.clone() else {
        return redirect(&[("error", "access_denied")]);
    };
    let code = random_text(24);
    state.codes.insert(
        code.clone(),
        AuthCode {
            sub,
            challenge: field(query, "code_challenge")
                .unwrap_or_default()
                .to_string(),
            redirect_uri: redirect_uri.clone(),
            scope: field(query, "scope").unwrap_or_default().to_string(),
            nonce: field(query, "nonce").map(str::to_string),
        },
    );
    redirect(&[("code", &code)])
}

/// `url` with `params` appended to its query.
fn url_with(url: &str, params: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in params {
        serializer.append_pair(key, value);
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{}", serializer.finish())
}

fn token(state: &mut State, form: &[(String, String)], key: &ES256KeyPair) -> Answer {
    let grant_type = field(form, "grant_type").unwrap_or_default().to_string();
    state.grants.push(grant_type.clone());
    if field(form, "client_id") != Some(state.client_id.as_str()) {
        return oauth_error("401 Unauthorized", "invalid_client");
    }
    let (sub, scope, nonce) = match grant_type.as_str() {
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let device_code = field(form, "device_code").unwrap_or_default();
            let Some(device) = state
                .devices
                .iter_mut()
                .find(|d| d.device_code == device_code)
            else {
                return oauth_error("400 Bad Request", "invalid_grant");
            };
            match device.approval.clone() {
                Approval::Pending => {
                    return oauth_error("400 Bad Request", "authorization_pending")
                }
                Approval::Denied => return oauth_error("400 Bad Request", "access_denied"),
                Approval::Spent => return oauth_error("400 Bad Request", "invalid_grant"),
                Approval::Approved(sub) => {
                    device.approval = Approval::Spent;
                    (sub, device.scope.clone(), None)
                }
            }
        }
        "authorization_code" => {
            let code = field(form, "code").unwrap_or_default();
            let Some(grant) = state.codes.remove(code) else {
                return oauth_error("400 Bad Request", "invalid_grant");
            };
            let verifier = field(form, "code_verifier").unwrap_or_default();
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if verifier.is_empty()
                || challenge != grant.challenge
                || field(form, "redirect_uri") != Some(grant.redirect_uri.as_str())
            {
                return oauth_error("400 Bad Request", "invalid_grant");
            }
            (grant.sub, grant.scope, grant.nonce)
        }
        "refresh_token" => {
            let token = field(form, "refresh_token").unwrap_or_default();
            let Some(grant) = state.refresh_tokens.get_mut(token).filter(|g| g.is_live) else {
                return oauth_error("400 Bad Request", "invalid_grant");
            };
            grant.is_live = false;
            (grant.sub.clone(), grant.scope.clone(), None)
        }
        _ => return oauth_error("400 Bad Request", "unsupported_grant_type"),
    };
    let Some(person) = state.people.get(&sub).cloned() else {
        return oauth_error("400 Bad Request", "invalid_grant");
    };
    let custom = json!({
        "preferred_username": person.preferred_username,
        "email": person.email,
        "email_verified": true,
        "groups": person.groups,
    });
    let mut claims = Claims::with_custom_claims(
        custom,
        jwt_simple::prelude::Duration::from_secs(state.id_token_lifetime),
    )
    .with_issuer(&state.issuer)
    .with_audience(&state.client_id)
    .with_subject(&person.sub);
    if let Some(nonce) = nonce {
        claims = claims.with_nonce(nonce);
    }
    let id_token = key.sign(claims).unwrap();
    let mut answer = json!({
        "access_token": random_text(24),
        "token_type": "Bearer",
        "expires_in": state.id_token_lifetime,
        "id_token": id_token,
        "scope": scope,
    });
    if scope.split(' ').any(|s| s == "offline_access") {
        let refresh_token = random_text(32);
        state.refresh_tokens.insert(
            refresh_token.clone(),
            RefreshGrant {
                sub,
                scope,
                is_live: true,
            },
        );
        answer["refresh_token"] = json!(refresh_token);
    }
    json_answer("200 OK", &answer)
}

/// RFC 7009: the refresh token named is dead from now on; 200 whether or not it was known.
fn revoke(state: &mut State, form: &[(String, String)]) -> Answer {
    if field(form, "client_id") != Some(state.client_id.as_str()) {
        return oauth_error("401 Unauthorized", "invalid_client");
    }
    if let Some(grant) = state
        .refresh_tokens
        .get_mut(field(form, "token").unwrap_or_default())
    {
        grant.is_live = false;
    }
    json_answer("200 OK", &json!({}))
}
