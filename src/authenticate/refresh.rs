//! Refresh tokens: each use reads again the state the token depends on, so
//! revocation, disabling and password changes apply at once.

use super::api_token::{live_token, LiveToken};
use super::{Authenticated, Via, REFRESH_PREFIX};
use crate::records::{self, RefreshRecord, UserRecord};
use crate::store::Store;
use crate::{secret, Error};

/// Checks a refresh token for `service`.
///
/// One obtained with a password lives while the user exists, is enabled
/// and keeps the password epoch it was issued under (a password change or
/// a disable ends it for good). One obtained through an API token lives
/// exactly as long as that token does, with its limits.
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
    match record.via_token {
        Some(digest) => {
            let LiveToken {
                record: token,
                groups,
                limits,
            } = live_token(store, &digest, now).map_err(|error| match error {
                Error::Unauthorized(_) => {
                    invalid("the API token behind this refresh token is no longer valid")
                }
                other => other,
            })?;
            if token.owner != record.account {
                return Err(invalid("refresh token account differs from its API token"));
            }
            Ok(Authenticated::new(
                record.account,
                groups,
                record.kind,
                limits,
                Via::Token { digest },
            ))
        }
        None => {
            let user: Option<UserRecord> =
                records::load(store, &records::user_key(&record.account))?;
            let user = match user {
                None => return Err(invalid("account deleted")),
                Some(user) if user.disabled => return Err(invalid("account disabled")),
                Some(user) if user.password_epoch != record.password_epoch => {
                    return Err(invalid(
                        "password changed since the refresh token was issued",
                    ))
                }
                Some(user) => user,
            };
            Ok(Authenticated::new(
                record.account,
                user.groups,
                record.kind,
                None,
                Via::Password {
                    epoch: user.password_epoch,
                },
            ))
        }
    }
}
