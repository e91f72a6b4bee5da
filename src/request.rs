//! The parsing stage: turns the query (GET) or form body (POST) of a token
//! request into a [`TokenRequest`], enforcing the request limits the README
//! states (at most 32 scopes, 64 parameters, 1 KiB per value; 8 KiB for an ID
//! token). Nothing here looks at credentials or policy.

use scopegate_policy::{parse_scopes, Scope};

use crate::error::OAuthErrorCode;
use crate::http::HttpRequest;
use crate::Error;

/// The longest parameter value accepted, in bytes; [`MAX_SECRET_BYTES`] for
/// the parameters that may carry an OIDC ID token.
pub const MAX_VALUE_BYTES: usize = 1024;
/// The longest `password` or `subject_token` accepted: an ID token's limit.
pub const MAX_SECRET_BYTES: usize = crate::oidc::MAX_TOKEN_LEN;
/// RFC 8693's `grant_type`.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The `subject_token_type`s a token exchange accepts: an OIDC ID token.
pub const SUBJECT_TOKEN_TYPES: [&str; 2] = [
    "urn:ietf:params:oauth:token-type:id_token",
    "urn:ietf:params:oauth:token-type:jwt",
];
/// The most parameters one request may carry.
pub const MAX_PARAMETERS: usize = 64;

/// A token request, in either flow.
#[derive(Debug)]
pub struct TokenRequest {
    /// The requested audience, already checked against the configured services.
    pub service: String,
    /// Requested scopes, parsed and merged.
    pub scopes: Vec<Scope>,
    pub client_id: Option<String>,
    pub grant: GrantRequest,
}

/// How the caller proves who it is.
#[derive(Debug)]
pub enum GrantRequest {
    /// `GET`: credentials, if any, in the `Authorization` header.
    /// `offline` is `offline_token=true`: also issue a refresh token.
    Docker { offline: bool },
    /// `POST grant_type=password`; `offline` is `access_type=offline`.
    Password {
        username: String,
        password: String,
        offline: bool,
    },
    /// `POST grant_type=refresh_token`.
    Refresh { refresh_token: String },
    /// `POST grant_type=urn:ietf:params:oauth:grant-type:token-exchange`
    /// (RFC 8693) with an OIDC ID token as the subject token.
    TokenExchange { subject_token: String },
}

/// Name/value pairs with the SPEC limits enforced.
struct Parameters(Vec<(String, String)>);

impl Parameters {
    fn parse(encoded: &[u8]) -> Result<Self, Error> {
        let mut pairs = Vec::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            if pairs.len() == MAX_PARAMETERS {
                return Err(Error::bad_request(format!(
                    "too many parameters (at most {MAX_PARAMETERS})"
                )));
            }
            let limit = match name.as_ref() {
                "password" | "subject_token" => MAX_SECRET_BYTES,
                _ => MAX_VALUE_BYTES,
            };
            if name.len() > MAX_VALUE_BYTES || value.len() > limit {
                return Err(Error::bad_request(format!(
                    "parameter {} is longer than {limit} bytes",
                    shorten(&name)
                )));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self(pairs))
    }

    /// The value of a parameter that may appear at most once.
    fn single<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, Error> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(Error::bad_request(format!(
                "parameter {name} is given more than once"
            )));
        }
        Ok(first)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn required<'a>(&'a self, name: &'a str) -> Result<&'a str, Error> {
        self.single(name)?
            .filter(|value| !value.is_empty())
            .ok_or_else(|| Error::bad_request(format!("parameter {name} is required")))
    }
}

/// Parses `GET /token?service=..&scope=..&offline_token=..`.
pub fn parse_get(request: &HttpRequest) -> Result<TokenRequest, Error> {
    let parameters = Parameters::parse(request.query.as_bytes())?;
    let offline = matches!(parameters.single("offline_token")?, Some("true" | "1"));
    Ok(TokenRequest {
        service: parameters.required("service")?.to_string(),
        scopes: scopes(&parameters)?,
        client_id: parameters.single("client_id")?.map(str::to_string),
        grant: GrantRequest::Docker { offline },
    })
}

/// Parses the form body of `POST /token`. Errors are OAuth2 errors.
pub fn parse_post(request: &HttpRequest) -> Result<TokenRequest, Error> {
    let is_form = request.header("content-type").is_some_and(|value| {
        value.split(';').next().is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !is_form {
        return Err(Error::oauth(
            OAuthErrorCode::InvalidRequest,
            "content type must be application/x-www-form-urlencoded",
        ));
    }
    parse_form(&request.body).map_err(as_oauth)
}

fn parse_form(body: &[u8]) -> Result<TokenRequest, Error> {
    let parameters = Parameters::parse(body)?;
    let grant = match parameters.required("grant_type")? {
        "password" => GrantRequest::Password {
            username: parameters.required("username")?.to_string(),
            password: parameters.required("password")?.to_string(),
            offline: parameters.single("access_type")? == Some("offline"),
        },
        "refresh_token" => GrantRequest::Refresh {
            refresh_token: parameters.required("refresh_token")?.to_string(),
        },
        TOKEN_EXCHANGE => {
            let token_type = parameters.required("subject_token_type")?;
            if !SUBJECT_TOKEN_TYPES.contains(&token_type) {
                return Err(Error::bad_request(format!(
                    "subject_token_type {} is not supported (an OIDC ID token is: {})",
                    shorten(token_type),
                    SUBJECT_TOKEN_TYPES.join(" or ")
                )));
            }
            GrantRequest::TokenExchange {
                subject_token: parameters.required("subject_token")?.to_string(),
            }
        }
        other => {
            return Err(Error::oauth(
                OAuthErrorCode::UnsupportedGrantType,
                format!("grant_type {} is not supported", shorten(other)),
            ))
        }
    };
    Ok(TokenRequest {
        service: parameters.required("service")?.to_string(),
        scopes: scopes(&parameters)?,
        client_id: parameters.single("client_id")?.map(str::to_string),
        grant,
    })
}

fn scopes(parameters: &Parameters) -> Result<Vec<Scope>, Error> {
    parse_scopes(parameters.all("scope")).map_err(|error| Error::bad_request(error.to_string()))
}

fn as_oauth(error: Error) -> Error {
    match error {
        Error::BadRequest(message) => Error::oauth(OAuthErrorCode::InvalidRequest, message),
        other => other,
    }
}

/// A client value cut to a length fit for an error message.
pub fn shorten(value: &str) -> String {
    const SHOWN: usize = 64;
    match value.char_indices().nth(SHOWN) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}...", &value[..end]),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a panic is how a test fails"
)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn get(query: &str) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            path: "/token".into(),
            query: query.into(),
            headers: vec![],
            body: vec![],
        }
    }

    fn post(body: &str, content_type: &str) -> HttpRequest {
        HttpRequest {
            method: Method::Post,
            path: "/token".into(),
            query: String::new(),
            headers: vec![("content-type".into(), content_type.as_bytes().to_vec())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn docker_login_and_pull() {
        let login = parse_get(&get(
            "account=alice&client_id=docker&offline_token=true&service=reg",
        ))
        .unwrap();
        assert!(login.scopes.is_empty());
        assert!(matches!(
            login.grant,
            GrantRequest::Docker { offline: true }
        ));
        assert_eq!(login.client_id.as_deref(), Some("docker"));

        let pull = parse_get(&get(
            "service=reg&scope=repository%3Ateam%2Fapp%3Apull&scope=repository:team/b:pull,push",
        ))
        .unwrap();
        assert_eq!(pull.scopes.len(), 2);
        assert!(matches!(
            pull.grant,
            GrantRequest::Docker { offline: false }
        ));
    }

    #[test]
    fn get_errors_name_the_problem() {
        let long = "a".repeat(MAX_VALUE_BYTES + 1);
        let many = "x=1&".repeat(MAX_PARAMETERS + 1);
        let cases = [
            ("scope=repository:a:pull".to_string(), "service is required"),
            ("service=".to_string(), "service is required"),
            (
                "service=a&service=b".to_string(),
                "service is given more than once",
            ),
            (
                format!("service=a&scope={long}"),
                "parameter \"scope\" is longer",
            ),
            (many, "too many parameters"),
            ("service=a&scope=repository:UPPER:pull".to_string(), "UPPER"),
        ];
        for (query, expected) in cases {
            let error = parse_get(&get(&query)).unwrap_err();
            assert!(matches!(error, Error::BadRequest(_)), "{query}");
            assert!(error.detail().contains(expected), "{query}: {error}");
        }
    }

    #[test]
    fn docker_refresh_form_with_space_joined_scopes() {
        let request = parse_post(&post(
            "grant_type=refresh_token&refresh_token=sgr_x&service=reg&client_id=docker&scope=repository%3Aa%3Apull+repository%3Ab%3Apush",
            "application/x-www-form-urlencoded",
        ))
        .unwrap();
        assert_eq!(request.scopes.len(), 2);
        assert!(matches!(request.grant, GrantRequest::Refresh { .. }));
    }

    #[test]
    fn containers_image_form_with_repeated_scopes() {
        let request = parse_post(&post(
            "grant_type=refresh_token&refresh_token=sgr_x&service=reg&client_id=containers%2Fimage&scope=repository%3Aa%3Apull&scope=repository%3Ab%3Apull%2Cpush",
            "application/x-www-form-urlencoded; charset=utf-8",
        ))
        .unwrap();
        assert_eq!(request.scopes.len(), 2);
        assert_eq!(request.client_id.as_deref(), Some("containers/image"));
    }

    #[test]
    fn token_exchange_of_an_id_token() {
        let token = format!("eyJ.{}.sig", "a".repeat(2000));
        let request = parse_post(&post(
            &format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={token}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token&service=reg&scope=repository%3Aa%3Apull"),
            "application/x-www-form-urlencoded",
        ))
        .unwrap();
        assert!(
            matches!(&request.grant, GrantRequest::TokenExchange { subject_token } if *subject_token == token)
        );
        assert_eq!(request.scopes.len(), 1);
        // An ID token fits `password` too; other parameters keep the short limit.
        let request = parse_post(&post(
            &format!("grant_type=password&username=oidc&password={token}&service=reg"),
            "application/x-www-form-urlencoded",
        ))
        .unwrap();
        assert!(matches!(request.grant, GrantRequest::Password { .. }));
        assert!(parse_post(&post(
            &format!("grant_type=refresh_token&refresh_token={token}&service=reg"),
            "application/x-www-form-urlencoded",
        ))
        .is_err());
    }

    #[test]
    fn post_errors_are_oauth_errors() {
        let form = "application/x-www-form-urlencoded";
        let cases = [
            (
                "grant_type=password&username=a&password=b&service=r",
                "text/plain",
                OAuthErrorCode::InvalidRequest,
            ),
            (
                "grant_type=client_credentials&service=r",
                form,
                OAuthErrorCode::UnsupportedGrantType,
            ),
            ("service=r", form, OAuthErrorCode::InvalidRequest),
            (
                "grant_type=password&password=b&service=r",
                form,
                OAuthErrorCode::InvalidRequest,
            ),
            (
                "grant_type=refresh_token&service=r",
                form,
                OAuthErrorCode::InvalidRequest,
            ),
            (
                "grant_type=refresh_token&refresh_token=x&service=r&scope=bad",
                form,
                OAuthErrorCode::InvalidRequest,
            ),
            (
                "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x&service=r",
                form,
                OAuthErrorCode::InvalidRequest,
            ),
            (
                "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x&subject_token_type=urn:ietf:params:oauth:token-type:access_token&service=r",
                form,
                OAuthErrorCode::InvalidRequest,
            ),
            (
                "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token_type=urn:ietf:params:oauth:token-type:jwt&service=r",
                form,
                OAuthErrorCode::InvalidRequest,
            ),
        ];
        for (body, content_type, expected) in cases {
            match parse_post(&post(body, content_type)) {
                Err(Error::OAuth(error)) => assert_eq!(error.code, expected, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
