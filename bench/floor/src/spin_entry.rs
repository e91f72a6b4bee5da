//! Routing for the floor component.

use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;

use crate::floor;

/// Most signatures one request may ask for, so a typo cannot hang the host.
const MAX_SIGNATURES: u32 = 100_000;

#[http_component]
async fn entry(request: IncomingRequest) -> Response {
    let target = request.path_with_query().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    match path {
        "/empty" => Response::new(200, ()),
        "/sign" | "/sign-jwt-simple" => {
            let Some(n) = count(query) else {
                return Response::new(400, format!("n must be 2..={MAX_SIGNATURES}\n"));
            };
            let result = if path == "/sign" {
                floor::sign_p256(n)
            } else {
                floor::sign_jwt_simple(n)
            };
            match result {
                Ok(timings) => Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(timings.to_json())
                    .build(),
                Err(error) => Response::new(500, format!("{error}\n")),
            }
        }
        "/scalar-mul" => match count(query).map(floor::scalar_multiplications) {
            Some(Ok(json)) => Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(json)
                .build(),
            Some(Err(error)) => Response::new(500, format!("{error}\n")),
            None => Response::new(400, format!("n must be 2..={MAX_SIGNATURES}\n")),
        },
        _ => Response::new(404, ()),
    }
}

/// `n` from the query string, between 2 (one cold, one warm) and the maximum.
fn count(query: &str) -> Option<u32> {
    let n = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("n="))
        .unwrap_or("1000");
    n.parse().ok().filter(|n| (2..=MAX_SIGNATURES).contains(n))
}
