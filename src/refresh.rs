//! Issuing refresh tokens (checking them is in `authenticate`).

use crate::authenticate::{Authenticated, REFRESH_PREFIX};
use crate::records::{self, RefreshRecord};
use crate::store::Store;
use crate::{secret, Error};

/// Creates a refresh token for `caller` and `service`, valid for `ttl`
/// seconds, and stores its digest. Anonymous callers get none.
pub fn issue(
    store: &dyn Store,
    caller: &Authenticated,
    service: &str,
    now: u64,
    ttl: u64,
) -> Result<String, Error> {
    let (Some(account), Some(kind)) = (caller.account(), caller.kind()) else {
        return Err(Error::bad_request(
            "a refresh token needs an authenticated caller",
        ));
    };
    let token = secret::new_token(REFRESH_PREFIX)?;
    let record = RefreshRecord {
        v: records::VERSION,
        account: account.to_string(),
        service: service.to_string(),
        kind,
        via_token: caller.via_token().map(str::to_string),
        expires_at: now.saturating_add(ttl),
        created_at: now,
    };
    records::save(
        store,
        &records::refresh_key(&secret::digest_hex(&token)),
        &record,
    )?;
    Ok(token)
}
