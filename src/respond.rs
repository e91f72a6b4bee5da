//! The response stage: token replies, and the one function that turns an
//! [`Error`] into status, headers and body.

use scopegate_policy::Grant;
use serde_json::json;

use crate::error::OAuthErrorCode;
use crate::http::HttpResponse;
use crate::Error;

/// Which wire format a route's errors take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// `GET /token` and everything else: the Docker `{"errors":[..]}` body.
    Docker,
    /// `POST /token`: RFC 6749 `{"error":..,"error_description":..}`.
    OAuth,
}

/// A freshly signed token and what goes with it.
pub struct Issued<'a> {
    pub token: &'a str,
    pub grant: &'a Grant,
    pub expires_in: u64,
    pub issued_at: u64,
    pub refresh_token: Option<&'a str>,
    /// An RFC 8693 token exchange, whose reply names the issued token's type.
    pub is_exchange: bool,
}

/// RFC 8693 `issued_token_type` of a token exchange's reply: a registry
/// token is an OAuth access token.
pub const ISSUED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The 200 reply. Both flows carry `token` and `access_token` (docker reads
/// one, containers/image the other), `expires_in` and an RFC 3339
/// `issued_at` (docker rejects any other format); POST adds `scope`.
pub fn token_response(flow: Flow, issued: &Issued<'_>) -> HttpResponse {
    let mut body = json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": rfc3339(issued.issued_at),
    });
    if flow == Flow::OAuth {
        body["scope"] = json!(issued.grant.scope_string());
        body["token_type"] = json!("Bearer");
    }
    if issued.is_exchange {
        body["issued_token_type"] = json!(ISSUED_TOKEN_TYPE);
    }
    if let Some(refresh_token) = issued.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    HttpResponse::json(200, &body)
}

/// The only mapping from [`Error`] to HTTP. Client-facing messages are
/// short and fixed where the cause is ours or a credential; `request_id`
/// lets an operator find the log line behind a 503.
pub fn error_response(error: &Error, flow: Flow, realm: &str, request_id: &str) -> HttpResponse {
    let docker = |status: u16, code: &str, message: &str| {
        HttpResponse::json(
            status,
            &json!({"errors": [{"code": code, "message": message}]}),
        )
    };
    let oauth = |status: u16, code: OAuthErrorCode, description: &str| {
        HttpResponse::json(
            status,
            &json!({"error": code.as_str(), "error_description": description}),
        )
    };
    match (error, flow) {
        (Error::Unauthorized(_), Flow::Docker) => {
            docker(401, "UNAUTHORIZED", "authentication failed")
                .with_header("www-authenticate", format!("Basic realm=\"{realm}\""))
        }
        (Error::Unauthorized(_), Flow::OAuth) => oauth(
            400,
            OAuthErrorCode::InvalidGrant,
            "invalid credentials or grant",
        ),
        (Error::BadRequest(message), Flow::Docker) => docker(400, "INVALID_REQUEST", message),
        (Error::BadRequest(message), Flow::OAuth) => {
            oauth(400, OAuthErrorCode::InvalidRequest, message)
        }
        (Error::OAuth(error), _) => {
            let status = if error.code == OAuthErrorCode::InvalidClient {
                401
            } else {
                400
            };
            oauth(status, error.code, &error.description)
        }
        (Error::NotFound, _) => docker(404, "NOT_FOUND", "no such endpoint"),
        (Error::AdminUnauthorized, _) => docker(401, "UNAUTHORIZED", "admin secret required")
            .with_header(
                "www-authenticate",
                "Bearer realm=\"scopegate-admin\"".to_string(),
            ),
        (Error::Missing(message), _) => docker(404, "NOT_FOUND", message),
        (Error::Conflict(message), _) => docker(409, "CONFLICT", message),
        (Error::MethodNotAllowed, _) => docker(405, "UNSUPPORTED", "method not allowed"),
        (Error::PayloadTooLarge, Flow::Docker) => {
            docker(413, "INVALID_REQUEST", "request body too large")
        }
        (Error::PayloadTooLarge, Flow::OAuth) => oauth(
            413,
            OAuthErrorCode::InvalidRequest,
            "request body too large",
        ),
        (Error::BodyTimeout, Flow::Docker) => {
            docker(408, "INVALID_REQUEST", "request body not received in time")
        }
        (Error::BodyTimeout, Flow::OAuth) => oauth(
            408,
            OAuthErrorCode::InvalidRequest,
            "request body not received in time",
        ),
        (Error::Unavailable(_), _) => docker(
            503,
            "UNAVAILABLE",
            &format!("token service unavailable (request id {request_id})"),
        ),
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let seconds_of_day = unix_seconds % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm), in
    // unsigned arithmetic: shift the epoch to 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        seconds_of_day % 3600 / 60,
        seconds_of_day % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_798_761_600, "2027-01-01T00:00:00Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(rfc3339(seconds), expected, "{seconds}");
        }
    }

    #[test]
    fn unauthorized_is_identical_whatever_the_reason() {
        let a = error_response(&Error::Unauthorized("unknown user"), Flow::Docker, "r", "1");
        let b = error_response(
            &Error::Unauthorized("wrong password"),
            Flow::Docker,
            "r",
            "1",
        );
        assert_eq!(a, b);
        assert_eq!(a.status, 401);
        assert_eq!(a.header("www-authenticate"), Some("Basic realm=\"r\""));
    }

    #[test]
    fn unavailable_hides_the_detail() {
        let response = error_response(
            &Error::unavailable("store down at 10.0.0.1"),
            Flow::OAuth,
            "r",
            "abc",
        );
        assert_eq!(response.status, 503);
        let body = String::from_utf8(response.body).unwrap();
        assert!(!body.contains("10.0.0.1"));
        assert!(body.contains("abc"));
    }

    #[test]
    fn oauth_errors_use_rfc6749_shape() {
        let response = error_response(
            &Error::oauth(OAuthErrorCode::UnsupportedGrantType, "nope"),
            Flow::OAuth,
            "r",
            "1",
        );
        assert_eq!(response.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["error"], "unsupported_grant_type");
    }

    #[test]
    fn unreadable_bodies_answer_in_the_flows_shape() {
        let cases = [
            (Error::PayloadTooLarge, 413, "request body too large"),
            (Error::BodyTimeout, 408, "request body not received in time"),
        ];
        for (error, status, message) in cases {
            let oauth = error_response(&error, Flow::OAuth, "r", "1");
            assert_eq!(oauth.status, status, "{error}");
            let body: serde_json::Value = serde_json::from_slice(&oauth.body).unwrap();
            assert_eq!(body["error"], "invalid_request", "{body}");
            assert_eq!(body["error_description"], message, "{body}");
            assert!(body.get("errors").is_none(), "{body}");
            let docker = error_response(&error, Flow::Docker, "r", "1");
            assert_eq!(docker.status, status, "{error}");
            let body: serde_json::Value = serde_json::from_slice(&docker.body).unwrap();
            assert_eq!(body["errors"][0]["code"], "INVALID_REQUEST", "{body}");
            assert_eq!(body["errors"][0]["message"], message, "{body}");
            assert!(body.get("error").is_none(), "{body}");
        }
    }
}
