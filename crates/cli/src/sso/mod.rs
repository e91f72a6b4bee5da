//! Single sign-on for people: `scopegate auth login --oidc` gets an ID token and a refresh
//! token from the person's OpenID Connect provider, and `docker-credential-scopegate`
//! hands docker a fresh ID token from them, which scopegate accepts as the Basic password
//! (workload identity).
//!
//! One file per step: `discovery` (the provider's endpoints), `device` (RFC 8628),
//! `browser` (authorization code with PKCE on a loopback redirect, RFC 7636 and 8252),
//! `token` (the token endpoint's answers and the ID token's claims), `store` (the private
//! login files) and `helper` (the docker credential-helper protocol).
//!
//! Security-sensitive: refresh and ID tokens are credentials. They travel only over HTTPS
//! (plain HTTP only to a loopback issuer, in tests), are written only to private files,
//! and are never printed except as the helper's answer to docker.

pub mod browser;
pub mod device;
pub mod discovery;
pub mod helper;
mod http;
pub mod store;
pub mod token;

pub use http::Http;

/// The scopes every login asks for: an ID token, and a refresh token that outlives the
/// provider's browser session. `offline_access` is left out when the provider lists its
/// scopes without it (Google refuses it).
pub const DEFAULT_SCOPES: &[&str] = &["openid", "offline_access"];

/// How the CLI identifies itself to the provider: a public client's id, and the
/// non-confidential secret that some providers (Google) give installed applications.
#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub secret: Option<String>,
}

impl std::fmt::Debug for Client {
    /// Never shows the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({:?}, ..)", self.id)
    }
}

impl Client {
    /// `client_id` (and `client_secret` when there is one) as form fields.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![("client_id", self.id.clone())];
        if let Some(secret) = &self.secret {
            fields.push(("client_secret", secret.clone()));
        }
        fields
    }
}

/// The scopes to ask for: [`DEFAULT_SCOPES`] then `extra`, without repeats, and without
/// `offline_access` when `supported` is given and lacks it.
pub fn scopes(extra: &[String], supported: Option<&[String]>) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for scope in DEFAULT_SCOPES.iter().map(|s| (*s).to_string()).chain(
        extra
            .iter()
            .flat_map(|s| s.split_whitespace().map(str::to_string)),
    ) {
        if !all.contains(&scope) {
            all.push(scope);
        }
    }
    if let Some(supported) = supported {
        if !supported.iter().any(|s| s == "offline_access") {
            all.retain(|s| s != "offline_access");
        }
    }
    all
}

/// `text` fit for a terminal: control characters dropped, at most 300 characters. What
/// a provider says in an error is shown with it.
pub fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// The current time in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_the_defaults_then_the_extras_once() {
        let strings = |list: &[&str]| list.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let google = strings(&["openid", "email", "profile"]);
        /// (--scope values, the provider's scopes_supported, the scopes asked for)
        type Case<'a> = (Vec<String>, Option<&'a [String]>, Vec<String>);
        let cases: &[Case] = &[
            (vec![], None, strings(&["openid", "offline_access"])),
            (
                strings(&["groups", "openid", "profile email"]),
                None,
                strings(&["openid", "offline_access", "groups", "profile", "email"]),
            ),
            (
                strings(&["email"]),
                Some(&google),
                strings(&["openid", "email"]),
            ),
        ];
        for (extra, supported, expected) in cases {
            assert_eq!(&scopes(extra, *supported), expected, "{extra:?}");
        }
    }

    #[test]
    fn printable_drops_control_characters() {
        assert_eq!(printable("bad\u{1b}[2Jgrant\n"), "bad[2Jgrant");
        assert_eq!(printable(&"x".repeat(1000)).len(), 300);
    }
}
