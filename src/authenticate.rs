//! The authentication stage: the only place that can build an
//! [`Authenticated`] caller, and so the only way to a token.
//!
//! Every failure (unknown user, wrong password, disabled or locked account,
//! unknown, expired or revoked token) is the same [`Error::Unauthorized`]
//! after comparable work: password paths always spend one argon2 hash.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use scopegate_policy::{Caller, CredentialKind, ScopeLimit};

use crate::records::{self, LockoutRecord, RefreshRecord, TokenRecord, UserRecord};
use crate::store::Store;
use crate::{password, secret, Error};

/// API token prefixes by kind; refresh tokens use [`REFRESH_PREFIX`].
pub const TOKEN_PREFIXES: &[(&str, CredentialKind)] = &[
    ("sgp_", CredentialKind::Personal),
    ("sgd_", CredentialKind::Deploy),
    ("sgj_", CredentialKind::Job),
];
/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "sgr_";
/// `last_used` of an API token is written at most this often (seconds), so
/// a busy CI token costs one store write an hour, not one per pull.
pub const LAST_USED_RESOLUTION: u64 = 3600;

/// A caller whose credentials were checked (or who offered none).
///
/// Fields are private and the constructors live in this module: a token can
/// only be signed for a value that went through a credential check.
#[derive(Debug, Clone)]
pub struct Authenticated {
    account: Option<String>,
    groups: Vec<String>,
    kind: Option<CredentialKind>,
    limits: Option<Vec<ScopeLimit>>,
    via_token: Option<String>,
}

impl Authenticated {
    fn anonymous() -> Self {
        Self {
            account: None,
            groups: Vec::new(),
            kind: None,
            limits: None,
            via_token: None,
        }
    }

    /// The account name; `None` for anonymous callers.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The credential kind; `None` for anonymous callers.
    pub fn kind(&self) -> Option<CredentialKind> {
        self.kind
    }

    /// `auth_type` claim and log value: the kind, or `anonymous`.
    pub fn auth_type(&self) -> &'static str {
        self.kind.map_or("anonymous", CredentialKind::as_str)
    }

    /// Digest of the API token used, if any (refresh tokens die with it).
    pub fn via_token(&self) -> Option<&str> {
        self.via_token.as_deref()
    }

    /// The caller as the policy sees it.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            account: self.account.as_deref(),
            groups: &self.groups,
            kind: self.kind,
            workload: None,
        }
    }

    /// The credential's own scope limits, if it has any.
    pub fn limits(&self) -> Option<&[ScopeLimit]> {
        self.limits.as_deref()
    }
}

/// Settings of the password-failure lock.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    /// Failures within `seconds` that lock password logins for `seconds`.
    pub threshold: u32,
    pub seconds: u64,
}

/// How password logins are checked.
#[derive(Clone, Copy)]
pub struct PasswordSettings {
    pub lockout: Lockout,
    /// Secret key of the verified-password cache; `None` turns it off.
    pub cache_key: Option<[u8; 32]>,
    /// How long a verified password is remembered (the token lifetime).
    pub cache_seconds: u64,
}

impl std::fmt::Debug for PasswordSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordSettings")
            .field("lockout", &self.lockout)
            .field("cache_key", &self.cache_key.map(|_| "<redacted>"))
            .field("cache_seconds", &self.cache_seconds)
            .finish()
    }
}

/// Credentials found in an `Authorization` header.
pub enum Offered {
    None,
    Basic { username: String, password: String },
}

impl Offered {
    /// Reads a `Basic` header. Any other scheme, or a malformed value, is
    /// an offer that fails authentication (a 401, not a 400): clients
    /// react to 401 by asking the user again.
    pub fn from_header(header: Option<&str>) -> Result<Self, Error> {
        let Some(header) = header else {
            return Ok(Self::None);
        };
        let unauthorized = || Error::Unauthorized("malformed Authorization header");
        let (scheme, value) = header.trim().split_once(' ').ok_or_else(unauthorized)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(Error::Unauthorized("Authorization scheme is not Basic"));
        }
        let decoded = STANDARD.decode(value.trim()).map_err(|_| unauthorized())?;
        let decoded = String::from_utf8(decoded).map_err(|_| unauthorized())?;
        let (username, password) = decoded.split_once(':').ok_or_else(unauthorized)?;
        Ok(Self::Basic {
            username: username.to_string(),
            password: password.to_string(),
        })
    }
}

/// Checks what a GET request offered in its `Authorization` header.
pub fn authenticate(
    offered: Offered,
    store: &dyn Store,
    settings: &PasswordSettings,
    now: u64,
) -> Result<Authenticated, Error> {
    match offered {
        Offered::None => Ok(Authenticated::anonymous()),
        Offered::Basic { username, password } => {
            authenticate_secret(&username, &password, store, settings, now)
        }
    }
}

/// Checks a username and password, or an API token presented as the
/// password with any username (as docker and skopeo send them).
pub fn authenticate_secret(
    username: &str,
    password: &str,
    store: &dyn Store,
    settings: &PasswordSettings,
    now: u64,
) -> Result<Authenticated, Error> {
    match TOKEN_PREFIXES
        .iter()
        .find(|(prefix, _)| password.starts_with(prefix))
    {
        Some(_) => authenticate_api_token(password, store, now),
        None if password.starts_with(REFRESH_PREFIX) => {
            Err(Error::Unauthorized("refresh token offered as a password"))
        }
        None => authenticate_password(username, password, store, settings, now),
    }
}

fn authenticate_password(
    username: &str,
    password: &str,
    store: &dyn Store,
    settings: &PasswordSettings,
    now: u64,
) -> Result<Authenticated, Error> {
    if !is_valid_account(username) {
        password::waste_equal_work(password);
        return Err(Error::Unauthorized("unknown user"));
    }
    let lockout_key = records::lockout_key(username);
    let failures: Option<LockoutRecord> = records::load(store, &lockout_key)?;
    if failures
        .as_ref()
        .and_then(|record| record.locked_until)
        .is_some_and(|until| now < until)
    {
        password::waste_equal_work(password);
        return Err(Error::Unauthorized(
            "account locked after repeated failures",
        ));
    }
    let user: Option<UserRecord> = records::load(store, &records::user_key(username))?;
    let Some(user) = user else {
        password::waste_equal_work(password);
        return Err(Error::Unauthorized("unknown user"));
    };
    if user.disabled {
        password::waste_equal_work(password);
        return Err(Error::Unauthorized("account disabled"));
    }
    let marker = settings
        .cache_key
        .map(|key| password::cache_marker_key(&key, username, password, &user.password));
    let is_remembered = match &marker {
        Some(marker) => password::is_remembered(store, marker, now)?,
        None => false,
    };
    if !is_remembered {
        if !password::verify(password, &user.password)? {
            record_failure(store, &lockout_key, failures, settings.lockout, now)?;
            return Err(Error::Unauthorized("wrong password"));
        }
        if let Some(marker) = &marker {
            password::remember(store, marker, now.saturating_add(settings.cache_seconds))?;
        }
    }
    if failures.is_some() {
        store.delete(&lockout_key)?;
    }
    Ok(Authenticated {
        account: Some(username.to_string()),
        groups: user.groups,
        kind: Some(CredentialKind::Password),
        limits: None,
        via_token: None,
    })
}

/// Counts one more password failure. Several instances sharing the store
/// may race on this read-modify-write; the count can then lag by the number
/// of concurrent failures, which delays the lock by as many attempts but
/// never locks anyone wrongly.
fn record_failure(
    store: &dyn Store,
    key: &str,
    previous: Option<LockoutRecord>,
    lockout: Lockout,
    now: u64,
) -> Result<(), Error> {
    let mut record = match previous {
        Some(record) if now < record.since.saturating_add(lockout.seconds) => record,
        _ => LockoutRecord {
            v: records::VERSION,
            failures: 0,
            since: now,
            locked_until: None,
        },
    };
    record.failures = record.failures.saturating_add(1);
    if lockout.threshold > 0 && record.failures >= lockout.threshold {
        record.locked_until = Some(now.saturating_add(lockout.seconds));
    }
    records::save(store, key, &record)?;
    Ok(())
}

fn authenticate_api_token(
    secret: &str,
    store: &dyn Store,
    now: u64,
) -> Result<Authenticated, Error> {
    let digest = secret::digest_hex(secret);
    let key = records::token_key(&digest);
    let record: Option<TokenRecord> = records::load(store, &key)?;
    let Some(mut record) = record else {
        return Err(Error::Unauthorized("unknown or revoked token"));
    };
    if record.expires_at.is_some_and(|expiry| now >= expiry) {
        return Err(Error::Unauthorized("expired token"));
    }
    let groups = owner_groups(store, &record.owner)?;
    let limits = parse_limits(&key, &record.limits)?;
    if record
        .last_used
        .is_none_or(|last| now >= last.saturating_add(LAST_USED_RESOLUTION))
    {
        record.last_used = Some(now);
        records::save(store, &key, &record)?;
    }
    Ok(Authenticated {
        account: Some(record.owner),
        groups,
        kind: Some(record.kind),
        limits,
        via_token: Some(digest),
    })
}

/// Checks a refresh token for `service`. The state it depends on (the user,
/// the API token it came through) is read again, so revocation and
/// disabling apply at once.
pub fn authenticate_refresh(
    refresh_token: &str,
    service: &str,
    store: &dyn Store,
    now: u64,
) -> Result<Authenticated, Error> {
    let invalid = Error::Unauthorized;
    if !refresh_token.starts_with(REFRESH_PREFIX) {
        return Err(invalid("not a refresh token"));
    }
    let key = records::refresh_key(&secret::digest_hex(refresh_token));
    let record: Option<RefreshRecord> = records::load(store, &key)?;
    let Some(record) = record else {
        return Err(invalid("unknown or revoked refresh token"));
    };
    if now >= record.expires_at {
        return Err(invalid("expired refresh token"));
    }
    if !secret::is_same(&record.service, service) {
        return Err(invalid("refresh token issued for another service"));
    }
    let (groups, limits) = match &record.via_token {
        Some(digest) => {
            let token_key = records::token_key(digest);
            let token: Option<TokenRecord> = records::load(store, &token_key)?;
            let Some(token) = token else {
                return Err(invalid(
                    "the API token behind this refresh token is revoked",
                ));
            };
            if token.expires_at.is_some_and(|expiry| now >= expiry) {
                return Err(invalid("the API token behind this refresh token expired"));
            }
            (
                owner_groups(store, &token.owner)?,
                parse_limits(&token_key, &token.limits)?,
            )
        }
        None => {
            let user: Option<UserRecord> =
                records::load(store, &records::user_key(&record.account))?;
            match user {
                Some(user) if !user.disabled => (user.groups, None),
                Some(_) => return Err(invalid("account disabled")),
                None => return Err(invalid("account deleted")),
            }
        }
    };
    Ok(Authenticated {
        account: Some(record.account),
        groups,
        kind: Some(record.kind),
        limits,
        via_token: record.via_token,
    })
}

/// Groups of a token's owner. Machine owners may have no user record; a
/// disabled owner's tokens stop working.
fn owner_groups(store: &dyn Store, owner: &str) -> Result<Vec<String>, Error> {
    let user: Option<UserRecord> = records::load(store, &records::user_key(owner))?;
    match user {
        Some(user) if user.disabled => Err(Error::Unauthorized("token owner disabled")),
        Some(user) => Ok(user.groups),
        None => Ok(Vec::new()),
    }
}

fn parse_limits(key: &str, limits: &[String]) -> Result<Option<Vec<ScopeLimit>>, Error> {
    if limits.is_empty() {
        return Ok(None);
    }
    limits
        .iter()
        .map(|limit| {
            ScopeLimit::parse(limit).map_err(|error| {
                Error::unavailable(format!("unreadable limit in record {key}: {error}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Account names: 1 to 64 of lowercase letters, digits, `.`, `_`, `-`, `@`,
/// starting with a letter or digit. The admin API creates no others.
pub fn is_valid_account(name: &str) -> bool {
    let mut bytes = name.bytes();
    (1..=64).contains(&name.len())
        && bytes
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b))
}

/// Constructors for other modules' unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::Authenticated;

    pub fn anonymous() -> Authenticated {
        Authenticated::anonymous()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::records::{encode, TokenRecord, UserRecord, VERSION};
    use crate::store::MemoryStore;

    const LOCKOUT: PasswordSettings = PasswordSettings {
        lockout: Lockout {
            threshold: 3,
            seconds: 600,
        },
        cache_key: None,
        cache_seconds: 300,
    };
    const NOW: u64 = 1_800_000_000;

    fn store_with_alice() -> MemoryStore {
        let store = MemoryStore::new();
        let user = UserRecord {
            v: VERSION,
            password: password::hash("right").unwrap(),
            groups: vec!["team".into()],
            disabled: false,
            created_at: 0,
        };
        store.set("user/alice", &encode(&user)).unwrap();
        store
    }

    fn add_token(store: &MemoryStore, secret: &str, kind: CredentialKind, expires_at: Option<u64>) {
        let record = TokenRecord {
            v: VERSION,
            kind,
            owner: "alice".into(),
            name: "ci".into(),
            limits: vec!["repository:team/app:pull".into()],
            expires_at,
            created_at: 0,
            last_used: None,
        };
        store
            .set(
                &records::token_key(&secret::digest_hex(secret)),
                &encode(&record),
            )
            .unwrap();
    }

    fn login(
        store: &MemoryStore,
        user: &str,
        password: &str,
        now: u64,
    ) -> Result<Authenticated, Error> {
        authenticate_secret(user, password, store, &LOCKOUT, now)
    }

    #[test]
    fn no_header_is_anonymous_and_bad_headers_are_401() {
        let store = MemoryStore::new();
        let anonymous =
            authenticate(Offered::from_header(None).unwrap(), &store, &LOCKOUT, NOW).unwrap();
        assert_eq!(anonymous.account(), None);
        assert_eq!(anonymous.auth_type(), "anonymous");
        for header in ["Bearer abc", "Basic !!!", "Basic", "Basic YWxpY2U="] {
            assert!(
                matches!(
                    Offered::from_header(Some(header)),
                    Err(Error::Unauthorized(_))
                ),
                "{header}"
            );
        }
    }

    #[test]
    fn password_login() {
        let store = store_with_alice();
        let alice = login(&store, "alice", "right", NOW).unwrap();
        assert_eq!(alice.account(), Some("alice"));
        assert_eq!(alice.kind(), Some(CredentialKind::Password));
        assert_eq!(alice.caller().groups, ["team".to_string()]);
        assert!(alice.limits().is_none());
        assert_eq!(store.writes(), 1, "a successful login writes nothing");
        for (user, password) in [
            ("alice", "wrong"),
            ("nobody", "right"),
            ("Alice", "right"),
            ("", "x"),
        ] {
            assert!(
                matches!(
                    login(&store, user, password, NOW),
                    Err(Error::Unauthorized(_))
                ),
                "{user}"
            );
        }
    }

    #[test]
    fn lockout_stops_passwords_not_tokens_and_expires() {
        let store = store_with_alice();
        add_token(&store, "sgp_secret", CredentialKind::Personal, None);
        for _ in 0..3 {
            assert!(login(&store, "alice", "wrong", NOW).is_err());
        }
        assert!(
            matches!(login(&store, "alice", "right", NOW + 1), Err(Error::Unauthorized(reason)) if reason.contains("locked")),
            "the right password is refused while locked"
        );
        let by_token = login(&store, "anything", "sgp_secret", NOW + 1).unwrap();
        assert_eq!(by_token.kind(), Some(CredentialKind::Personal));
        let later = login(&store, "alice", "right", NOW + 601).unwrap();
        assert_eq!(later.account(), Some("alice"));
        assert!(
            store.get("lockout/alice").unwrap().is_none(),
            "success clears the failures"
        );
    }

    #[test]
    fn verified_passwords_are_remembered_for_the_cache_time_only() {
        let store = store_with_alice();
        let settings = PasswordSettings {
            cache_key: Some([1; 32]),
            ..LOCKOUT
        };
        let writes = store.writes();
        authenticate_secret("alice", "right", &store, &settings, NOW).unwrap();
        assert_eq!(
            store.writes(),
            writes + 1,
            "one marker written after a full verification"
        );
        let markers = store.keys("verified/").unwrap();
        assert_eq!(markers.len(), 1);
        assert!(!markers[0].contains("right"));
        // Within the cache time the marker answers; the benchmark shows the
        // argon2 time this saves.
        authenticate_secret("alice", "right", &store, &settings, NOW + 299).unwrap();
        assert_eq!(
            store.writes(),
            writes + 1,
            "a remembered login writes nothing"
        );
        // After the cache time the full check runs (and remembers again).
        authenticate_secret("alice", "right", &store, &settings, NOW + 300).unwrap();
        assert_eq!(store.writes(), writes + 2);
        assert!(authenticate_secret("alice", "wrong", &store, &settings, NOW + 301).is_err());
        // A new password makes old markers useless.
        let mut user: UserRecord = records::load(&store, "user/alice").unwrap().unwrap();
        user.password = password::hash("changed").unwrap();
        store.set("user/alice", &encode(&user)).unwrap();
        assert!(authenticate_secret("alice", "right", &store, &settings, NOW + 301).is_err());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let store = store_with_alice();
        assert!(login(&store, "alice", "wrong", NOW).is_err());
        assert!(login(&store, "alice", "wrong", NOW + 1).is_err());
        assert!(login(&store, "alice", "wrong", NOW + 700).is_err());
        assert!(login(&store, "alice", "right", NOW + 701).is_ok());
    }

    #[test]
    fn disabled_user_is_refused_even_with_the_right_password() {
        let store = store_with_alice();
        let mut user: UserRecord = records::load(&store, "user/alice").unwrap().unwrap();
        user.disabled = true;
        store.set("user/alice", &encode(&user)).unwrap();
        assert!(login(&store, "alice", "right", NOW).is_err());
        add_token(&store, "sgd_tok", CredentialKind::Deploy, None);
        assert!(
            login(&store, "ci", "sgd_tok", NOW).is_err(),
            "a disabled owner's tokens stop"
        );
    }

    #[test]
    fn api_tokens() {
        let store = store_with_alice();
        add_token(&store, "sgd_live", CredentialKind::Deploy, Some(NOW + 10));
        let deploy = login(&store, "whatever", "sgd_live", NOW).unwrap();
        assert_eq!(deploy.account(), Some("alice"));
        assert_eq!(deploy.kind(), Some(CredentialKind::Deploy));
        assert_eq!(deploy.limits().map(<[_]>::len), Some(1));
        assert!(login(&store, "x", "sgd_live", NOW + 10).is_err(), "expired");
        assert!(login(&store, "x", "sgd_other", NOW).is_err(), "unknown");
        assert!(
            login(&store, "x", "sgr_live", NOW).is_err(),
            "refresh token as password"
        );
    }

    #[test]
    fn last_used_is_written_at_most_once_per_resolution() {
        let store = store_with_alice();
        add_token(&store, "sgj_job", CredentialKind::Job, None);
        let before = store.writes();
        for offset in 0..50 {
            login(&store, "x", "sgj_job", NOW + offset).unwrap();
        }
        assert_eq!(store.writes(), before + 1);
        login(&store, "x", "sgj_job", NOW + LAST_USED_RESOLUTION).unwrap();
        assert_eq!(store.writes(), before + 2);
    }

    #[test]
    fn unreadable_records_fail_closed() {
        let store = MemoryStore::new();
        store.set("user/alice", b"{\"v\":9}").unwrap();
        assert!(matches!(
            login(&store, "alice", "right", NOW),
            Err(Error::Unavailable(_))
        ));
    }

    #[test]
    fn refresh_tokens_follow_the_state_they_depend_on() {
        let store = store_with_alice();
        let alice = login(&store, "alice", "right", NOW).unwrap();
        let refresh = crate::refresh::issue(&store, &alice, "reg", NOW, 100).unwrap();
        let again = authenticate_refresh(&refresh, "reg", &store, NOW + 1).unwrap();
        assert_eq!(again.account(), Some("alice"));
        assert_eq!(again.kind(), Some(CredentialKind::Password));
        assert!(
            authenticate_refresh(&refresh, "other", &store, NOW).is_err(),
            "service"
        );
        assert!(
            authenticate_refresh(&refresh, "reg", &store, NOW + 100).is_err(),
            "expired"
        );
        store.delete("user/alice").unwrap();
        assert!(
            authenticate_refresh(&refresh, "reg", &store, NOW).is_err(),
            "user deleted"
        );

        let store = store_with_alice();
        add_token(&store, "sgd_tok", CredentialKind::Deploy, None);
        let deploy = login(&store, "x", "sgd_tok", NOW).unwrap();
        let refresh = crate::refresh::issue(&store, &deploy, "reg", NOW, 100).unwrap();
        let again = authenticate_refresh(&refresh, "reg", &store, NOW).unwrap();
        assert_eq!(
            again.limits().map(<[_]>::len),
            Some(1),
            "keeps the token's limits"
        );
        store
            .delete(&records::token_key(&secret::digest_hex("sgd_tok")))
            .unwrap();
        assert!(
            authenticate_refresh(&refresh, "reg", &store, NOW).is_err(),
            "dies with the token"
        );
    }
}
