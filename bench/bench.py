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


def read_cpu(path):
    """CPU accounting around one wrk run (see run_wrk in run.sh): the host's CPU
    seconds, and the share of the machine used by processes other than the
    host and wrk (other work disturbing the run)."""
    try:
        fields = open(path).read().split()
        busy0, total0, host0, busy1, total1, host1 = map(int, fields[:6])
        wrk_user, wrk_sys = float(fields[6]), float(fields[7])
        tick = int(fields[8])
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    other = (busy1 - busy0) - (host1 - host0) - (wrk_user + wrk_sys) * tick
    return {
        "host_seconds": (host1 - host0) / tick,
        "other_share": max(0.0, other / total) if total > 0 else None,
    }


def read_probe(path):
    """Mean of the probes' warm signature times around one run, in µs."""
    try:
        with open(path) as f:
            runs = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return None
    return statistics.mean(run["warm_ns"] for run in runs) / 1000 if runs else None


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


def rounds_of(directory, run):
    """Round numbers for which `run` (e.g. `api-token.c1`) has a wrk result."""
    found = glob.glob(os.path.join(directory, f"{glob.escape(run)}.r*.wrk"))
    return sorted(int(path.rsplit(".r", 1)[1][:-4]) for path in found)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values, fmt):
    """`median (min–max)` over the rounds, or the only value."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def collect(directory, name):
    """One scenario's figures over all rounds: medians, and the spread of the
    headline ones (p50 at 1 connection, requests/s at 8)."""
    path = lambda run, ext: os.path.join(directory, f"{run}.{ext}")  # noqa: E731
    out = {"rounds": 0, "errors": 0, "reused": 0, "sets": 0, "served": 0,
           "other": [], "peak": None, "typical": None}
    try:
        expect = open(path(name, "expect")).read().strip()
    except OSError:
        expect = "200"
    out["expect"] = expect
    for mode in ("c1", "c8"):
        results, host_ms, probes = [], [], []
        for number in rounds_of(directory, f"{name}.{mode}"):
            run = f"{name}.{mode}.r{number}"
            result = read_wrk(path(run, "wrk"))
            if not result:
                continue
            results.append(result)
            probes.append(read_probe(path(run, "probe")))
            errs = errors(result)
            if expect != "200":
                errs -= result["errors"]["status"]  # wrk counts every status >= 400
            out["errors"] += errs
            out["reused"] += result.get("reused_credentials", 0)
            cpu = read_cpu(path(run, "cpu"))
            if cpu:
                out["other"].append(cpu["other_share"])
                if result["requests"]:
                    host_ms.append(cpu["host_seconds"] * 1000 / result["requests"])
            stats = read_json(path(run, "stats.json"))
            if stats:
                out["served"] += stats["requests"]
                out["sets"] += stats["kv"]["sets"]
                out["peak"] = max(out["peak"] or 0, stats["peak_linear_memory_bytes"])
                if mode == "c1":
                    # The last request of a 1-connection run: one like the others.
                    out["typical"] = stats.get("last_linear_memory_bytes")
        out["rounds"] = max(out["rounds"], len(results))
        out[mode] = {
            "p50s": [r["latency_us"]["p50"] for r in results],
            "p50": median(r["latency_us"]["p50"] for r in results),
            "p99": median(r["latency_us"]["p99"] for r in results),
            "rpss": [rps(r) for r in results],
            "rps": median(rps(r) for r in results),
            "host_ms": median(host_ms),
            "probes": probes,
        }
    return out


def scenario_table(directory, scenarios):
    rows = [
        "| scenario | p50, 1 conn | p99, 1 conn | requests/s, 8 conn | p50, 8 conn "
        "| p99, 8 conn | host CPU / request, 8 conn | signature probe, 1 conn runs "
        "| other load, worst run | errors "
        "| store writes / request | linear memory / request: typical, largest |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    figures = {}
    for name, label in scenarios:
        f = collect(directory, name)
        figures[name] = f
        one, eight = f["c1"], f["c8"]
        note = f" ({f['reused']} credentials reused!)" if f["reused"] else ""
        if f["expect"] != "200":
            note += f" (status {f['expect']} expected, not counted as errors)"
        other = [o for o in f["other"] if o is not None]
        rows.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                label + note,
                spread(one["p50s"], fmt_us),
                fmt_us(one["p99"]),
                spread(eight["rpss"], lambda v: f"{v:,.0f}"),
                fmt_us(eight["p50"]),
                fmt_us(eight["p99"]),
                fmt_us(eight["host_ms"] * 1000) if eight["host_ms"] else "–",
                spread(one["probes"], fmt_us),
                f"{max(other) * 100:.0f} %" if other else "?",
                f["errors"],
                f"{f['sets'] / f['served']:.3f}" if f["served"] else "–",
                (f"{f['typical'] / MIB:.2f} MiB, {f['peak'] / MIB:.2f} MiB"
                 if f["peak"] and f["typical"] else "–"),
            )
        )
    return rows, figures


def guest_figures(directory, name):
    """Median over the rounds of wrk's p50 and the component's own p50, and
    of their difference in each round."""
    walls, insides, outsides = [], [], []
    for number in rounds_of(directory, f"{name}.guest"):
        run = os.path.join(directory, f"{name}.guest.r{number}")
        result = read_wrk(run + ".wrk")
        inside = read_json(run + ".json", {}).get("p50")
        if result and inside is not None:
            walls.append(result["latency_us"]["p50"])
            insides.append(inside)
            outsides.append(result["latency_us"]["p50"] - inside)
    return median(walls), median(insides), median(outsides)


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
            # run.sh asks twice per round, in round order.
            out[name]["by_round"] = {
                number + 1: statistics.median(run["warm_ns"] for run in runs[2 * number:2 * number + 2])
                for number in range(len(runs) // 2)
            }
            out[name]["n"] = runs[0]["n"]
            out[name]["runs"] = len(runs)
            out[name]["verified"] = all(run["verified"] for run in runs)
    try:
        with open(os.path.join(directory, "floor-scalar-mul.jsonl")) as f:
            runs = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        runs = []
    if runs:
        out["scalar-mul"] = {
            key: statistics.median(run[key] for run in runs)
            for key in runs[0] if key.endswith("_ns")
        }
        out["scalar-mul"]["n"] = runs[0]["n"]
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
        ("refresh", "`POST /token` refresh token"),
        ("password-cached", "`GET /token` password, repeated"),
    ]
    floor_scenarios = [("empty", "floor component `GET /empty` (instantiation floor)")]

    token_rows, token = scenario_table(directory, scenarios)
    route_rows, routes = scenario_table(directory, breakdown[:3])
    floor_rows, floor_wrk = scenario_table(directory, floor_scenarios)
    signs = floor_figures(directory)
    policy = criterion_figures(directory)

    empty_p50 = floor_wrk["empty"]["c1"]["p50"]
    ours = signs.get("sign", {})
    warm_us = ours["warm_ns"] / 1000 if ours else None
    floor_us = empty_p50 + warm_us if empty_p50 is not None and warm_us else None
    api = token["api-token"]
    api_p50 = api["c1"]["p50"]
    api_rps = api["c8"]["rps"]
    ratio = api_p50 / floor_us if api_p50 and floor_us else None
    # The ratio of each round on its own (its API-token p50, its empty p50,
    # its floor signatures), to show how far one round can be from another.
    round_ratios = []
    for number in rounds_of(directory, "api-token.c1"):
        api_run = read_wrk(os.path.join(directory, f"api-token.c1.r{number}.wrk"))
        empty_run = read_wrk(os.path.join(directory, f"empty.c1.r{number}.wrk"))
        sign_ns = ours.get("by_round", {}).get(number) if ours else None
        if api_run and empty_run and sign_ns:
            round_ratios.append(api_run["latency_us"]["p50"]
                                / (empty_run["latency_us"]["p50"] + sign_ns / 1000))
    worst_other = max((o for f in list(token.values()) + list(routes.values())
                       + list(floor_wrk.values()) for o in f["other"] if o is not None),
                      default=None)
    size = sizes.get("scopegate")
    policy_10k = policy.get("evaluate/rules/10000")
    argon2_p50 = token["password-argon2"]["c1"]["p50"]
    cached_p50 = token["password-cached"]["c1"]["p50"]
    nproc = machine.get("nproc") or 1

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
    add(f"- Load average (1, 5, 15 min) as measuring began: {machine.get('load_start', '?')}; at the end: "
        f"{machine.get('load_end', '?')}. Other work on the machine (builds, tests) takes CPU "
        "from the host and wrk and disturbs every figure below, throughput most.")
    if worst_other is not None and worst_other > 0.10:
        add(f"- **Disturbed: other processes used up to {worst_other * 100:.0f} % of the "
            "machine during some runs (column \"other load\"); those figures are too slow.**")
    add("- Host: `scopegate-host` (tests/host: wasmtime 48, pooling allocator, one fresh "
        "instance per request as Spin does), built with the `bench-host` profile. wrk runs on "
        "the same cores as the host.")
    add(f"- Each scenario: a fresh host; wrk for {machine.get('duration', '?')} s with 1 "
        "connection (`-t1 -c1`, latency) and again, on another fresh host, with 8 connections "
        "(`-t2 -c8`, throughput). Latencies are wrk's, per request, over keep-alive "
        f"connections. The whole list ran {machine.get('rounds', '?')} times, one round after "
        "the other; each figure is the median over the rounds, with the lowest and highest "
        "in parentheses for the headline ones. This machine's CPUs slow down for seconds at "
        "a time without other load showing (a shared host), so single runs differ by up to "
        "1.5x.")
    add("")
    add("## Token requests through the host")
    add("")
    lines.extend(token_rows)
    add("")
    add("Signature probe: the floor's warm ES256 signature (`/sign?n=20` on a floor host "
        "that is otherwise idle) just before, every second during, and just after each run, "
        "averaged; it shows how fast the CPU was during the run (on an undisturbed machine it "
        "would not change). The probes take about 2 % of one core.")
    add("")
    add("Host CPU per request is the host process's CPU time (guest code, wasmtime, HTTP) "
        "over the 8-connection run divided by its requests; two cores divided by it bound the "
        "throughput. Other load is the share of the machine's CPU time used by processes "
        "other than the host and wrk during each run (including time the hypervisor gave "
        "elsewhere): anything above a few percent disturbed the run.")
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
        add(f"| … its first signature in a fresh instance (table already built by from_pem) | "
            f"{fmt_ns(jwt['first_ns'])} |")
        add(f"| … `ES256KeyPair::from_pem` (derives the public key: builds the table) | "
            f"{fmt_ns(jwt['key_load_ns'])} |")
        add(f"| … cold total for one token in a fresh instance (load + first) | "
            f"{fmt_ns(jwt['key_load_ns'] + jwt['first_ns'])} |")
    mul = signs.get("scalar-mul")
    if mul:
        add(f"| scalar multiplication k·G alone, p256 0.13 (scopegate's; no table; mean of "
            f"{mul['n'] - 1}) | {fmt_ns(mul['p256_013_base_ns'])} |")
        add(f"| … p256 0.14, variable base k·P (its 32-bit field arithmetic, no table) | "
            f"{fmt_ns(mul['p256_014_variable_ns'])} |")
        add(f"| … p256 0.14 k·G with its base-point table, warm | "
            f"{fmt_ns(mul['p256_014_base_table_ns'])} |")
        add(f"| … p256 0.14 first k·G in a fresh instance (builds the table) | "
            f"{fmt_ns(mul['p256_014_first_with_table_build_ns'])} |")
    add(f"| **floor = instantiation + one warm signature (ours)** | **{fmt_us(floor_us)}** |")
    add(f"| **API-token token p50 / floor** (medians over the rounds) | **{ratio:.2f} x** |"
        if ratio else "| API-token token p50 / floor | – |")
    if round_ratios:
        add(f"| … each round on its own | {', '.join(f'{r:.2f} x' for r in round_ratios)} |")
    add("")
    if ours and not ours["verified"] or jwt and not jwt["verified"]:
        add("**Warning: a floor signature did not verify; the floor figures are suspect.**")
        add("")
    add("## Where the time goes")
    add("")
    add("Routes of the scopegate component doing progressively more work, each in one more "
        "1-connection run with the component's log kept: \"inside\" is the log's `latency_us` "
        "(the component's own clock, from entering its handler to building the response), "
        "\"through the host\" wrk's latency for the same requests; the difference is "
        "instantiation, WASI and HTTP plumbing, and writing the log line. Medians over the "
        "rounds.")
    add("")
    add("| route | p50 through the host | p50 inside the component | outside (instantiation, host, HTTP) |")
    add("| --- | ---: | ---: | ---: |")
    for name, label in breakdown:
        wall, inside, outside = guest_figures(directory, name)
        add(f"| {label} | {fmt_us(wall)} | {fmt_us(inside)} | {fmt_us(outside)} |")
    add(f"| floor component `GET /empty` (no log) | {fmt_us(empty_p50)} | – | – |")
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
            f"{ratio:.2f} x ({fmt_us(api_p50)} / {fmt_us(floor_us)}) | "
            f"{met(ratio <= TARGET_RATIO)} |")
    if api_rps:
        host_ms = api["c8"]["host_ms"]
        ceiling = (f"; host CPU {host_ms:.2f} ms per request, so at most "
                   f"{nproc * 1000 / host_ms:,.0f} /s on {nproc} idle cores without wrk"
                   if host_ms else "")
        add(f"| at least {TARGET_RPS:,} API-token token requests/s through the host | "
            f"{api_rps:,.0f} /s at 8 connections{ceiling} | {met(api_rps >= TARGET_RPS)} |")
    if argon2_p50 and cached_p50:
        add(f"| a repeated password login does not pay argon2 again | repeated "
            f"{fmt_us(cached_p50)} vs first {fmt_us(argon2_p50)} (p50, 1 connection) | "
            f"{met(cached_p50 * 5 < argon2_p50)} |")
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
