//! The management API under `/admin/`: users, API tokens, refresh tokens
//! and `explain`. JSON in and out.
//!
//! Authenticated by `Authorization: Bearer <secret>`, checked against the
//! SHA-256 digest in the secret variable `admin_token_sha256`; when that
//! variable is empty the whole API answers 404. Every change writes an
//! `audit` entry into the request's log line (never a secret).

use scopegate_policy::{parse_scopes, Caller, CredentialKind, ScopeLimit};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::authenticate::{is_valid_account, TOKEN_PREFIXES};
use crate::config::Config;
use crate::handle::Env;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::log::RequestLog;
use crate::records::{self, LastUsedRecord, RefreshRecord, TokenRecord, UserRecord, VERSION};
use crate::{grant, password, secret, Error};

mod transfer;

/// Job tokens live at most this long (seconds).
pub const MAX_JOB_TTL: u64 = 3600;
/// Default lifetime of a job token.
pub const DEFAULT_JOB_TTL: u64 = 900;
/// Default lifetime of personal and deploy tokens: 90 days.
pub const DEFAULT_TOKEN_TTL: u64 = 90 * 24 * 3600;
/// Longest lifetime of personal and deploy tokens: 400 days.
pub const MAX_TOKEN_TTL: u64 = 400 * 24 * 3600;
/// Shortest password an admin may set.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Answers one `/admin/...` request.
pub fn handle(
    request: &HttpRequest,
    env: &Env<'_>,
    config: &Config,
    log: &mut RequestLog,
) -> Result<HttpResponse, Error> {
    let Some(digest) = config.admin_token_digest.as_deref() else {
        return Err(Error::NotFound);
    };
    let presented = request
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(Error::AdminUnauthorized)?;
    if !secret::is_same(&secret::digest_hex(presented), digest) {
        return Err(Error::AdminUnauthorized);
    }
    log.account = Some("admin".to_string());
    let segments: Vec<&str> = request
        .path
        .trim_start_matches("/admin/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let mut admin = Admin { request, env, log };
    match (request.method, segments.as_slice()) {
        (Method::Get, ["users"]) => admin.list_users(),
        (Method::Post, ["users"]) => admin.create_user(),
        (Method::Get, ["users", name]) => admin.show_user(name),
        (Method::Patch, ["users", name]) => admin.update_user(name),
        (Method::Delete, ["users", name]) => admin.delete_user(name),
        (Method::Post, ["users", name, "unlock"]) => admin.unlock_user(name),
        (Method::Get, ["tokens"]) => admin.list_tokens(),
        (Method::Post, ["tokens"]) => admin.create_token(),
        (Method::Post, ["tokens", "revoke"]) => admin.revoke_token_by_secret(),
        (Method::Delete, ["tokens", id]) => admin.revoke_token(id),
        (Method::Get, ["refresh-tokens"]) => admin.list_refresh_tokens(),
        (Method::Delete, ["refresh-tokens", id]) => admin.revoke_refresh_token(id),
        (Method::Post, ["refresh-tokens", "revoke"]) => admin.revoke_refresh_tokens(),
        (Method::Post, ["explain"]) => admin.explain(),
        (Method::Get, ["store", "export"]) => admin.export_store(),
        (Method::Post, ["store", "import"]) => admin.import_store(),
        (
            _,
            ["users"]
            | ["users", _]
            | ["users", _, "unlock"]
            | ["tokens"]
            | ["tokens", _]
            | ["refresh-tokens"]
            | ["refresh-tokens", _]
            | ["explain"]
            | ["store", "export" | "import"],
        ) => Err(Error::MethodNotAllowed),
        _ => Err(Error::NotFound),
    }
}

struct Admin<'a, 'e> {
    request: &'a HttpRequest,
    env: &'a Env<'e>,
    log: &'a mut RequestLog,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    #[serde(default)]
    password: Option<String>,
    /// A PHC string hashed elsewhere (argon2 only).
    #[serde(default)]
    password_hash: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_hash: Option<String>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    disabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    kind: TokenKind,
    owner: String,
    name: String,
    /// Scope limits in policy pattern syntax.
    #[serde(default)]
    scopes: Vec<String>,
    /// Lifetime in seconds; defaults depend on the kind.
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

/// The kinds of API token the admin API creates: exactly these, so an unknown `kind` is
/// answered with this list (passwords and OIDC ID tokens are credential kinds too, but no
/// token of theirs is ever created).
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum TokenKind {
    Personal,
    Deploy,
    Job,
}

impl From<TokenKind> for CredentialKind {
    fn from(kind: TokenKind) -> CredentialKind {
        match kind {
            TokenKind::Personal => CredentialKind::Personal,
            TokenKind::Deploy => CredentialKind::Deploy,
            TokenKind::Job => CredentialKind::Job,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeToken {
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRefresh {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    account: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainRequest {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    kind: Option<CredentialKind>,
    #[serde(default)]
    limits: Vec<String>,
    scopes: Vec<String>,
}

impl Admin<'_, '_> {
    fn body<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let is_json = self
            .request
            .header("content-type")
            .is_some_and(|value| value.trim_start().starts_with("application/json"));
        if !is_json {
            return Err(Error::bad_request("content type must be application/json"));
        }
        serde_json::from_slice(&self.request.body)
            .map_err(|error| Error::bad_request(format!("invalid JSON body: {error}")))
    }

    fn audit(&mut self, what: String) {
        self.log.detail = Some(format!("audit: {what}"));
    }

    fn user(&self, name: &str) -> Result<UserRecord, Error> {
        if !is_valid_account(name) {
            return Err(Error::bad_request(format!("invalid user name {:?}", name)));
        }
        records::load(self.env.store, &records::user_key(name))?
            .ok_or_else(|| Error::Missing(format!("no user {name}")))
    }

    fn list_users(&self) -> Result<HttpResponse, Error> {
        let mut users = Vec::new();
        for key in self.env.store.keys("user/")? {
            let name = key.trim_start_matches("user/");
            let user: Option<UserRecord> = records::load(self.env.store, &key)?;
            if let Some(user) = user {
                users.push(self.user_json(name, &user)?);
            }
        }
        Ok(HttpResponse::json(200, &json!({ "users": users })))
    }

    fn user_json(&self, name: &str, user: &UserRecord) -> Result<Value, Error> {
        let lockout: Option<records::LockoutRecord> =
            records::load(self.env.store, &records::lockout_key(name))?;
        let locked_until = lockout
            .and_then(|record| record.locked_until)
            .filter(|until| *until > self.env.now);
        Ok(json!({
            "name": name,
            "groups": user.groups,
            "disabled": user.disabled,
            "locked_until": locked_until,
            "created_at": user.created_at,
        }))
    }

    fn show_user(&self, name: &str) -> Result<HttpResponse, Error> {
        let user = self.user(name)?;
        Ok(HttpResponse::json(200, &self.user_json(name, &user)?))
    }

    fn create_user(&mut self) -> Result<HttpResponse, Error> {
        let new: NewUser = self.body()?;
        if !is_valid_account(&new.name) {
            return Err(Error::bad_request(
                "user name must be 1-64 of a-z 0-9 . _ - @, starting with a letter or digit",
            ));
        }
        if grant::policy()?.is_namespace(&new.name) {
            return Err(Error::bad_request(format!(
                "user name {} is a shared namespace in the policy; it would own repository:{}/**",
                new.name, new.name
            )));
        }
        validate_groups(&new.groups)?;
        let key = records::user_key(&new.name);
        if self.env.store.get(&key)?.is_some() {
            return Err(Error::Conflict(format!("user {} exists", new.name)));
        }
        let phc = password_hash(new.password.as_deref(), new.password_hash.as_deref())?
            .ok_or_else(|| Error::bad_request("give password or password_hash"))?;
        let user = UserRecord {
            v: VERSION,
            password: phc,
            groups: new.groups,
            disabled: false,
            created_at: self.env.now,
            id: Some(new_stamp()?),
            password_epoch: Some(new_stamp()?),
        };
        records::save(self.env.store, &key, &user)?;
        self.audit(format!("create user {} groups={:?}", new.name, user.groups));
        let mut answer = self.user_json(&new.name, &user)?;
        add_group_warnings(&mut answer, &user.groups)?;
        Ok(HttpResponse::json(201, &answer))
    }

    fn update_user(&mut self, name: &str) -> Result<HttpResponse, Error> {
        let change: UserChange = self.body()?;
        let mut user = self.user(name)?;
        let mut changes = Vec::new();
        if let Some(phc) =
            password_hash(change.password.as_deref(), change.password_hash.as_deref())?
        {
            user.password = phc;
            // Ends every refresh token obtained with the old password.
            user.password_epoch = Some(new_stamp()?);
            changes.push("password".to_string());
        }
        if let Some(groups) = change.groups {
            validate_groups(&groups)?;
            changes.push(format!("groups={groups:?}"));
            user.groups = groups;
        }
        if let Some(disabled) = change.disabled {
            if disabled {
                // Refresh tokens obtained with the password end for good;
                // enabling the user again does not bring them back.
                user.password_epoch = Some(new_stamp()?);
            }
            user.disabled = disabled;
            changes.push(format!("disabled={disabled}"));
        }
        records::save(self.env.store, &records::user_key(name), &user)?;
        self.audit(format!("update user {name}: {}", changes.join(", ")));
        let mut answer = self.user_json(name, &user)?;
        add_group_warnings(&mut answer, &user.groups)?;
        Ok(HttpResponse::json(200, &answer))
    }

    /// Deletes the user, every API token they own and every refresh token
    /// issued to them.
    ///
    /// The user record goes first: from then on no credential of theirs
    /// authenticates (tokens and refresh tokens check their owner), so a
    /// login racing the sweep below cannot leave anything usable behind,
    /// and a user created later under the same name has a new id.
    fn delete_user(&mut self, name: &str) -> Result<HttpResponse, Error> {
        self.user(name)?;
        let store = self.env.store;
        store.delete(&records::user_key(name))?;
        let mut revoked = 0;
        for key in store.keys("token/")? {
            let token: Option<TokenRecord> = records::load(store, &key)?;
            if token.is_some_and(|token| token.owner == name) {
                store.delete(&key)?;
                store.delete(&records::last_used_key(key.trim_start_matches("token/")))?;
                revoked += 1;
            }
        }
        revoked += self.delete_refresh_where(|record| record.account == name)?;
        store.delete(&records::refresh_index_key(name))?;
        store.delete(&records::lockout_key(name))?;
        for key in store.keys(&records::failures_prefix(name))? {
            store.delete(&key)?;
        }
        self.audit(format!("delete user {name} and {revoked} tokens"));
        Ok(HttpResponse::json(
            200,
            &json!({ "deleted": name, "revoked_tokens": revoked }),
        ))
    }

    fn unlock_user(&mut self, name: &str) -> Result<HttpResponse, Error> {
        self.user(name)?;
        let store = self.env.store;
        store.delete(&records::lockout_key(name))?;
        for key in store.keys(&records::failures_prefix(name))? {
            store.delete(&key)?;
        }
        self.audit(format!("unlock user {name}"));
        Ok(HttpResponse::json(200, &json!({ "unlocked": name })))
    }

    /// Creates an API token for an existing user. The owner's name must not
    /// be a shared namespace (it becomes `{account}`), and the token carries
    /// the owner's id: it stops working if the owner is deleted, even if a
    /// user of the same name is created later.
    fn create_token(&mut self) -> Result<HttpResponse, Error> {
        let new: NewToken = self.body()?;
        if !is_valid_account(&new.owner) {
            return Err(Error::bad_request(format!("invalid owner {:?}", new.owner)));
        }
        if grant::policy()?.is_namespace(&new.owner) {
            return Err(Error::bad_request(format!(
                "owner {} is a shared namespace in the policy; its tokens would own repository:{}/**",
                new.owner, new.owner
            )));
        }
        let owner: Option<UserRecord> =
            records::load(self.env.store, &records::user_key(&new.owner))?;
        let Some(owner) = owner else {
            return Err(Error::bad_request(format!(
                "owner {} is not a user; create the user first (policy-only members such as static group members cannot own tokens)",
                new.owner
            )));
        };
        if new.name.is_empty() || new.name.len() > 64 || new.name.chars().any(char::is_control) {
            return Err(Error::bad_request(
                "token name must be 1-64 printable characters",
            ));
        }
        let limits = new
            .scopes
            .iter()
            .map(|limit| {
                ScopeLimit::parse(limit)
                    .map_err(|error| Error::bad_request(format!("scope limit: {error}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let kind = CredentialKind::from(new.kind);
        let (default_ttl, max_ttl) = match new.kind {
            TokenKind::Job => (DEFAULT_JOB_TTL, MAX_JOB_TTL),
            TokenKind::Personal | TokenKind::Deploy => (DEFAULT_TOKEN_TTL, MAX_TOKEN_TTL),
        };
        if kind == CredentialKind::Job && !is_single_repository(&limits) {
            return Err(Error::bad_request(
                "a job token needs exactly one scope limit naming one repository, e.g. repository:team/app:pull,push",
            ));
        }
        let ttl = new.ttl_seconds.unwrap_or(default_ttl);
        if ttl == 0 || ttl > max_ttl {
            return Err(Error::bad_request(format!(
                "ttl_seconds for a {} token must be between 1 and {max_ttl}",
                kind.as_str()
            )));
        }
        let prefix = TOKEN_PREFIXES
            .iter()
            .find(|(_, prefix_kind)| *prefix_kind == kind)
            .map_or("sgp_", |(prefix, _)| prefix);
        let token = secret::new_token(prefix)?;
        let id = secret::digest_hex(&token);
        let record = TokenRecord {
            v: VERSION,
            kind,
            owner: new.owner,
            owner_id: owner.id,
            name: new.name,
            limits: limits.iter().map(ToString::to_string).collect(),
            expires_at: Some(self.env.now.saturating_add(ttl)),
            created_at: self.env.now,
            last_used: None,
        };
        records::save(self.env.store, &records::token_key(&id), &record)?;
        self.audit(format!(
            "create {} token {} for {} id={}",
            record.kind.as_str(),
            record.name,
            record.owner,
            &id[..12]
        ));
        let mut body = token_json(&id, &record, None);
        body["secret"] = json!(token);
        Ok(HttpResponse::json(201, &body))
    }

    fn list_tokens(&self) -> Result<HttpResponse, Error> {
        let owner = query_value(&self.request.query, "owner");
        let mut tokens = Vec::new();
        for key in self.env.store.keys("token/")? {
            let token: Option<TokenRecord> = records::load(self.env.store, &key)?;
            if let Some(token) = token.filter(|t| owner.as_ref().is_none_or(|o| *o == t.owner)) {
                let id = key.trim_start_matches("token/");
                let last_used: Option<LastUsedRecord> =
                    records::load(self.env.store, &records::last_used_key(id))?;
                tokens.push(token_json(id, &token, last_used.map(|used| used.at)));
            }
        }
        Ok(HttpResponse::json(200, &json!({ "tokens": tokens })))
    }

    /// Revokes an API token by id (its digest, or a unique prefix of at
    /// least 8 characters) and the refresh tokens issued through it.
    fn revoke_token(&mut self, id: &str) -> Result<HttpResponse, Error> {
        let key = self.resolve("token/", id)?;
        self.revoke_token_key(&key)
    }

    /// Revokes the API token whose secret is in the body (`{"token": ..}`),
    /// so the secret travels in no URL and no log line.
    fn revoke_token_by_secret(&mut self) -> Result<HttpResponse, Error> {
        let revoke: RevokeToken = self.body()?;
        let key = records::token_key(&secret::digest_hex(&revoke.token));
        if self.env.store.get(&key)?.is_none() {
            return Err(Error::Missing("no such token".to_string()));
        }
        self.revoke_token_key(&key)
    }

    fn revoke_token_key(&mut self, key: &str) -> Result<HttpResponse, Error> {
        let digest = key.trim_start_matches("token/").to_string();
        self.env.store.delete(key)?;
        self.env.store.delete(&records::last_used_key(&digest))?;
        let refresh =
            self.delete_refresh_where(|record| record.via_token.as_deref() == Some(&digest))?;
        self.audit(format!(
            "revoke token id={} and {refresh} refresh tokens",
            &digest[..12]
        ));
        Ok(HttpResponse::json(
            200,
            &json!({ "revoked": digest, "revoked_refresh_tokens": refresh }),
        ))
    }

    /// Lists live refresh tokens; expired ones found on the way are deleted.
    fn list_refresh_tokens(&mut self) -> Result<HttpResponse, Error> {
        let account = query_value(&self.request.query, "account");
        let mut tokens = Vec::new();
        let mut purged = 0;
        for key in self.env.store.keys("refresh/")? {
            let record: Option<RefreshRecord> = records::load(self.env.store, &key)?;
            if record
                .as_ref()
                .is_some_and(|record| self.env.now >= record.expires_at)
            {
                self.env.store.delete(&key)?;
                purged += 1;
                continue;
            }
            if let Some(record) =
                record.filter(|r| account.as_ref().is_none_or(|a| *a == r.account))
            {
                tokens.push(json!({
                    "id": key.trim_start_matches("refresh/"),
                    "account": record.account,
                    "service": record.service,
                    "kind": record.kind,
                    "created_at": record.created_at,
                    "expires_at": record.expires_at,
                }));
            }
        }
        if purged > 0 {
            self.audit(format!("purged {purged} expired refresh tokens"));
        }
        Ok(HttpResponse::json(
            200,
            &json!({ "refresh_tokens": tokens }),
        ))
    }

    fn revoke_refresh_token(&mut self, id: &str) -> Result<HttpResponse, Error> {
        let key = self.resolve("refresh/", id)?;
        self.env.store.delete(&key)?;
        let id = key.trim_start_matches("refresh/");
        self.audit(format!(
            "revoke refresh token id={}",
            &id[..id.len().min(12)]
        ));
        Ok(HttpResponse::json(200, &json!({ "revoked": 1 })))
    }

    /// Revokes one refresh token given its secret, or all of an account's.
    fn revoke_refresh_tokens(&mut self) -> Result<HttpResponse, Error> {
        let revoke: RevokeRefresh = self.body()?;
        let revoked = match (revoke.token, revoke.account) {
            (Some(token), None) => {
                let key = records::refresh_key(&secret::digest_hex(&token));
                if self.env.store.get(&key)?.is_none() {
                    return Err(Error::Missing("no such refresh token".to_string()));
                }
                self.env.store.delete(&key)?;
                1
            }
            (None, Some(account)) => {
                self.delete_refresh_where(|record| record.account == account)?
            }
            _ => return Err(Error::bad_request("give exactly one of token or account")),
        };
        self.audit(format!("revoke {revoked} refresh tokens"));
        Ok(HttpResponse::json(200, &json!({ "revoked": revoked })))
    }

    fn delete_refresh_where(
        &self,
        matches: impl Fn(&RefreshRecord) -> bool,
    ) -> Result<usize, Error> {
        let store = self.env.store;
        let mut deleted = 0;
        for key in store.keys("refresh/")? {
            let record: Option<RefreshRecord> = records::load(store, &key)?;
            if record.is_some_and(|record| matches(&record)) {
                store.delete(&key)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// The full key under `prefix` whose id starts with `id`; at least 8
    /// hex characters, and unambiguous.
    fn resolve(&self, prefix: &str, id: &str) -> Result<String, Error> {
        if id.len() < 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::bad_request("an id is at least 8 hex characters"));
        }
        let wanted = format!("{prefix}{}", id.to_ascii_lowercase());
        let mut found = self
            .env
            .store
            .keys(prefix)?
            .into_iter()
            .filter(|key| key.starts_with(&wanted));
        match (found.next(), found.next()) {
            (Some(key), None) => Ok(key),
            (None, _) => Err(Error::Missing(format!("no token with id {id}"))),
            (Some(_), Some(_)) => Err(Error::bad_request(format!("id {id} is ambiguous"))),
        }
    }

    /// The policy decision for a hypothetical caller, with the rules that
    /// matched. A known account's stored groups are added to `groups`.
    /// One page of every durable record (see [`transfer::export`]):
    /// `?after=KEY&limit=N&oidc_keys=true`.
    fn export_store(&mut self) -> Result<HttpResponse, Error> {
        let query = &self.request.query;
        let after = query_value(query, "after");
        let limit = match query_value(query, "limit") {
            None => transfer::MAX_PAGE,
            Some(text) => text
                .parse()
                .map_err(|_| Error::bad_request(format!("limit {text:?} is not a number")))?,
        };
        let with_oidc_keys = query_value(query, "oidc_keys").as_deref() == Some("true");
        let page = transfer::export(self.env.store, after.as_deref(), limit, with_oidc_keys)?;
        let count = page["records"].as_array().map_or(0, Vec::len);
        self.audit(format!("export {count} records"));
        Ok(HttpResponse::json(200, &page))
    }

    /// Writes a batch of exported records (see [`transfer::import`]).
    fn import_store(&mut self) -> Result<HttpResponse, Error> {
        let batch: transfer::Batch = self.body()?;
        let imported = transfer::import(self.env.store, &batch)?;
        self.audit(format!(
            "import {} written, {} replaced, {} unchanged",
            imported.written, imported.replaced, imported.unchanged
        ));
        Ok(HttpResponse::json(200, &json!(imported)))
    }

    fn explain(&self) -> Result<HttpResponse, Error> {
        let request: ExplainRequest = self.body()?;
        let scopes = parse_scopes(request.scopes.iter().map(String::as_str))
            .map_err(|error| Error::bad_request(error.to_string()))?;
        let limits = request
            .limits
            .iter()
            .map(|limit| ScopeLimit::parse(limit).map_err(|e| Error::bad_request(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut groups = request.groups;
        if let Some(account) = request.account.as_deref().filter(|a| is_valid_account(a)) {
            let user: Option<UserRecord> =
                records::load(self.env.store, &records::user_key(account))?;
            groups.extend(user.map(|user| user.groups).unwrap_or_default());
        }
        let kind = match (&request.account, request.kind) {
            (Some(_), None) => Some(CredentialKind::Password),
            (_, kind) => kind,
        };
        let caller = Caller {
            account: request.account.as_deref(),
            groups: &groups,
            kind,
            workload: None,
        };
        let policy = grant::policy()?;
        let limits = (!limits.is_empty()).then_some(limits.as_slice());
        let granted = policy.evaluate(&caller, &scopes, limits);
        let explanation = policy.explain(&caller, &scopes, limits);
        Ok(HttpResponse::json(
            200,
            &json!({
                "granted": granted.scope_string(),
                "access": granted.access,
                "text": explanation.to_string(),
                "explanation": explanation,
            }),
        ))
    }
}

/// A token for listings; `last_used` is its `last-used/` record, falling
/// back to the field old builds kept in the token record.
fn token_json(id: &str, token: &TokenRecord, last_used: Option<u64>) -> Value {
    json!({
        "id": id,
        "kind": token.kind,
        "owner": token.owner,
        "name": token.name,
        "scopes": token.limits,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used": last_used.or(token.last_used),
    })
}

fn password_hash(password: Option<&str>, phc: Option<&str>) -> Result<Option<String>, Error> {
    match (password, phc) {
        (Some(_), Some(_)) => Err(Error::bad_request(
            "give password or password_hash, not both",
        )),
        (Some(password), None) if password.chars().count() < MIN_PASSWORD_LEN => {
            Err(Error::bad_request(format!(
                "password must be at least {MIN_PASSWORD_LEN} characters"
            )))
        }
        (Some(password), None) => password::hash(password).map(Some),
        (None, Some(phc)) => match password::check_phc(phc) {
            Ok(()) => Ok(Some(phc.to_string())),
            Err(reason) => Err(Error::bad_request(format!(
                "password_hash must be an argon2 PHC string with m*t between {} and {} KiB-passes and p at most {} (e.g. m=19456,t=2,p=1), or a bcrypt hash ($2a$, $2b$, $2y$) of cost {} to {}: {reason}",
                password::MIN_WORK,
                password::WORK,
                password::MAX_PARALLELISM,
                password::bcrypt::MIN_COST,
                password::bcrypt::MAX_COST,
            ))),
        },
        (None, None) => Ok(None),
    }
}

/// A fresh random stamp for [`UserRecord::id`] and
/// [`UserRecord::password_epoch`]: 128 bits, hex.
fn new_stamp() -> Result<String, Error> {
    secret::random_hex(16)
}

/// Adds `"warnings"` to a user answer for groups the compiled policy does
/// not define: accepted (a policy change may define them later), but likely
/// a typo, and they grant nothing today.
fn add_group_warnings(answer: &mut Value, groups: &[String]) -> Result<(), Error> {
    let known = grant::policy()?
        .groups()
        .map_err(|error| Error::unavailable(format!("compiled policy: {error}")))?;
    let warnings: Vec<String> = groups
        .iter()
        .filter(|group| !known.contains(group))
        .map(|group| {
            format!(
                "group {group} is not defined by the policy, so it grants nothing; the policy defines: {}",
                known.join(", ")
            )
        })
        .collect();
    if !warnings.is_empty() {
        answer["warnings"] = json!(warnings);
    }
    Ok(())
}

fn validate_groups(groups: &[String]) -> Result<(), Error> {
    match groups.iter().find(|group| !is_valid_account(group)) {
        Some(group) => Err(Error::bad_request(format!(
            "invalid group name {group:?}: use a-z 0-9 . _ - @"
        ))),
        None => Ok(()),
    }
}

/// Whether `limits` is one limit on one literal repository (no pattern).
fn is_single_repository(limits: &[ScopeLimit]) -> bool {
    match limits {
        [limit] => {
            let text = limit.to_string();
            let mut parts = text.splitn(2, ':');
            parts.next() == Some("repository")
                && parts
                    .next()
                    .and_then(|rest| rest.rsplit_once(':'))
                    .is_some_and(|(name, _)| !name.contains('*') && !name.contains('{'))
        }
        _ => false,
    }
}

fn query_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
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

    /// The admin API's answer to a token `kind` it does not create names only the kinds
    /// it does.
    #[test]
    fn an_unknown_token_kind_is_answered_with_the_kinds_that_exist() {
        let body = |kind: &str| json!({"kind": kind, "owner": "alice", "name": "n"}).to_string();
        for kind in ["foo", "password", "oidc", "Personal"] {
            let message = serde_json::from_str::<NewToken>(&body(kind))
                .err()
                .unwrap_or_else(|| panic!("{kind} accepted"))
                .to_string();
            let (_, expected) = message.split_once("expected").unwrap_or_default();
            assert!(
                expected.starts_with(" one of `personal`, `deploy`, `job`")
                    && !expected.contains("password")
                    && !expected.contains("oidc"),
                "{kind}: {message}"
            );
        }
        for (kind, expected) in [
            ("personal", CredentialKind::Personal),
            ("deploy", CredentialKind::Deploy),
            ("job", CredentialKind::Job),
        ] {
            let new: NewToken = serde_json::from_str(&body(kind)).unwrap();
            assert_eq!(CredentialKind::from(new.kind), expected);
        }
    }
}
