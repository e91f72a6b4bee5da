//! Configuration from Spin variables (see `spin.toml` and the README table).
//!
//! Reading is cheap; the signing key is parsed only by the routes that sign
//! or publish it ([`Config::signer`]).

use std::fmt;

use crate::sign::{Algorithm, Header, KeyError, PublicKey, Signer};
use crate::Error;

/// Where configuration values come from: Spin variables in the component,
/// a map in tests.
pub trait Variables {
    /// The variable's value; `Ok(None)` when it is not set (or empty).
    fn variable(&self, name: &str) -> Result<Option<String>, String>;
}

impl Variables for std::collections::BTreeMap<String, String> {
    fn variable(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.get(name).filter(|value| !value.is_empty()).cloned())
    }
}

/// Default token lifetime in seconds.
pub const DEFAULT_TOKEN_TTL: u64 = 300;
/// Default refresh token lifetime: 30 days.
pub const DEFAULT_REFRESH_TTL: u64 = 30 * 24 * 3600;
/// Password failures within the window that lock password logins.
pub const DEFAULT_LOCKOUT_THRESHOLD: u32 = 10;
/// Length of the failure window and of the lock, in seconds.
pub const DEFAULT_LOCKOUT_SECONDS: u64 = 900;

/// Everything a request needs to know about this deployment.
pub struct Config {
    /// `iss` of every token; the registry's `auth.token.issuer`.
    pub issuer: String,
    /// Accepted `service` values; the registry's `auth.token.service`.
    pub services: Vec<String>,
    /// Token lifetime in seconds, 60 ..= 86400.
    pub token_ttl: u64,
    /// Refresh token lifetime in seconds.
    pub refresh_ttl: u64,
    /// The realm named in `WWW-Authenticate`.
    pub realm: String,
    pub lockout_threshold: u32,
    pub lockout_seconds: u64,
    /// SHA-256 hex digest of the admin bearer secret; `None` disables `/admin/`.
    pub admin_token_digest: Option<String>,
    /// `signing_alg`: ES256 (default), EdDSA or RS256.
    pub signing_alg: Algorithm,
    /// `send_x5c`: whether tokens carry the certificate (default) or only `kid`.
    pub header: Header,
    signing_key: Option<String>,
    signing_cert: Option<String>,
    previous_public_key: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("services", &self.services)
            .field("token_ttl", &self.token_ttl)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads every variable. A variable that cannot be read or has a bad
    /// value is an [`Error::Unavailable`] naming the variable (never its
    /// value, which may be secret).
    pub fn from_variables(variables: &dyn Variables) -> Result<Self, Error> {
        let read = |name: &str| {
            variables
                .variable(name)
                .map_err(|error| Error::unavailable(format!("variable {name}: {error}")))
        };
        let number = |name: &str, default: u64| -> Result<u64, Error> {
            match read(name)? {
                None => Ok(default),
                Some(text) => text.trim().parse().map_err(|_| {
                    Error::unavailable(format!("variable {name} is not a whole number"))
                }),
            }
        };
        let token_ttl = number("token_ttl", DEFAULT_TOKEN_TTL)?;
        if !(60..=86_400).contains(&token_ttl) {
            return Err(Error::unavailable(
                "variable token_ttl must be between 60 and 86400 seconds",
            ));
        }
        let services: Vec<String> = read("services")?
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|service| !service.is_empty())
            .map(str::to_string)
            .collect();
        if services.is_empty() {
            return Err(Error::unavailable("variable services is empty"));
        }
        let lockout_threshold = u32::try_from(number(
            "lockout_threshold",
            u64::from(DEFAULT_LOCKOUT_THRESHOLD),
        )?)
        .map_err(|_| Error::unavailable("variable lockout_threshold is too large"))?;
        let signing_alg = match read("signing_alg")? {
            None => Algorithm::default(),
            Some(name) => Algorithm::parse(&name).ok_or_else(|| {
                Error::unavailable("variable signing_alg must be ES256, EdDSA or RS256")
            })?,
        };
        let header = match read("send_x5c")?.map(|text| text.trim().to_ascii_lowercase()) {
            None => Header::KidAndX5c,
            Some(text) if text == "true" => Header::KidAndX5c,
            Some(text) if text == "false" => Header::KidOnly,
            Some(_) => {
                return Err(Error::unavailable(
                    "variable send_x5c must be true or false",
                ))
            }
        };
        Ok(Self {
            issuer: read("issuer")?
                .ok_or_else(|| Error::unavailable("variable issuer is empty"))?,
            services,
            token_ttl,
            refresh_ttl: number("refresh_ttl", DEFAULT_REFRESH_TTL)?,
            realm: read("realm")?.unwrap_or_else(|| "scopegate".to_string()),
            lockout_threshold,
            lockout_seconds: number("lockout_seconds", DEFAULT_LOCKOUT_SECONDS)?,
            admin_token_digest: read("admin_token_sha256")?.map(|d| d.trim().to_lowercase()),
            signing_alg,
            header,
            signing_key: read("signing_key")?,
            signing_cert: read("signing_cert")?,
            previous_public_key: read("previous_public_key")?,
        })
    }

    /// The secret key of the verified-password cache, derived from the
    /// signing key's text so there is no extra secret to manage: rotating the
    /// signing key forgets every remembered password.
    pub fn password_cache_key(&self) -> Option<[u8; 32]> {
        use sha2::{Digest, Sha256};
        let key = self.signing_key.as_deref()?;
        let mut hasher = Sha256::new();
        hasher.update(b"scopegate verified-password cache v1\0");
        hasher.update(key.as_bytes());
        Some(hasher.finalize().into())
    }

    /// Whether `service` is one this deployment issues tokens for.
    pub fn is_known_service(&self, service: &str) -> bool {
        self.services.iter().any(|known| known == service)
    }

    /// Parses the signing key and certificate (no curve arithmetic: see
    /// [`Signer`]); only routes that sign or publish keys call it.
    pub fn signer(&self) -> Result<Signer, KeyError> {
        let key = self
            .signing_key
            .as_deref()
            .ok_or(KeyError("signing_key is not set"))?;
        let cert = self
            .signing_cert
            .as_deref()
            .ok_or(KeyError("signing_cert is not set"))?;
        Signer::from_pem(self.signing_alg, key, cert, self.header)
    }

    /// The store key that records that this exact key and certificate were
    /// checked to be a pair (see `handle::Instance::signer`): a digest of
    /// both, so it reveals neither, and a new key or certificate is checked
    /// anew.
    pub fn checked_pair_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"scopegate checked key pair v1\0");
        hasher.update(self.signing_alg.name().as_bytes());
        hasher.update(b"\0");
        hasher.update(self.signing_key.as_deref().unwrap_or_default().as_bytes());
        hasher.update(b"\0");
        hasher.update(self.signing_cert.as_deref().unwrap_or_default().as_bytes());
        format!("checked-pair/{}", crate::secret::hex(&hasher.finalize()))
    }

    /// The previous public key, published in the JWKS during a rotation.
    pub fn previous_public_key(&self) -> Result<Option<PublicKey>, KeyError> {
        self.previous_public_key
            .as_deref()
            .map(PublicKey::from_pem)
            .transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn variables(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_lists() {
        let config = Config::from_variables(&variables(&[
            ("issuer", "scopegate"),
            ("services", "registry.example, other"),
        ]))
        .unwrap();
        assert_eq!(config.services, ["registry.example", "other"]);
        assert_eq!(config.token_ttl, 300);
        assert!(config.is_known_service("other"));
        assert!(!config.is_known_service("registry"));
        assert!(config.admin_token_digest.is_none());
        assert_eq!(config.signing_alg, Algorithm::Es256);
        assert_eq!(config.header, Header::KidAndX5c);
    }

    #[test]
    fn signing_alg_and_send_x5c() {
        let config = Config::from_variables(&variables(&[
            ("issuer", "i"),
            ("services", "r"),
            ("signing_alg", "EdDSA"),
            ("send_x5c", "false"),
        ]))
        .unwrap();
        assert_eq!(config.signing_alg, Algorithm::EdDsa);
        assert_eq!(config.header, Header::KidOnly);
    }

    #[test]
    fn the_checked_pair_key_changes_with_key_certificate_and_algorithm() {
        let key = |pairs: &[(&str, &str)]| {
            let mut all = vec![("issuer", "i"), ("services", "r")];
            all.extend_from_slice(pairs);
            Config::from_variables(&variables(&all))
                .unwrap()
                .checked_pair_key()
        };
        let base = key(&[("signing_key", "k"), ("signing_cert", "c")]);
        assert!(base.starts_with("checked-pair/"));
        for other in [
            key(&[("signing_key", "k2"), ("signing_cert", "c")]),
            key(&[("signing_key", "k"), ("signing_cert", "c2")]),
            key(&[
                ("signing_key", "k"),
                ("signing_cert", "c"),
                ("signing_alg", "RS256"),
            ]),
        ] {
            assert_ne!(other, base);
        }
    }

    #[test]
    fn bad_values_name_the_variable_not_the_value() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("services", "r")], "issuer"),
            (&[("issuer", "i")], "services"),
            (
                &[("issuer", "i"), ("services", "r"), ("token_ttl", "5")],
                "token_ttl",
            ),
            (
                &[("issuer", "i"), ("services", "r"), ("token_ttl", "x")],
                "token_ttl",
            ),
            (
                &[("issuer", "i"), ("services", "r"), ("signing_alg", "HS256")],
                "signing_alg",
            ),
            (
                &[("issuer", "i"), ("services", "r"), ("send_x5c", "yes")],
                "send_x5c",
            ),
        ];
        for (pairs, name) in cases {
            let error = Config::from_variables(&variables(pairs)).unwrap_err();
            assert!(error.detail().contains(name), "{pairs:?}: {error}");
        }
    }
}
