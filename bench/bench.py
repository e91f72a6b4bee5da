#!/usr/bin/env python3
"""Helpers for bench/run.sh: seed the store, read results, write BENCHMARKS.md.

    bench.py seed DIR USERS      write the store seeds and credentials into DIR
    bench.py guest-latency LOG   median and p99 of the component's latency_us
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
TARGET_RATIO = 1.5
TARGET_RPS = 1500
TARGET_POLICY_NS = 20_000
TARGET_SIZE = int(1.5 * MIB)


def basic(user, password):
    raw = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def record(**fields):
    return json.dumps({"v": 1, **fields}, separators=(",", ":"))


def write_args(path, pairs):
    """`--key-value K=V` pairs for scopegate-host, NUL-separated for mapfile."""
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


def guest_latency(log_path):
    """The component logs one JSON line per request with its own latency_us
    (from reading the request to the response, instantiation excluded)."""
    values = []
    with open(log_path, errors="replace") as log:
        for line in log:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry.get("latency_us"), int):
                values.append(entry["latency_us"])
    values.sort()
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": values[len(values) // 2],
        "p99": values[min(len(values) - 1, int(len(values) * 0.99))],
    }


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


def scenario_table(directory, scenarios):
    rows = [
        "| scenario | p50, 1 conn | p99, 1 conn | requests/s, 8 conn | p50, 8 conn "
        "| p99, 8 conn | errors | store writes / request | linear memory / request: typical, largest |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    figures = {}
    for name, label in scenarios:
        one = read_wrk(os.path.join(directory, f"{name}.c1.wrk"))
        eight = read_wrk(os.path.join(directory, f"{name}.c8.wrk"))
        stats = [read_json(os.path.join(directory, f"{name}.{mode}.stats.json"))
                 for mode in ("c1", "c8")]
        stats = [s for s in stats if s]
        peak = max((s["peak_linear_memory_bytes"] for s in stats), default=None)
        # The last request of the 1-connection run: one like all the others.
        typical = stats[0].get("last_linear_memory_bytes") if stats else None
        served = sum(s["requests"] for s in stats)
        sets = sum(s["kv"]["sets"] for s in stats)
        writes = f"{sets / served:.2f}" if served else "–"
        reused = sum(r.get("reused_credentials", 0) for r in (one, eight) if r)
        errs = sum(errors(r) for r in (one, eight) if r)
        note = f" ({reused} credentials reused!)" if reused else ""
        try:
            expect = open(os.path.join(directory, f"{name}.expect")).read().strip()
        except OSError:
            expect = "200"
        if expect != "200":
            # wrk counts every status >= 400 as an error.
            errs -= sum(r["errors"]["status"] for r in (one, eight) if r)
            note += f" (status {expect} expected, not counted as errors)"
        figures[name] = {"c1": one, "c8": eight, "peak": peak, "typical": typical}
        rows.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                label + note,
                fmt_us(one["latency_us"]["p50"]) if one else "–",
                fmt_us(one["latency_us"]["p99"]) if one else "–",
                f"{rps(eight):,.0f}" if eight else "–",
                fmt_us(eight["latency_us"]["p50"]) if eight else "–",
                fmt_us(eight["latency_us"]["p99"]) if eight else "–",
                errs,
                writes,
                f"{typical / MIB:.2f} MiB, {peak / MIB:.2f} MiB" if peak and typical else "–",
            )
        )
    return rows, figures


def floor_figures(directory):
    """Medians over the repeated /sign and /sign-jwt-simple requests."""
    out = {}
    for name in ("sign", "sign-jwt-simple"):
        runs = []
        try:
            with open(os.path.join(directory, f"floor-{name}.jsonl")) as f:
                runs = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError):
            pass
        if runs:
            out[name] = {
                key: statistics.median(run[key] for run in runs)
                for key in ("key_load_ns", "first_ns", "warm_ns")
            }
            out[name]["n"] = runs[0]["n"]
            out[name]["runs"] = len(runs)
            out[name]["verified"] = all(run["verified"] for run in runs)
    return out


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


def render(directory, out_path):
    machine = read_json(os.path.join(directory, "machine.json"), {})
    sizes = read_json(os.path.join(directory, "sizes.json"), {})
    guest = read_json(os.path.join(directory, "guest.json"), {})

    scenarios = [
        ("anonymous", "anonymous public pull (`GET /token`, 1 scope)"),
        ("api-token", "API-token login, 2 scopes (`GET /token`, Basic `sgd_…`)"),
        ("refresh", "refresh token (`POST /token`, grant_type=refresh_token)"),
        ("password-cached", "password login, repeated (verified-password marker)"),
        ("password-argon2", "password login, full argon2 (a new user each request)"),
    ]
    breakdown = [
        ("nowhere", "`GET /nowhere` (404: config read, no key, no crypto)"),
        ("jwks", "`GET /.well-known/jwks.json` (key parse, no signature)"),
        ("healthz", "`GET /healthz` (key parse + pair check: one scalar multiplication)"),
        ("anonymous", "`GET /token` anonymous (one signature)"),
        ("api-token", "`GET /token` API token, 2 scopes"),
    ]
    floor_scenarios = [("empty", "floor component `GET /empty` (instantiation floor)")]

    token_rows, token = scenario_table(directory, scenarios)
    route_rows, routes = scenario_table(directory, breakdown[:3])
    floor_rows, floor_wrk = scenario_table(directory, floor_scenarios)
    signs = floor_figures(directory)
    policy = criterion_figures(directory)

    empty_p50 = (floor_wrk["empty"]["c1"] or {}).get("latency_us", {}).get("p50")
    ours = signs.get("sign", {})
    warm_us = ours["warm_ns"] / 1000 if ours else None
    floor_us = empty_p50 + warm_us if empty_p50 is not None and warm_us else None
    api = token["api-token"]
    api_p50 = api["c1"]["latency_us"]["p50"] if api["c1"] else None
    api_rps = rps(api["c8"]) if api["c8"] else None
    ratio = api_p50 / floor_us if api_p50 and floor_us else None
    size = sizes.get("scopegate")
    policy_10k = policy.get("evaluate/rules/10000")
    argon2 = token["password-argon2"]["c1"]
    cached = token["password-cached"]["c1"]

    lines = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add(f"Written by `bench/run.sh {machine.get('duration', '?')}` on {machine.get('date', '?')}; "
        "run it again to refresh (do not edit by hand). Loads target 127.0.0.1 only.")
    add("")
    add("## Machine")
    add("")
    add(f"- CPU: {machine.get('cpu', '?')}, {machine.get('nproc', '?')} logical CPUs")
    add(f"- Memory: {machine.get('memory', '?')}")
    add(f"- Kernel: {machine.get('kernel', '?')}; rustc {machine.get('rustc', '?')}")
    add(f"- Load average at start: {machine.get('load_start', '?')}; at end: "
        f"{machine.get('load_end', '?')}. Other work on the machine (builds, tests) takes CPU "
        "from the host and wrk and disturbs every figure below, throughput most.")
    add("- Host: `scopegate-host` (tests/host: wasmtime 48, pooling allocator, one fresh "
        "instance per request as Spin does), built with the `bench-host` profile. wrk runs on "
        "the same cores as the host.")
    add(f"- Each scenario: a fresh host; wrk for {machine.get('duration', '?')} s with 1 "
        "connection (`-t1 -c1`, latency) and again, on another fresh host, with 8 connections "
        "(`-t2 -c8`, throughput). Latencies are wrk's, per request, over keep-alive "
        "connections.")
    add("")
    add("## Token requests through the host")
    add("")
    lines.extend(token_rows)
    add("")
    add("Store writes per request come from the host's key-value counters (the API-token "
        "scenario writes `last_used` at most once per resolution; the full-argon2 scenario "
        "writes one verified-password marker per login). Linear memory per request comes from "
        "a resource limiter on each request's store: \"typical\" is the last request of the "
        "1-connection run, \"largest\" the most any request of the scenario held, including "
        "the check request run before wrk (for the repeated password login, that is the first "
        "login, which pays argon2).")
    add("")
    add("## Floor")
    add("")
    lines.extend(floor_rows)
    add("")
    add("| floor figure | value |")
    add("| --- | ---: |")
    add(f"| instantiation floor: `GET /empty` p50, 1 connection | {fmt_us(empty_p50)} |")
    if ours:
        add(f"| one ES256 signature in wasm, warm: p256 0.13 RFC 6979, scopegate's primitive "
            f"(mean of {ours['n'] - 1}, median of {ours['runs']} instances) | "
            f"{fmt_ns(ours['warm_ns'])} |")
        add(f"| … its first signature in a fresh instance | {fmt_ns(ours['first_ns'])} |")
        add(f"| … PKCS#8 key load (no curve arithmetic) | {fmt_ns(ours['key_load_ns'])} |")
    jwt = signs.get("sign-jwt-simple")
    if jwt:
        add(f"| jwt-simple 0.15 `ES256KeyPair::sign`, warm (p256 0.14 with base-point tables; "
            f"mean of {jwt['n'] - 1}) | {fmt_ns(jwt['warm_ns'])} |")
        add(f"| … its first signature in a fresh instance | {fmt_ns(jwt['first_ns'])} |")
        add(f"| … `ES256KeyPair::from_pem` (derives the public key) | "
            f"{fmt_ns(jwt['key_load_ns'])} |")
        add(f"| … cold total for one token in a fresh instance (load + first) | "
            f"{fmt_ns(jwt['key_load_ns'] + jwt['first_ns'])} |")
    add(f"| **floor = instantiation + one warm signature (ours)** | **{fmt_us(floor_us)}** |")
    add(f"| **API-token token p50 / floor** | **{ratio:.2f} x** |" if ratio else
        "| API-token token p50 / floor | – |")
    add("")
    if ours and not ours["verified"] or jwt and not jwt["verified"]:
        add("**Warning: a floor signature did not verify; the floor figures are suspect.**")
        add("")
    add("## Where the time goes")
    add("")
    add("Routes of the scopegate component doing progressively more work, at 1 connection; "
        "\"inside\" is the component's own `latency_us` log field (from reading the request to "
        "building the response: instantiation, WASI setup and HTTP excluded), from a shorter "
        "run with logging on.")
    add("")
    add("| route | p50 through the host | p50 inside the component | outside (instantiation, host, HTTP) |")
    add("| --- | ---: | ---: | ---: |")
    for name, label in breakdown:
        result = (routes.get(name) or token.get(name) or {}).get("c1")
        wall = result["latency_us"]["p50"] if result else None
        inside = guest.get(name, {}).get("p50")
        outside = wall - inside if wall is not None and inside is not None else None
        add(f"| {label} | {fmt_us(wall)} | {fmt_us(inside)} | {fmt_us(outside)} |")
    empty = floor_wrk["empty"]["c1"]
    add(f"| floor component `GET /empty` | {fmt_us(empty_p50)} | – | – |" if empty else "")
    add("")
    add("Throughput and memory of these routes:")
    add("")
    lines.extend(route_rows)
    add("")
    add("## Policy evaluation and scope parsing (native, criterion)")
    add("")
    add("`cargo bench -p scopegate-policy` (crates/policy/benches/evaluate.rs; one request of "
        "two scopes), median:")
    add("")
    add("| benchmark | median |")
    add("| --- | ---: |")
    for full_id, ns in policy.items():
        add(f"| `{full_id}` | {fmt_ns(ns)} |")
    if not policy:
        add("| (no criterion results found) | – |")
    add("")
    add("## Component size")
    add("")
    add(f"- `scopegate.wasm` (release): {fmt_bytes(size)}; target 1.5 MiB "
        f"({TARGET_SIZE:,} B).")
    add(f"- floor component (`bench/floor`, with jwt-simple): {fmt_bytes(sizes.get('floor'))}.")
    add("")
    add("## Targets")
    add("")
    add("| target | figure | |")
    add("| --- | --- | --- |")
    if ratio:
        add(f"| API-token token request median at most {TARGET_RATIO} x the floor | "
            f"{ratio:.2f} x ({fmt_us(api_p50)} / {fmt_us(floor_us)}) | {met(ratio <= TARGET_RATIO)} |")
    if api_rps:
        add(f"| at least {TARGET_RPS:,} API-token token requests/s through the host | "
            f"{api_rps:,.0f} /s at 8 connections | {met(api_rps >= TARGET_RPS)} |")
    if argon2 and cached:
        a, c = argon2["latency_us"]["p50"], cached["latency_us"]["p50"]
        add(f"| a repeated password login does not pay argon2 again | repeated {fmt_us(c)} vs "
            f"first {fmt_us(a)} (p50, 1 connection) | {met(c * 5 < a)} |")
    if policy_10k is not None:
        add(f"| policy evaluation, one request, 10,000 rules, under 20 µs natively | "
            f"{fmt_ns(policy_10k)} | {met(policy_10k < TARGET_POLICY_NS)} |")
    if size:
        add(f"| component under 1.5 MiB | {size / MIB:.2f} MiB | {met(size < TARGET_SIZE)} |")
    add("")
    with open(out_path, "w") as out:
        out.write("\n".join(lines))


def main(argv):
    if len(argv) == 4 and argv[1] == "seed":
        seed(argv[2], int(argv[3]))
    elif len(argv) == 3 and argv[1] == "guest-latency":
        print(json.dumps(guest_latency(argv[2])))
    elif len(argv) == 4 and argv[1] == "render":
        render(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
