//! The one error type of the request path, grouped by cause.
//!
//! Every stage returns [`Error`]; `respond::error_response` is the only place
//! that turns it into a status, headers and body. Clients see short fixed
//! messages; [`Error::detail`] is for the log line only.

use std::fmt;

/// Why a request did not get a token (or another successful answer).
#[derive(Debug)]
pub enum Error {
    /// The client sent something malformed: a bad scope, an oversized or
    /// repeated parameter, an unknown `service`, a wrong content type.
    /// The message is shown to the client and must not contain secrets.
    BadRequest(String),
    /// A POST request that OAuth2 rejects as a whole (RFC 6749 §5.2).
    OAuth(OAuthError),
    /// Credentials were offered and are not valid (unknown user, wrong
    /// password, expired or revoked token, disabled or locked account).
    /// Deliberately carries no detail the client could tell apart; the
    /// reason is for the log only.
    Unauthorized(&'static str),
    /// No route for this path.
    NotFound,
    /// The admin API was called without the admin bearer secret, or with a
    /// wrong one.
    AdminUnauthorized,
    /// An admin request names something that does not exist (user, token).
    Missing(String),
    /// An admin request would create something that exists already.
    Conflict(String),
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The request body is larger than the route accepts.
    PayloadTooLarge,
    /// The request body did not arrive in full within
    /// [`crate::http::BODY_READ_DEADLINE`]: the client stopped sending or
    /// trickles it. Nothing else in the request was looked at.
    BodyTimeout,
    /// Something on our side is unusable (store, signing key, configuration).
    /// Fail closed: nothing is granted. The detail goes to the log only.
    Unavailable(String),
}

/// The OAuth2 error codes scopegate answers on `POST /token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidGrant,
    UnsupportedGrantType,
    InvalidClient,
}

impl OAuthErrorCode {
    /// The code as RFC 6749 spells it on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidClient => "invalid_client",
        }
    }
}

/// An OAuth2 error with a description safe to show the client.
#[derive(Debug)]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    pub description: String,
}

impl Error {
    /// A 400 whose message names the offending value.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// A 503 with the detail kept for the log.
    pub fn unavailable(detail: impl fmt::Display) -> Self {
        Self::Unavailable(detail.to_string())
    }

    /// An OAuth2 error for the POST flow.
    pub fn oauth(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self::OAuth(OAuthError {
            code,
            description: description.into(),
        })
    }

    /// The short outcome word used in the request log.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::OAuth(_) => "oauth_error",
            Self::Unauthorized(_) => "unauthorized",
            Self::NotFound => "not_found",
            Self::AdminUnauthorized => "admin_unauthorized",
            Self::Missing(_) => "missing",
            Self::Conflict(_) => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// What the log line says about the error: never a secret, but more
    /// than the client sees.
    pub fn detail(&self) -> String {
        match self {
            Self::BadRequest(message) => message.clone(),
            Self::OAuth(error) => format!("{}: {}", error.code.as_str(), error.description),
            Self::Unauthorized(reason) => (*reason).to_string(),
            Self::NotFound => "no such route".to_string(),
            Self::AdminUnauthorized => "missing or wrong admin secret".to_string(),
            Self::Missing(message) | Self::Conflict(message) => message.clone(),
            Self::MethodNotAllowed => "method not allowed".to_string(),
            Self::PayloadTooLarge => "request body too large".to_string(),
            Self::BodyTimeout => format!(
                "request body not received within {} s",
                crate::http::BODY_READ_DEADLINE.as_secs()
            ),
            Self::Unavailable(detail) => detail.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.outcome(), self.detail())
    }
}

impl std::error::Error for Error {}
