//! The floor of scopegate's WASI 0.3 build (spin-sdk 6.0, instances reused
//! by Spin 4.0): what any such component pays to answer, and what it pays
//! to sign one ES256 JWT when its key (and p256's base-point table) stays
//! in the instance, as scopegate's WASI 0.3 build keeps its signer.
//!
//! Routes (every other path is a 404):
//! - `GET /empty`: 200 with an empty body.
//! - `GET /sign`: 200 with one jwt-simple ES256 JWT over a token-sized set
//!   of claims, signed with the development key, loaded once per instance.

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod entry {
    use std::sync::OnceLock;

    use jwt_simple::prelude::{Claims, Duration, ECDSAP256KeyPairLike as _, ES256KeyPair};
    use spin_sdk::http::{Request, StatusCode};
    use spin_sdk::http_service;

    type Reply = spin_sdk::http::Response<http_body_util::Full<bytes::Bytes>>;

    /// The development key (public, in git).
    const DEV_KEY: &str = include_str!("../../../dev/signing-key.pem");

    /// Claims about the size of a scopegate token's (two `access` entries).
    #[derive(serde::Serialize)]
    struct Access {
        access: &'static str,
        auth_type: &'static str,
    }

    fn key() -> Option<&'static ES256KeyPair> {
        static KEY: OnceLock<Option<ES256KeyPair>> = OnceLock::new();
        KEY.get_or_init(|| ES256KeyPair::from_pem(DEV_KEY).ok())
            .as_ref()
    }

    fn reply(status: StatusCode, body: String) -> Reply {
        let mut reply = Reply::new(http_body_util::Full::new(bytes::Bytes::from(body)));
        *reply.status_mut() = status;
        reply
    }

    #[http_service]
    async fn entry(request: Request) -> Reply {
        match request.uri().path() {
            "/empty" => reply(StatusCode::OK, String::new()),
            "/sign" => {
                let claims = Claims::with_custom_claims(
                    Access {
                        access: "repository:team/app:pull,push repository:public/base:pull",
                        auth_type: "deploy",
                    },
                    Duration::from_secs(300),
                );
                match key().map(|key| key.sign(claims)) {
                    Some(Ok(token)) => reply(StatusCode::OK, token),
                    _ => reply(StatusCode::INTERNAL_SERVER_ERROR, String::new()),
                }
            }
            _ => reply(StatusCode::NOT_FOUND, String::new()),
        }
    }
}
