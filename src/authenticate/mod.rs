//! The authentication stage: the only place that can build an
//! [`Authenticated`] caller, and so the only way to a token.
//!
//! One file per credential kind: [`password`] (user and password, with the
//! failure [`lockout`]), [`api_token`] (personal, deploy and job tokens),
//! [`refresh`] and [`oidc`] (workloads with an OIDC ID token); this module
//! routes an offered secret to the right one and keeps the constructors of
//! [`Authenticated`].
//!
//! Every failure (unknown user, wrong password, disabled or locked account,
//! unknown, expired or revoked token, a token whose owner is gone) is the
//! same [`Error::Unauthorized`] after comparable work: password paths always
//! spend one argon2 check of [`crate::password::WORK`].

mod api_token;
mod lockout;
mod oidc;
mod password;
mod refresh;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use scopegate_policy::{Caller, CredentialKind, ScopeLimit, Workload};

use crate::oidc::VerifiedWorkload;
use crate::store::Store;
use crate::Error;

pub use api_token::LAST_USED_RESOLUTION;
pub use lockout::Lockout;
pub use oidc::{authenticate_id_token, Workloads};
pub use refresh::authenticate_refresh;

/// API token prefixes by kind; refresh tokens use [`REFRESH_PREFIX`].
pub const TOKEN_PREFIXES: &[(&str, CredentialKind)] = &[
    ("sgp_", CredentialKind::Personal),
    ("sgd_", CredentialKind::Deploy),
    ("sgj_", CredentialKind::Job),
];
/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "sgr_";

/// The credential a caller authenticated with, as far as refresh tokens
/// issued to them depend on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Via {
    Anonymous,
    /// A password, under the user's password epoch at the time.
    Password {
        epoch: Option<String>,
    },
    /// An API token, by digest.
    Token {
        digest: String,
    },
    /// A verified OIDC ID token: no account, never refreshable.
    Workload(VerifiedWorkload),
}

/// A caller whose credentials were checked (or who offered none).
///
/// Fields are private and the constructors are private to this module and
/// its files: a token can only be signed for a value that went through a
/// credential check.
#[derive(Debug, Clone)]
pub struct Authenticated {
    account: Option<String>,
    groups: Vec<String>,
    kind: Option<CredentialKind>,
    limits: Option<Vec<ScopeLimit>>,
    via: Via,
}

impl Authenticated {
    fn anonymous() -> Self {
        Self {
            account: None,
            groups: Vec::new(),
            kind: None,
            limits: None,
            via: Via::Anonymous,
        }
    }

    /// The one constructor of an authenticated caller, for the credential
    /// checks in this module's files.
    fn new(
        account: String,
        groups: Vec<String>,
        kind: CredentialKind,
        limits: Option<Vec<ScopeLimit>>,
        via: Via,
    ) -> Self {
        Self {
            account: Some(account),
            groups,
            kind: Some(kind),
            limits,
            via,
        }
    }

    /// The constructor of a workload's caller, for [`oidc`]: no account, no
    /// groups, kind `oidc`, no limits of its own (its reach is the policy's
    /// rules for its issuer and claims).
    fn workload(workload: VerifiedWorkload) -> Self {
        Self {
            account: None,
            groups: Vec::new(),
            kind: Some(CredentialKind::Oidc),
            limits: None,
            via: Via::Workload(workload),
        }
    }

    /// The account name; `None` for anonymous callers and workloads.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// Who the token is for: the account, or `ISSUER:<sub>` for a workload;
    /// `None` for anonymous callers. The token's `sub` and the log's account.
    pub fn subject(&self) -> Option<&str> {
        match &self.via {
            Via::Workload(workload) => Some(workload.subject()),
            _ => self.account.as_deref(),
        }
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
        match &self.via {
            Via::Token { digest } => Some(digest),
            Via::Anonymous | Via::Password { .. } | Via::Workload(_) => None,
        }
    }

    /// The user's password epoch when the caller logged in with a password
    /// (refresh tokens die when it changes); `None` otherwise, and for
    /// users stored before epochs existed.
    pub fn password_epoch(&self) -> Option<&str> {
        match &self.via {
            Via::Password { epoch } => epoch.as_deref(),
            Via::Anonymous | Via::Token { .. } | Via::Workload(_) => None,
        }
    }

    /// The caller as the policy sees it.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            account: self.account.as_deref(),
            groups: &self.groups,
            kind: self.kind,
            workload: match &self.via {
                Via::Workload(workload) => Some(Workload {
                    issuer: workload.issuer(),
                    claims: workload.claims(),
                }),
                _ => None,
            },
        }
    }

    /// The credential's own scope limits, if it has any.
    pub fn limits(&self) -> Option<&[ScopeLimit]> {
        self.limits.as_deref()
    }
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
    workloads: &Workloads<'_>,
    now: u64,
) -> Result<Authenticated, Error> {
    match offered {
        Offered::None => Ok(Authenticated::anonymous()),
        Offered::Basic { username, password } => {
            authenticate_secret(&username, &password, store, settings, workloads, now)
        }
    }
}

/// Checks a username and password, or a secret presented as the password
/// with any username (as docker, skopeo and Kubernetes pull secrets send
/// them): an API token by its prefix, an OIDC ID token by its JWT shape.
pub fn authenticate_secret(
    username: &str,
    password: &str,
    store: &dyn Store,
    settings: &PasswordSettings,
    workloads: &Workloads<'_>,
    now: u64,
) -> Result<Authenticated, Error> {
    match TOKEN_PREFIXES
        .iter()
        .find(|(prefix, _)| password.starts_with(prefix))
    {
        Some(_) => api_token::authenticate_api_token(password, store, settings.lockout, now),
        None if password.starts_with(REFRESH_PREFIX) => {
            Err(Error::Unauthorized("refresh token offered as a password"))
        }
        None if crate::oidc::looks_like_jwt(password) => {
            authenticate_id_token(password, workloads, store, now)
        }
        None => password::authenticate_password(username, password, store, settings, now),
    }
}

/// A refusal of a password or API token that spends what a wrong password
/// spends, whatever the reason: one argon2 run and one counted failure (on
/// [`lockout::DECOY_KEY`]). Unknown user, wrong password, disabled or locked
/// account and dead token so take the same time. Returns the 401 for
/// `reason`, or the store's error.
fn refuse(store: &dyn Store, lockout: Lockout, secret: &str, reason: &'static str) -> Error {
    crate::password::waste_equal_work(secret);
    match lockout::count_decoy(store, lockout) {
        Ok(()) => Error::Unauthorized(reason),
        Err(error) => error,
    }
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

    /// The build's policy, and no network: ID tokens of its issuers get 503.
    #[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
    pub fn workloads() -> super::Workloads<'static> {
        super::Workloads {
            policy: crate::grant::policy().unwrap(),
            fetch: &crate::oidc::NoNetwork,
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is how a test fails"
)]
mod tests {
    use super::*;
    use crate::records::{self, encode, TokenRecord, UserRecord, VERSION};
    use crate::store::{MemoryStore, StoreError};
    use crate::{password, secret};

    const LOCKOUT: PasswordSettings = PasswordSettings {
        lockout: Lockout {
            threshold: 3,
            seconds: 600,
        },
        cache_key: None,
        cache_seconds: 300,
    };
    const NOW: u64 = 1_800_000_000;
    use tests_support::workloads;

    fn store_with_alice() -> MemoryStore {
        let store = MemoryStore::new();
        let user = UserRecord {
            v: VERSION,
            password: password::hash("right").unwrap(),
            groups: vec!["team".into()],
            disabled: false,
            created_at: 0,
            id: Some("alice-1".into()),
            password_epoch: Some("epoch-1".into()),
        };
        store.set("user/alice", &encode(&user)).unwrap();
        store
    }

    fn change_user(store: &MemoryStore, change: impl FnOnce(&mut UserRecord)) {
        let mut user: UserRecord = records::load(store, "user/alice").unwrap().unwrap();
        change(&mut user);
        store.set("user/alice", &encode(&user)).unwrap();
    }

    fn add_token(store: &MemoryStore, secret: &str, kind: CredentialKind, expires_at: Option<u64>) {
        let record = TokenRecord {
            v: VERSION,
            kind,
            owner: "alice".into(),
            owner_id: Some("alice-1".into()),
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
        authenticate_secret(user, password, store, &LOCKOUT, &workloads(), now)
    }

    #[test]
    fn no_header_is_anonymous_and_bad_headers_are_401() {
        let store = MemoryStore::new();
        let anonymous = authenticate(
            Offered::from_header(None).unwrap(),
            &store,
            &LOCKOUT,
            &workloads(),
            NOW,
        )
        .unwrap();
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
    fn an_imported_bcrypt_hash_logs_in_once_then_is_argon2id() {
        let store = store_with_alice();
        // `htpasswd -nbB alice alice-password` (cost 5).
        let imported = "$2y$05$Sb7fX/NPr2mnOID/wCY1eeW3hJ/4/yudAXHJvB4f1YUVEq.M/zOBi";
        change_user(&store, |user| user.password = imported.into());
        assert!(matches!(
            login(&store, "alice", "right", NOW),
            Err(Error::Unauthorized("wrong password"))
        ));
        let unchanged: UserRecord = records::load(&store, "user/alice").unwrap().unwrap();
        assert_eq!(
            unchanged.password, imported,
            "a wrong password rehashes nothing"
        );

        let alice = login(&store, "alice", "alice-password", NOW).unwrap();
        assert_eq!(alice.account(), Some("alice"));
        let rehashed: UserRecord = records::load(&store, "user/alice").unwrap().unwrap();
        assert!(rehashed
            .password
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(password::verify("alice-password", &rehashed.password).unwrap());
        assert_eq!(
            UserRecord {
                password: imported.into(),
                ..rehashed.clone()
            },
            unchanged,
            "only the hash changed: groups, id and password epoch stay"
        );
        assert!(login(&store, "alice", "alice-password", NOW).is_ok());
        assert!(login(&store, "alice", "right", NOW).is_err());
    }

    #[test]
    fn a_bcrypt_cost_above_12_is_a_401_saying_why() {
        let store = store_with_alice();
        let dear = "$2y$13$Sb7fX/NPr2mnOID/wCY1eeW3hJ/4/yudAXHJvB4f1YUVEq.M/zOBi";
        change_user(&store, |user| user.password = dear.into());
        let refused = login(&store, "alice", "alice-password", NOW);
        assert!(
            matches!(refused, Err(Error::Unauthorized(reason)) if reason.contains("bcrypt")),
            "{refused:?}"
        );
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
        authenticate_secret("alice", "right", &store, &settings, &workloads(), NOW).unwrap();
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
        authenticate_secret("alice", "right", &store, &settings, &workloads(), NOW + 299).unwrap();
        assert_eq!(
            store.writes(),
            writes + 1,
            "a remembered login writes nothing"
        );
        // After the cache time the full check runs (and remembers again).
        authenticate_secret("alice", "right", &store, &settings, &workloads(), NOW + 300).unwrap();
        assert_eq!(store.writes(), writes + 2);
        assert!(
            authenticate_secret("alice", "wrong", &store, &settings, &workloads(), NOW + 301)
                .is_err()
        );
        // A new password makes old markers useless.
        change_user(&store, |user| {
            user.password = password::hash("changed").unwrap()
        });
        assert!(
            authenticate_secret("alice", "right", &store, &settings, &workloads(), NOW + 301)
                .is_err()
        );
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
        change_user(&store, |user| user.disabled = true);
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
        let key = records::token_key(&secret::digest_hex("sgj_job"));
        let record: TokenRecord = records::load(&store, &key).unwrap().unwrap();
        assert_eq!(record.last_used, None, "the token record is never written");
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
        change_user(&store, |user| user.groups.clear());
        assert!(
            authenticate_refresh(&refresh, "reg", &store, NOW).is_ok(),
            "a group change is no password change"
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

    /// Refresh tokens obtained with a password, and what ends them.
    #[test]
    fn password_refresh_tokens_die_with_the_password_epoch() {
        type Change = fn(&mut UserRecord);
        let cases: [(&str, Change, bool); 5] = [
            ("nothing changes", |_| {}, true),
            ("groups change", |user| user.groups.clear(), true),
            (
                "password changed (the admin API sets a new epoch)",
                |user| user.password_epoch = Some("epoch-2".into()),
                false,
            ),
            (
                "disabled (the admin API sets a new epoch) and enabled again",
                |user| user.password_epoch = Some("epoch-3".into()),
                false,
            ),
            (
                "deleted and created again (new id and epoch)",
                |user| {
                    user.id = Some("alice-2".into());
                    user.password_epoch = Some("epoch-4".into());
                },
                false,
            ),
        ];
        for (what, change, is_alive) in cases {
            let store = store_with_alice();
            let alice = login(&store, "alice", "right", NOW).unwrap();
            assert_eq!(alice.password_epoch(), Some("epoch-1"));
            let refresh = crate::refresh::issue(&store, &alice, "reg", NOW, 100).unwrap();
            change_user(&store, change);
            assert_eq!(
                authenticate_refresh(&refresh, "reg", &store, NOW + 1).is_ok(),
                is_alive,
                "{what}"
            );
        }
    }

    #[test]
    fn a_refresh_token_from_an_api_token_follows_the_token_not_the_password() {
        let store = store_with_alice();
        add_token(&store, "sgp_laptop", CredentialKind::Personal, None);
        let by_token = login(&store, "x", "sgp_laptop", NOW).unwrap();
        assert_eq!(by_token.password_epoch(), None);
        let refresh = crate::refresh::issue(&store, &by_token, "reg", NOW, 100).unwrap();
        change_user(&store, |user| user.password_epoch = Some("epoch-2".into()));
        assert!(
            authenticate_refresh(&refresh, "reg", &store, NOW).is_ok(),
            "a password change leaves API tokens alone"
        );
        change_user(&store, |user| user.id = Some("alice-2".into()));
        assert!(
            authenticate_refresh(&refresh, "reg", &store, NOW).is_err(),
            "a re-created owner ends the token and its refresh tokens"
        );
    }

    /// A token's owner must be the very user it was created for.
    #[test]
    fn api_tokens_need_their_owner() {
        type Change = fn(&MemoryStore);
        let cases: [(&str, Change, bool); 6] = [
            ("owner as created", |_| {}, true),
            (
                "owner deleted",
                |store| store.delete("user/alice").unwrap(),
                false,
            ),
            (
                "owner deleted and created again",
                |store| change_user(store, |user| user.id = Some("alice-2".into())),
                false,
            ),
            (
                "owner record without an id (the token has one)",
                |store| change_user(store, |user| user.id = None),
                false,
            ),
            (
                "owner disabled",
                |store| change_user(store, |user| user.disabled = true),
                false,
            ),
            (
                "owner's password changed",
                |store| change_user(store, |user| user.password_epoch = None),
                true,
            ),
        ];
        for (what, change, is_accepted) in cases {
            let store = store_with_alice();
            add_token(&store, "sgd_tok", CredentialKind::Deploy, None);
            change(&store);
            assert_eq!(
                login(&store, "x", "sgd_tok", NOW).is_ok(),
                is_accepted,
                "{what}"
            );
        }
    }

    #[test]
    fn records_written_before_ids_match_only_each_other() {
        let store = store_with_alice();
        change_user(&store, |user| user.id = None);
        let legacy = TokenRecord {
            v: VERSION,
            kind: CredentialKind::Personal,
            owner: "alice".into(),
            owner_id: None,
            name: "old".into(),
            limits: vec![],
            expires_at: None,
            created_at: 0,
            last_used: Some(5),
        };
        let key = records::token_key(&secret::digest_hex("sgp_old"));
        store.set(&key, &encode(&legacy)).unwrap();
        assert!(login(&store, "x", "sgp_old", NOW).is_ok());
        change_user(&store, |user| user.id = Some("alice-2".into()));
        assert!(login(&store, "x", "sgp_old", NOW).is_err());
        for owner in ["root", "ghost"] {
            let orphan = TokenRecord {
                owner: owner.into(),
                ..legacy.clone()
            };
            store.set(&key, &encode(&orphan)).unwrap();
            assert!(
                login(&store, "x", "sgp_old", NOW).is_err(),
                "{owner} has no user record"
            );
        }
    }

    /// A store that runs `then` right after the first read of `key`: what
    /// an admin request landing between a load and a save would do.
    struct Interleaved<'a> {
        inner: MemoryStore,
        key: String,
        then: std::cell::RefCell<Option<AdminAction<'a>>>,
    }

    type AdminAction<'a> = Box<dyn FnOnce(&MemoryStore) + 'a>;

    impl Store for Interleaved<'_> {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            let value = self.inner.get(key);
            if key == self.key {
                if let Some(then) = self.then.borrow_mut().take() {
                    then(&self.inner);
                }
            }
            value
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            self.inner.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.inner.delete(key)
        }
        fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            self.inner.keys(prefix)
        }
        fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
            self.inner.increment(key, delta)
        }
    }

    #[test]
    fn a_revocation_between_load_and_last_used_write_stays_revoked() {
        let inner = store_with_alice();
        add_token(&inner, "sgd_tok", CredentialKind::Deploy, None);
        let key = records::token_key(&secret::digest_hex("sgd_tok"));
        let revoked = key.clone();
        let store = Interleaved {
            inner,
            key: key.clone(),
            then: std::cell::RefCell::new(Some(Box::new(move |store: &MemoryStore| {
                store.delete(&revoked).unwrap()
            }))),
        };
        // This request loaded the record before the revocation landed; it
        // may still finish, but it must not write the record back.
        let raced = authenticate_secret("x", "sgd_tok", &store, &LOCKOUT, &workloads(), NOW);
        assert!(raced.is_ok());
        assert_eq!(store.inner.get(&key).unwrap(), None, "not re-created");
        assert!(store
            .inner
            .get(&records::last_used_key(&secret::digest_hex("sgd_tok")))
            .unwrap()
            .is_some());
        assert!(
            authenticate_secret("x", "sgd_tok", &store, &LOCKOUT, &workloads(), NOW + 1).is_err()
        );
    }

    #[test]
    fn a_user_deleted_during_a_login_leaves_no_usable_refresh_token() {
        let store = store_with_alice();
        add_token(&store, "sgp_laptop", CredentialKind::Personal, None);
        // Both logins pass their checks, then the user is deleted (user
        // record first, then the sweep), then they write their refresh
        // tokens: the late writes survive the sweep.
        let by_password = login(&store, "alice", "right", NOW).unwrap();
        let by_token = login(&store, "x", "sgp_laptop", NOW).unwrap();
        store.delete("user/alice").unwrap();
        for key in store.keys("token/").unwrap() {
            store.delete(&key).unwrap();
        }
        let late = [
            crate::refresh::issue(&store, &by_password, "reg", NOW, 100).unwrap(),
            crate::refresh::issue(&store, &by_token, "reg", NOW, 100).unwrap(),
        ];
        for refresh in &late {
            assert!(authenticate_refresh(refresh, "reg", &store, NOW).is_err());
        }
        // A new user alice (as the admin API creates her) gets none of it.
        let user = UserRecord {
            v: VERSION,
            password: password::hash("right").unwrap(),
            groups: vec![],
            disabled: false,
            created_at: NOW,
            id: Some("alice-2".into()),
            password_epoch: Some("epoch-9".into()),
        };
        store.set("user/alice", &encode(&user)).unwrap();
        for refresh in &late {
            assert!(authenticate_refresh(refresh, "reg", &store, NOW).is_err());
        }
    }
}
