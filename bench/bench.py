#!/usr/bin/env python3
"""Helpers for bench/run.sh: seed the store, read results, write BENCHMARKS.md.

    bench.py seed DIR USERS      write the store seeds and credentials into DIR
    bench.py oidc DIR            an RS256 key (openssl), an ID token signed with it,
                                 and the store seed of its issuer's cached JWKS
    bench.py render DIR OUT      write the report from the results in DIR

Everything here is the standard library only.
"""

import base64
import glob
import hashlib
import json
import os
import statistics
import sys

# A PHC string for "dev-password", with the parameters scopegate hashes with.
DEV_PASSWORD = "dev-password"
DEV_PHC = (
    "$argon2id$v=19$m=19456,t=2,p=1$/6+2yxh6/8oaWedgruGj7w$"
    "qqD8mmsU19xARAHv7UmCvs13J3fpKd9E53XyoFPLQtg"
)
API_TOKEN = "sgd_bench_0f3c9a7d5e2b4c6a8e1f0d2c4b6a8e0f"
REFRESH_TOKEN = "sgr_bench_7e1d3c5b9a0f2e4d6c8b0a1f3e5d7c9b"
SERVICE = "registry.local"
FAR_FUTURE = 4102444800  # 2100-01-01

MIB = 1024 * 1024
# Issue 16's targets (unmodified Spin 4.0.2, keep-alive, SQLite store).
TARGET_API_P50_US = 500
TARGET_API_RPS = 5000
TARGET_ROUTE_P50_US = 2000
TARGET_POLICY_ADDED_NS = 50_000
TARGET_SIZE = int(1.5 * MIB)


def basic(user, password):
    raw = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def record(**fields):
    return json.dumps({"v": 1, **fields}, separators=(",", ":"))


def write_args(path, pairs):
    """`--key-value K=V` pairs for `spin up`, NUL-separated for mapfile."""
    with open(path, "w") as out:
        for key, value in pairs:
            out.write(f"--key-value\0{key}={value}\0")


def seed(directory, users):
    base = [
        ("user/alice", record(password=DEV_PHC, groups=["team"])),
        (
            f"token/{sha256_hex(API_TOKEN)}",
            record(kind="deploy", owner="alice", name="bench", limits=[],
                   expires_at=None, created_at=0),
        ),
        (
            f"refresh/{sha256_hex(REFRESH_TOKEN)}",
            record(account="alice", service=SERVICE, kind="password",
                   expires_at=FAR_FUTURE, created_at=0),
        ),
    ]
    write_args(os.path.join(directory, "seed-base.args"), base)
    # Distinct users with the same password: each first login pays argon2.
    names = [f"bench-user-{i:05d}" for i in range(users)]
    write_args(
        os.path.join(directory, "seed-users.args"),
        base + [(f"user/{name}", record(password=DEV_PHC, groups=["team"])) for name in names],
    )
    with open(os.path.join(directory, "users.auth"), "w") as out:
        for name in names:
            out.write(basic(name, DEV_PASSWORD) + "\n")
    with open(os.path.join(directory, "credentials.sh"), "w") as out:
        out.write(f"API_AUTH='{basic('bench', API_TOKEN)}'\n")
        out.write(f"PASSWORD_AUTH='{basic('alice', DEV_PASSWORD)}'\n")
        out.write(
            "REFRESH_BODY='grant_type=refresh_token&refresh_token="
            f"{REFRESH_TOKEN}&service={SERVICE}&client_id=docker"
            "&scope=repository:team/app:pull'\n"
        )


# The issuer of bench/oidc-policy/bench.toml.
OIDC_ISSUER = "http://127.0.0.1:9/bench"
OIDC_JWKS_URL = "http://127.0.0.1:9/bench/jwks"
OIDC_AUDIENCE = "registry.example.com"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def oidc(directory):
    """A GitHub-shaped RS256 ID token, and the issuer's JWKS as the component
    caches it (fetched now), so a token request costs one store read."""
    import subprocess
    import time

    key = os.path.join(directory, "oidc-key.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True,
                   capture_output=True)
    modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout
    n = bytes.fromhex(modulus.strip().split("=", 1)[1])
    jwk = {"kty": "RSA", "kid": "bench-1", "alg": "RS256", "use": "sig",
           "n": b64url(n), "e": "AQAB"}
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": "bench-1"}
    claims = {
        "iss": OIDC_ISSUER, "aud": OIDC_AUDIENCE,
        "sub": "repo:acme/app:ref:refs/heads/main",
        "repository": "acme/app", "repository_owner": "acme",
        "ref": "refs/heads/main", "ref_type": "branch", "workflow": "build",
        "iat": now, "nbf": now, "exp": now + 6 * 3600,
    }
    signing_input = (b64url(json.dumps(header).encode()) + "."
                     + b64url(json.dumps(claims).encode()))
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                               input=signing_input.encode(), check=True,
                               capture_output=True).stdout
    token = signing_input + "." + b64url(signature)
    cached = record(issuer=OIDC_ISSUER, jwks_url=OIDC_JWKS_URL, fetched_at=now,
                    checked_at=now,
                    keys=[{"kid": "bench-1", "json": json.dumps(jwk)}])
    write_args(os.path.join(directory, "seed-oidc.args"), [("jwks/bench", cached)])
    with open(os.path.join(directory, "credentials.sh"), "a") as out:
        out.write(f"OIDC_AUTH='{basic('oidc', token)}'\n")


# ---- reading results -------------------------------------------------------


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_wrk(path):
    """The BENCH_RESULT line that bench/wrk.lua prints, or None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("BENCH_RESULT "):
                    return json.loads(line[len("BENCH_RESULT "):])
    except (OSError, ValueError):
        pass
    return None


def rps(result):
    return result["requests"] / (result["duration_us"] / 1e6)


def errors(result):
    return sum(result["errors"].values())


def fmt_us(us):
    if us is None:
        return "–"
    if us >= 10_000:
        return f"{us / 1000:.0f} ms"
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.0f} µs"


def fmt_ns(ns):
    if ns is None:
        return "–"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1000:
        return f"{ns / 1000:.1f} µs"
    return f"{ns:.0f} ns"


def fmt_bytes(n):
    if n is None:
        return "–"
    return f"{n:,} B ({n / MIB:.2f} MiB)"


def met(ok):
    return "**met**" if ok else "**not met**"


def criterion_figures(directory):
    """Medians of the criterion benchmarks run by this run (newer than its start)."""
    since = os.path.getmtime(os.path.join(directory, "started"))
    target = open(os.path.join(directory, "target-dir")).read().strip()
    found = {}
    pattern = os.path.join(target, "criterion", "**", "new", "estimates.json")
    for path in glob.glob(pattern, recursive=True):
        if os.path.getmtime(path) < since:
            continue
        meta = read_json(os.path.join(os.path.dirname(path), "benchmark.json"), {})
        estimates = read_json(path, {})
        if "full_id" in meta and "median" in estimates:
            found[meta["full_id"]] = estimates["median"]["point_estimate"]
    return dict(sorted(found.items()))



MODES = [
    ("ka1", "keep-alive, 1 conn"),
    ("ka8", "keep-alive, 8 conns"),
    ("close1", "`Connection: close`, 1 conn"),
    ("close8", "`Connection: close`, 8 conns"),
]

SCENARIOS = [
    ("empty-p2", "floor: empty WASI 0.2 component (bench/floor `/empty`)"),
    ("token-sized-p2", "floor: empty WASI 0.2 component answering a token-sized body (bench/floor `/token-sized`)"),
    ("empty-p3", "floor: empty **WASI 0.3** component (bench/floor-p3 `/empty`)"),
    ("sign-p3", "floor: **WASI 0.3** component, one ES256 JWT per request, key kept in the instance (bench/floor-p3 `/sign`)"),
    ("anonymous", "anonymous public pull (`GET /token`, 1 scope)"),
    ("api-token", "API-token login, 2 scopes (`GET /token`, Basic `sgd_…`)"),
    ("refresh", "refresh token (`POST /token`, grant_type=refresh_token)"),
    ("password-cached", "password login, repeated (verified-password marker hit)"),
    ("password-argon2", "password login, first (full argon2id, m=19 MiB, t=2)"),
    ("jwks", "`GET /.well-known/jwks.json`"),
    ("oidc", "OIDC ID token (RS256, issuer's JWKS cached), 2 scopes (`GET /token`, Basic `oidc:<ID token>`)"),
    ("api-token-eddsa", "API-token login, 2 scopes, `signing_alg = \"EdDSA\"`"),
    ("api-token-rs256", "API-token login, 2 scopes, `signing_alg = \"RS256\"` (2048-bit)"),
    ("api-token-redis", "API-token login, 2 scopes, **Redis store**"),
    ("api-token-p3", "**WASI 0.3 build**: API-token login, 2 scopes"),
    ("jwks-p3", "**WASI 0.3 build**: `GET /.well-known/jwks.json`"),
    ("api-token-p3-redis", "**WASI 0.3 build**: API-token login, 2 scopes, **Redis store**"),
]


def figures(directory, name, mode):
    result = read_wrk(os.path.join(directory, f"{name}.{mode}.wrk"))
    if not result:
        return None
    latency = result["latency_us"]
    return {"p50": latency["p50"], "p99": latency["p99"], "rps": rps(result),
            "errors": errors(result), "reused": result.get("reused_credentials", 0)}


def component_log(directory, name, mode="ka1"):
    """The JSON log lines the component wrote in one run (none if absent)."""
    try:
        with open(os.path.join(directory, f"{name}.{mode}.component.log")) as f:
            lines = [line for line in f if line.startswith("{")]
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return rows


def inside(directory, name, mode="ka1"):
    """Median `latency_us` of the component's own log lines of one run: the
    time from the entry point getting the request to the response."""
    values = [row["latency_us"] for row in component_log(directory, name, mode) if "latency_us" in row]
    return statistics.median(values) if values else None


def stages(directory, name, mode="ka1"):
    """Median of each `stages_us` field of the component's log lines."""
    found = {}
    for row in component_log(directory, name, mode):
        for key, value in row.get("stages_us", {}).items():
            found.setdefault(key, []).append(value)
    return {key: statistics.median(values) for key, values in found.items()}


def signing_config(base, alg, key_path, cert_path):
    """`base` (a runtime config with a static provider) with another signing
    key, certificate and signing_alg: printed on stdout."""
    text = open(base).read()
    key = open(key_path).read().strip()
    cert = open(cert_path).read().strip()
    out = []
    skip = False
    for line in text.splitlines():
        if skip:
            skip = line.strip() != '"""'
            continue
        if line.startswith(("signing_key = ", "signing_cert = ")):
            skip = line.rstrip().endswith('"""')
            continue
        out.append(line)
        if line.strip() == "[variables_provider.values]":
            out.append(f'signing_alg = "{alg}"')
            out.append(f'signing_key = """\n{key}\n"""')
            out.append(f'signing_cert = """\n{cert}\n"""')
    print("\n".join(out))


def floor_sign(directory, name):
    """Median warm signature time inside wasm over the floor's runs, in ns."""
    try:
        with open(os.path.join(directory, name)) as f:
            runs = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return None
    return statistics.median(run["warm_ns"] for run in runs) if runs else None


def render(directory, out_path):
    machine = read_json(os.path.join(directory, "machine.json"), {})
    sizes = read_json(os.path.join(directory, "sizes.json"), {})
    lines = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add("Written by `bench/run.sh` from one run under real Spin (`spin up`, one fresh Spin")
    add("and store per row and mode), driven by wrk on 127.0.0.1. Do not edit by hand.")
    add("")
    add(f"- Date: {machine.get('date', '?')}; {machine.get('spin', '?')}; rustc {machine.get('rustc', '?')}")
    add(f"- Machine: {machine.get('cpu', '?')}, {machine.get('nproc', '?')} CPUs, Linux {machine.get('kernel', '?')};"
        f" load average {machine.get('load_start', '?')} at the start, {machine.get('load_end', '?')} at the end")
    add(f"- {machine.get('duration', '?')} s per wrk run; 1 connection is `wrk -t1 -c1`, 8 is `wrk -t2 -c8`.")
    add("  wrk, Spin and any other work share the same CPUs: compare rows within one run.")
    add("- Store: Spin's default SQLite store unless the row says Redis; variables from a static")
    add("  provider (the development configuration in `dev/`).")
    add("")
    add("## Requests under Spin")
    add("")
    header = "| scenario | " + " | ".join(
        f"{label} p50 / p99 / req/s" for _, label in MODES) + " |"
    add(header)
    add("| --- |" + " ---: |" * len(MODES))
    results = {}
    for name, label in SCENARIOS:
        cells = []
        for mode, _ in MODES:
            f = figures(directory, name, mode)
            results[(name, mode)] = f
            if not f:
                cells.append("–")
                continue
            cell = f"{fmt_us(f['p50'])} / {fmt_us(f['p99'])} / {f['rps']:,.0f}"
            if f["errors"]:
                cell += f" ({f['errors']} errors)"
            cells.append(cell)
        add(f"| {label} | " + " | ".join(cells) + " |")
    add("")
    reused = (results.get(("password-argon2", "ka8")) or {}).get("reused", 0)
    add("Rows without a mark are the WASI 0.2 build (`spin.toml`, spin-sdk 5.2, a fresh")
    add("instance per request); **WASI 0.3 build** rows run `spin-p3.toml` (spin-sdk 6.0,")
    add("instances reused for up to 128 requests).")
    add("")
    add("Full argon2: every request is a distinct seeded user's first login; "
        f"{reused} requests at 8 kept-alive connections reused a user (marker hit).")
    add("")
    add("## Inside the component")
    add("")
    add("Median `latency_us` of the component's log lines (from the entry point getting the")
    add("request to the response being ready) in the 1-connection kept-alive run of each row.")
    add("")
    add("| scenario | inside the component, median |")
    add("| --- | ---: |")
    for name, label in SCENARIOS:
        if name.startswith(("empty", "sign-")):
            continue
        value = inside(directory, name)
        if value is not None:
            add(f"| {label} | {fmt_us(value)} |")
    add("")
    add("### Where a token request's time goes")
    add("")
    add("Medians of the log line's `stages_us` in the same runs; the rest of `latency_us` is")
    add("reading the request, routing, the answer and the log line.")
    add("")
    add("| scenario | config | authenticate | policy | key | sign | refresh | total inside |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, label in SCENARIOS:
        found = stages(directory, name)
        total = inside(directory, name)
        if found and total is not None:
            cells = [fmt_us(found.get(key, 0)) for key in ("config", "authenticate", "policy", "key", "sign", "refresh")]
            add(f"| {label} | " + " | ".join(cells) + f" | {fmt_us(total)} |")
    add("")
    add("## Targets (issue 26: a fresh WASI 0.2 instance per request)")
    add("")
    add("| target | measured | |")
    add("| --- | ---: | --- |")
    api_inside = inside(directory, "api-token")
    if api_inside is not None:
        add(f"| API-token request inside the component <= 400 µs | {fmt_us(api_inside)} | {met(api_inside <= 400)} |")
    floor1 = results.get(("token-sized-p2", "ka1")) or {}
    floor8 = results.get(("token-sized-p2", "ka8")) or {}
    api1 = results.get(("api-token", "ka1")) or {}
    api8_ = results.get(("api-token", "ka8")) or {}
    if api1 and floor1:
        bound = floor1["p50"] + 450
        add(f"| API-token p50, 1 conn <= token-sized floor p50 + 450 µs = {fmt_us(bound)} | {fmt_us(api1['p50'])} | {met(api1['p50'] <= bound)} |")
    if api8_ and floor8:
        ratio = api8_["rps"] / floor8["rps"]
        add(f"| API-token throughput, 8 conns >= 0.40x the token-sized floor's | {api8_['rps']:,.0f} vs {floor8['rps']:,.0f} = {ratio:.2f}x | {met(ratio >= 0.40)} |")
    for other in ("refresh", "password-cached", "anonymous"):
        mine = results.get((other, "ka1")) or {}
        if mine and api1:
            ratio = mine["p50"] / api1["p50"]
            add(f"| {other} p50 within 1.2x of the API-token request's | {fmt_us(mine['p50'])} = {ratio:.2f}x | {met(ratio <= 1.2)} |")
    redis_p3 = results.get(("api-token-p3-redis", "ka8")) or {}
    sign_p3 = results.get(("sign-p3", "ka8")) or {}
    if redis_p3 and sign_p3:
        ratio = redis_p3["rps"] / sign_p3["rps"]
        add(f"| WASI 0.3, Redis store: API-token throughput >= 0.75x the WASI 0.3 sign floor's | {redis_p3['rps']:,.0f} vs {sign_p3['rps']:,.0f} = {ratio:.2f}x | {met(ratio >= 0.75)} |")
    add("")
    add("## Targets (issue 22: signing algorithms)")
    add("")
    add("| target | measured | |")
    add("| --- | ---: | --- |")
    eddsa_inside = inside(directory, "api-token-eddsa")
    if eddsa_inside is not None:
        add(f"| EdDSA API-token request inside the component <= 300 µs | {fmt_us(eddsa_inside)} | {met(eddsa_inside <= 300)} |")
    eddsa = results.get(("api-token-eddsa", "ka1")) or {}
    empty_p2 = results.get(("empty-p2", "ka1")) or {}
    if eddsa and empty_p2:
        bound = empty_p2["p50"] + 350
        add(f"| EdDSA API-token p50 <= empty WASI 0.2 p50 + 350 µs = {fmt_us(bound)} | {fmt_us(eddsa['p50'])} | {met(eddsa['p50'] <= bound)} |")
    rs256_inside = inside(directory, "api-token-rs256")
    if rs256_inside is not None:
        add(f"| RS256 API-token request inside the component (no target) | {fmt_us(rs256_inside)} | – |")
    add("")
    add("## Floor: one ES256 signature inside wasm")
    add("")
    add("| what | warm, per signature |")
    add("| --- | ---: |")
    add(f"| scopegate's primitive (p256 0.13, RFC 6979, no table) | {fmt_ns(floor_sign(directory, 'floor-sign.jsonl'))} |")
    add(f"| jwt-simple ES256 (p256 0.14, base-point table built in the instance) | {fmt_ns(floor_sign(directory, 'floor-sign-jwt-simple.jsonl'))} |")
    add(f"| jwt-simple RS256 check of an ID token from its JWK (2048-bit; what an OIDC request pays) | {fmt_ns(floor_sign(directory, 'floor-verify-rs256.jsonl'))} |")
    add("")
    add("## Targets (issue 16)")
    add("")
    api = results.get(("api-token", "ka1")) or {}
    api8 = results.get(("api-token", "ka8")) or {}
    add("| target | measured | |")
    add("| --- | ---: | --- |")
    if api:
        add(f"| API-token p50, 1 kept-alive connection <= {TARGET_API_P50_US} µs | {fmt_us(api['p50'])} | {met(api['p50'] <= TARGET_API_P50_US)} |")
    if api8:
        add(f"| API-token >= {TARGET_API_RPS:,} tokens/s at 8 kept-alive connections | {api8['rps']:,.0f} | {met(api8['rps'] >= TARGET_API_RPS)} |")
    for build, label in (("p2", "WASI 0.2"), ("p3", "WASI 0.3")):
        slow = [(name, f["p50"]) for (name, mode), f in results.items()
                if f and mode == "ka1" and "redis" not in name
                and name not in ("password-argon2", "empty-p2")
                and (name.endswith("-p3") == (build == "p3"))]
        if slow:
            worst = max(slow, key=lambda item: item[1])
            add(f"| {label}: every route p50 <= 2 ms at 1 kept-alive connection, SQLite (argon2 aside) | worst {worst[0]}: {fmt_us(worst[1])} | {met(worst[1] <= TARGET_ROUTE_P50_US)} |")
    sign8 = results.get(("sign-p3", "ka8")) or {}
    for name, label in (("api-token", "WASI 0.2"), ("api-token-p3", "WASI 0.3")):
        mine = results.get((name, "ka8")) or {}
        if mine and sign8:
            ratio = mine["rps"] / sign8["rps"]
            add(f"| {label}: API-token throughput >= 0.75x the WASI 0.3 sign floor's, 8 kept-alive connections | {mine['rps']:,.0f} vs {sign8['rps']:,.0f} = {ratio:.2f}x | {met(ratio >= 0.75)} |")
    empty = results.get(("empty-p2", "ka1")) or {}
    table_sign_ns = floor_sign(directory, "floor-sign-jwt-simple.jsonl")
    if api and empty and table_sign_ns:
        bound = 1.5 * (empty["p50"] + table_sign_ns / 1000)
        add(f"| WASI 0.2: API-token p50 <= 1.5 x (empty WASI 0.2 p50 + one warm table-based signature) = {fmt_us(bound)} | {fmt_us(api['p50'])} | {met(api['p50'] <= bound)} |")
    oidc1 = results.get(("oidc", "ka1")) or {}
    if api and oidc1:
        ratio = oidc1["p50"] / api["p50"]
        add(f"| (issue 11) OIDC token request, JWKS cached, p50 within 1.5x of the API-token request | {fmt_us(oidc1['p50'])} = {ratio:.2f}x | {met(ratio <= 1.5)} |")
    for key, label in (("scopegate", "WASI 0.2"), ("scopegate_p3", "WASI 0.3")):
        size = sizes.get(key)
        add(f"| {label} component under 1.5 MiB | {fmt_bytes(size)} | {met(size is not None and size < TARGET_SIZE)} |")
    add("")
    policy = criterion_figures(directory)
    add("## Policy (native, criterion, median)")
    add("")
    add("| benchmark | time |")
    add("| --- | ---: |")
    for key, ns in policy.items():
        add(f"| `{key}` | {fmt_ns(ns)} |")
    if not policy:
        add("| (no criterion results found) | – |")
    add("")
    add("`cold_evaluate` is what a fresh WASI 0.2 instance pays for the policy on a request: read")
    add("the compiled form in place, decode the rules the two requested names can match, evaluate")
    add(f"(target: at most {fmt_ns(TARGET_POLICY_ADDED_NS)} for 10,000 rules). `from_compiled` decodes the")
    add("whole policy (the CLI and build.rs do); the component no longer does.")
    add("")
    with open(out_path, "w") as out:
        out.write("\n".join(lines))


def main(argv):
    if len(argv) == 4 and argv[1] == "seed":
        seed(argv[2], int(argv[3]))
    elif len(argv) == 3 and argv[1] == "oidc":
        oidc(argv[2])
    elif len(argv) == 6 and argv[1] == "signing-config":
        signing_config(argv[2], argv[3], argv[4], argv[5])
    elif len(argv) == 4 and argv[1] == "render":
        render(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
