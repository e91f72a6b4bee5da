//! The hostile-input generator: a deterministic stream of malformed and
//! adversarial HTTP requests for every route the component serves, from a
//! seed. The same seed gives the same requests, so a failure is replayed by
//! its seed and index.
//!
//! Every request it makes is refused or read-only by construction: Basic
//! credentials never name an existing user (a wrong password for one would
//! rightly count towards its lockout), and admin requests with the right
//! secret always carry a body the admin API must refuse. So the store must
//! be exactly as it was after any number of them.

/// splitmix64: small, fast, and good enough to spread choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// One generated request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub is_chunked: bool,
}

/// Pieces of text that break parsers: control characters, unicode,
/// separators, encodings, and the grammar's own punctuation.
const NASTY: &[&str] = &[
    "",
    " ",
    ":",
    "::",
    ":::",
    "/",
    "//",
    "..",
    "*",
    "**",
    ",",
    ",,",
    "%",
    "%zz",
    "%00",
    "%ff%fe",
    "%0d%0a",
    "\u{0}",
    "\u{7}",
    "\t",
    "\r\n",
    "é",
    "ü/ß",
    "🦀",
    "\u{202e}",
    "\u{feff}",
    "\u{fffd}",
    "A",
    "-",
    "_",
    "__",
    ".",
    "(",
    ")",
    "()",
    "(x)",
    "[",
    "]",
    "{",
    "}",
    "{account}",
    "{claim:sub}",
    "\"",
    "'",
    "\\",
    "=",
    "&",
    "?",
    "#",
    "+",
    ";",
    "<",
    ">",
    "$(id)",
    "null",
    "true",
    "-1",
    "0",
    "18446744073709551616",
    "1e309",
    "NaN",
];

const TYPES: &[&str] = &[
    "repository",
    "registry",
    "repository(plugin)",
    "widget",
    "",
    "REPOSITORY",
];
const NAMES: &[&str] = &[
    "team/app",
    "public/hello",
    "platform/api",
    "catalog",
    "localhost:5000/team/app",
    "a",
    "team/../admin",
    "team//app",
    "Team/App",
    "-team/app",
    "team/app-",
    "a__b",
    "a___b",
    "a.b",
];
const ACTIONS: &[&str] = &[
    "pull",
    "push",
    "delete",
    "*",
    "pull,push",
    "pull,",
    ",",
    "PULL",
    "x",
];
const ROUTES: &[&str] = &[
    "/token",
    "/jwt/auth",
    "/auth",
    "/.well-known/jwks.json",
    "/healthz",
];
/// Request targets stay under this, as HTTP servers refuse longer ones.
const MAX_QUERY: usize = 6 * 1024;
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// Up to `max_parts` pieces drawn from the nasty ones and plain names.
fn text(rng: &mut Rng, max_parts: usize) -> String {
    let parts = rng.below(max_parts + 1);
    let mut out = String::new();
    for _ in 0..parts {
        if rng.chance(40) {
            out.push_str(rng.pick(NASTY));
        } else {
            out.push_str(rng.pick(NAMES));
        }
    }
    out
}

/// A value that is sometimes far over the 1 KiB parameter limit.
fn value(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "x".repeat(1000 + rng.below(1200)),
        1 => text(rng, 2).repeat(1 + rng.below(300)),
        _ => text(rng, 4),
    }
}

fn scope(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => text(rng, 5),
        1 => format!("{}:{}", rng.pick(TYPES), rng.pick(NAMES)),
        _ => format!(
            "{}:{}{}:{}",
            rng.pick(TYPES),
            rng.pick(NAMES),
            if rng.chance(20) {
                text(rng, 1)
            } else {
                String::new()
            },
            rng.pick(ACTIONS)
        ),
    }
}

fn percent_encode(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// A query string: known parameters with odd values, unknown ones, repeats,
/// raw separators, and sometimes too many of them.
fn query(rng: &mut Rng) -> String {
    let mut pairs: Vec<String> = Vec::new();
    let count = if rng.chance(5) {
        60 + rng.below(40)
    } else {
        rng.below(6)
    };
    for _ in 0..count {
        let name = match rng.below(8) {
            0 | 1 => "scope".to_string(),
            2 => "service".to_string(),
            3 => rng
                .pick(&["account", "client_id", "offline_token", "grant_type"])
                .to_string(),
            4 => text(rng, 1),
            _ => "scope".to_string(),
        };
        let value = match name.as_str() {
            "scope" => {
                let most = if rng.chance(5) { 40 } else { 3 };
                let n = 1 + rng.below(most);
                (0..n).map(|_| scope(rng)).collect::<Vec<_>>().join(" ")
            }
            "service" if rng.chance(70) => "registry.test".to_string(),
            "offline_token" => rng.pick(&["true", "false", "1", "yes", ""]).to_string(),
            _ => value(rng),
        };
        if rng.chance(10) {
            // Raw, unencoded: `&`, `=`, `%` and `+` as the client typed them,
            // with everything HTTP forbids in a request line encoded.
            pairs.push(format!("{}={}", raw_safe(&name), raw_safe(&value)));
        } else {
            pairs.push(format!(
                "{}={}",
                percent_encode(&name),
                percent_encode(&value)
            ));
        }
    }
    if rng.chance(5) {
        pairs.push(
            rng.pick(&["&&", "=", "scope", "scope=", "%", "=%zz"])
                .to_string(),
        );
    }
    // Far beyond every limit of the component, within what HTTP servers take.
    let mut query = pairs.join("&");
    query.truncate(MAX_QUERY);
    query
}

/// `raw` with only what cannot stand in a request target percent-encoded
/// (RFC 3986: no controls, spaces, `"<>\\^`{|}` or `#`), so the request
/// reaches the component rather than being refused by Spin's HTTP server.
fn raw_safe(raw: &str) -> String {
    raw.bytes()
        .map(|byte| {
            if byte.is_ascii_graphic() && !b"#\"<>\\^`{|}".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// An `Authorization` value: Basic with unknown users, odd encodings, no
/// colon, huge; Bearer junk; other schemes.
fn authorization(rng: &mut Rng) -> String {
    use base64::Engine as _;
    let basic = |text: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
        )
    };
    match rng.below(11) {
        9 => basic(&format!("oidc:{}", id_token(rng))),
        0 => basic(&format!("nobody-{}:{}", rng.below(1000), value(rng))),
        1 => basic(&text(rng, 3)),
        2 => basic(&format!("{}:{}", text(rng, 2), text(rng, 2))),
        3 => basic(&format!("x:sgp_{}", text(rng, 2))),
        4 => basic(&format!("x:sgr_{}", "A".repeat(rng.below(80)))),
        5 => format!("Basic {}", raw_safe(&text(rng, 2))),
        6 => format!("Bearer {}", raw_safe(&text(rng, 3))),
        7 => "Basic".to_string(),
        8 => format!("{} {}", raw_safe(&text(rng, 1)), raw_safe(&text(rng, 1))),
        _ => basic(&format!("ünïcødé-{}:pässwörd", rng.below(100))),
    }
}

/// A JWT-shaped ID token that verifies nowhere: from a trusted issuer of the
/// shipped policy (whose keys cannot be fetched here: a 503 with a request
/// id), an issuer the manifest does not let the component reach, or an
/// untrusted one; with odd headers and claims.
fn id_token(rng: &mut Rng) -> String {
    use base64::Engine as _;
    let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let iss = rng.pick(&[
        "https://token.actions.githubusercontent.com",
        "https://gitlab.example.com",
        "https://issuer.example.net",
        "",
    ]);
    let alg = rng.pick(&["RS256", "ES256", "none", "HS256", "EdDSA", ""]);
    let header = format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, raw_safe(&text(rng, 1)));
    let payload = match rng.below(4) {
        0 => text(rng, 3),
        _ => format!(
            r#"{{"iss":"{iss}","sub":"{}","aud":"registry.example.com","exp":{},"repository":"{}"}}"#,
            raw_safe(&text(rng, 1)),
            rng.below(5_000_000_000),
            raw_safe(&text(rng, 2)),
        ),
    };
    format!(
        "{}.{}.{}",
        encode(&header),
        encode(&payload),
        encode(&text(rng, 2))
    )
}

/// A form body for POST /token.
fn form(rng: &mut Rng) -> Vec<u8> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let grant = rng.pick(&[
        "password",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "client_credentials",
        "",
    ]);
    pairs.push(("grant_type".into(), grant.to_string()));
    for _ in 0..rng.below(8) {
        let name = rng
            .pick(&[
                "username",
                "password",
                "refresh_token",
                "scope",
                "service",
                "client_id",
                "access_type",
                "subject_token",
                "subject_token_type",
            ])
            .to_string();
        let value = match name.as_str() {
            "username" => format!("nobody-{}", text(rng, 1)),
            "scope" => scope(rng),
            "service" => "registry.test".to_string(),
            "password" | "subject_token" if rng.chance(50) => id_token(rng),
            "subject_token_type" => rng
                .pick(&[
                    "urn:ietf:params:oauth:token-type:id_token",
                    "urn:ietf:params:oauth:token-type:jwt",
                    "urn:ietf:params:oauth:token-type:access_token",
                ])
                .to_string(),
            _ => value(rng),
        };
        pairs.push((name, value));
    }
    let mut body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish()
        .into_bytes();
    match rng.below(10) {
        0 => body.extend_from_slice(&[0xff, 0xfe, b'=', 0x80]),
        1 => body = vec![b'a'; 16 * 1024 + 1 + rng.below(4096)],
        2 => body = text(rng, 8).into_bytes(),
        _ => {}
    }
    body
}

/// An admin JSON body that the admin API must refuse: malformed JSON,
/// wrong types, unknown fields, invalid names, or too large.
fn admin_body(rng: &mut Rng) -> Vec<u8> {
    let name = rng.pick(&[
        "", "Alice", "a/b", "team", "public", "..", "root\n", "ä", "x y",
    ]);
    let json = match rng.below(12) {
        0 => return text(rng, 6).into_bytes(),
        1 => return b"{\"name\": \"x\", ".to_vec(),
        2 => return vec![b'['; 2000 + rng.below(2000)],
        3 => return vec![b' '; 64 * 1024 + 1],
        4 => return vec![0xff, 0xfe, 0x00, b'{'],
        5 => serde_json::json!({"name": 12, "password": true}),
        6 => serde_json::json!({"name": name, "password": "long-enough-password"}),
        7 => serde_json::json!({"kind": "deploy", "owner": name, "name": "x"}),
        8 => {
            serde_json::json!({"kind": rng.pick(&["root", "", "DEPLOY"]), "owner": "alice", "name": "x"})
        }
        9 => {
            serde_json::json!({"name": "valid-name", "password": "long-enough-password", "surprise": 1})
        }
        10 => serde_json::json!({"account": name, "groups": "not-a-list", "scopes": [1, 2]}),
        _ => serde_json::json!({"token": text(rng, 2), "unknown": {"deep": [null]}}),
    };
    json.to_string().into_bytes()
}

/// The next request of the stream.
pub fn request(rng: &mut Rng, admin_secret: &str) -> Request {
    let mut headers: Vec<(String, String)> = Vec::new();
    if rng.chance(8) {
        headers.push(("Authorization".into(), authorization(rng)));
    }
    if rng.chance(10) {
        headers.push((
            "X-Scopegate-Junk".into(),
            rng.pick(&["é", "🦀", "a\u{202e}b", "\u{feff}", "  spaced  "])
                .to_string(),
        ));
    }
    let is_admin = rng.chance(25);
    let method = if rng.chance(70) {
        if is_admin {
            rng.pick(&["GET", "POST", "PATCH", "DELETE"]).to_string()
        } else {
            rng.pick(&["GET", "GET", "POST"]).to_string()
        }
    } else {
        rng.pick(METHODS).to_string()
    };
    let (target, body) = if is_admin {
        let path = match rng.below(8) {
            0 => "/admin/users".to_string(),
            1 => "/admin/tokens".to_string(),
            2 => format!("/admin/users/{}", raw_safe(&text(rng, 2))),
            3 => format!("/admin/tokens/{}", raw_safe(&text(rng, 2))),
            4 => format!("/admin/refresh-tokens/{}", raw_safe(&text(rng, 1))),
            5 => "/admin/refresh-tokens/revoke".to_string(),
            6 => "/admin/explain".to_string(),
            _ => format!("/admin/{}", raw_safe(&text(rng, 3))),
        };
        let path = if rng.chance(20) {
            format!("{path}?{}", query(rng))
        } else {
            path
        };
        // With the right secret most of the time, so bodies reach the parser.
        if rng.chance(70) {
            headers.retain(|(name, _)| name != "Authorization");
            let bearer = if rng.chance(90) {
                format!("Bearer {admin_secret}")
            } else {
                format!("Bearer {}", raw_safe(&text(rng, 2)))
            };
            headers.push(("Authorization".into(), bearer));
        }
        let body =
            (method != "GET" && method != "HEAD" && method != "DELETE").then(|| admin_body(rng));
        if body.is_some() && rng.chance(85) {
            headers.push((
                "Content-Type".into(),
                rng.pick(&[
                    "application/json",
                    "application/json",
                    "text/plain",
                    "application/json; charset=latin1",
                ])
                .to_string(),
            ));
        }
        (path, body)
    } else {
        let route = rng.pick(ROUTES);
        let target = if rng.chance(85) {
            format!("{route}?{}", query(rng))
        } else {
            route.to_string()
        };
        let body = (method == "POST" || method == "PUT" || rng.chance(3)).then(|| form(rng));
        if body.is_some() && rng.chance(80) {
            headers.push((
                "Content-Type".into(),
                rng.pick(&[
                    "application/x-www-form-urlencoded",
                    "application/json",
                    "multipart/form-data",
                ])
                .to_string(),
            ));
        }
        (target, body)
    };
    // HEAD and GET with a body are odd enough; keep them, but never a body on
    // a method that HTTP clients cannot frame.
    let is_chunked = body.is_some() && rng.chance(30);
    Request {
        method,
        target,
        headers,
        body,
        is_chunked,
    }
}
