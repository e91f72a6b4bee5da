#!/usr/bin/env bash
# Runs scopegate's benchmarks under real Spin and writes BENCHMARKS.md at the
# repository root.
#
#   bench/run.sh [SECONDS]     SECONDS per wrk run (default 8)
#
# Builds the component (spin.toml's WASI 0.2 build and spin-p3.toml's WASI 0.3
# build) and the floor components (bench/floor, bench/floor-p3), then for each
# scenario starts a fresh `spin up` (fresh state directory, so a fresh SQLite
# store, seeded with --key-value) on a free 127.0.0.1 port and drives it with
# wrk: 1 connection (latency) and 8 connections (throughput), each over
# kept-alive connections and with `Connection: close`. The API-token scenario
# also runs against a Redis store (redis-server on a free port), and the
# API-token and JWKS scenarios also with the WASI 0.3 build. The OIDC
# scenario runs a component built with bench/oidc-policy (its issuer's keys
# seeded into the store's cache; openssl makes the key and token). Then the
# signing floor inside wasm, the native policy benches (criterion) and the
# component's size. One run, about 12 minutes with the defaults on 2 cores.
#
# The API-token scenario also signs with EdDSA and RS256 (signing_alg); every
# scenario's component log gives the time spent inside the component.
#
# SPIN (default: spin on PATH) picks the Spin binary. Everything it
# starts is stopped, by PID, when it ends. KEEP_RESULTS=1 keeps the raw
# results directory (printed at the end).
set -euo pipefail

DURATION=${1:-8}
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
ARGON2_USERS=${ARGON2_USERS:-1500}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH="$ROOT/bench"
SPIN=${SPIN:-$(command -v spin || true)}
RESULTS=$(mktemp -d "${TMPDIR:-/tmp}/scopegate-bench.XXXXXX")
touch "$RESULTS/started"
SPIN_PID=""
REDIS_PID=""

stop_spin() {
    if [[ -n $SPIN_PID ]]; then
        kill "$SPIN_PID" 2>/dev/null || true
        wait "$SPIN_PID" 2>/dev/null || true
        SPIN_PID=""
    fi
}
cleanup() {
    stop_spin
    if [[ -n $REDIS_PID ]]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    if [[ -n ${KEEP_RESULTS:-} ]]; then
        echo "raw results kept in $RESULTS" >&2
    else
        rm -rf "$RESULTS"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

for tool in wrk curl python3 cargo redis-server openssl; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done
[[ -n $SPIN && -x $SPIN ]] || { echo "bench: no Spin: put spin on PATH or set SPIN" >&2; exit 2; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- builds -----------------------------------------------------------------

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
echo "$TARGET_DIR" >"$RESULTS/target-dir"

# Separate cargo commands, so the floor's dependencies do not change the
# features the component is built with.
log "building the component (WASI 0.2 and 0.3 builds) and the floor component"
# The shipped WASI 0.2 build, exactly as spin.toml builds it (wasm32-wasip1,
# then the Wizer snapshot).
"$SPIN" build -f "$ROOT/spin.toml" >"$RESULTS/spin-build.log" 2>&1 ||
    { log "spin build failed:"; tail -20 "$RESULTS/spin-build.log" >&2; exit 1; }
cargo build --quiet --target wasm32-wasip2 --profile release-p3 -p scopegate --target-dir "$TARGET_DIR/p3" \
    --no-default-features --features spin-p3
cargo build --quiet --target wasm32-wasip2 --release -p scopegate-bench-floor
# The WASI 0.3 floor, with the WASI 0.3 build's dependencies.
cargo build --quiet --target wasm32-wasip2 --release -p scopegate-bench-floor-p3 --target-dir "$TARGET_DIR/p3"
FLOOR_P3_WASM="$TARGET_DIR/p3/wasm32-wasip2/release/scopegate_bench_floor_p3.wasm"
# The OIDC rows' component: the same code, with bench/oidc-policy's issuer.
SCOPEGATE_POLICY_DIR="$BENCH/oidc-policy" cargo build --quiet --target wasm32-wasip1 --release \
    -p scopegate --features snapshot --target-dir "$TARGET_DIR/bench-oidc"
WASM_OIDC="$TARGET_DIR/bench-oidc/wasm32-wasip1/release/scopegate.snapshot.wasm"
cargo run --quiet --release -p scopegate-snapshot -- \
    "$TARGET_DIR/bench-oidc/wasm32-wasip1/release/scopegate.wasm" "$WASM_OIDC"
WASM="$TARGET_DIR/wasm32-wasip1/release/scopegate.snapshot.wasm"
WASM_P3="$TARGET_DIR/p3/wasm32-wasip2/release-p3/scopegate.wasm"
FLOOR_WASM="$TARGET_DIR/wasm32-wasip2/release/scopegate_bench_floor.wasm"
printf '{"scopegate": %d, "scopegate_p3": %d, "floor": %d}\n' "$(stat -c %s "$WASM")" \
    "$(stat -c %s "$WASM_P3")" "$(stat -c %s "$FLOOR_WASM")" >"$RESULTS/sizes.json"

# The repository's manifests, pointed at the components just built.
sed "s|^source = .*|source = \"$WASM\"|" "$ROOT/spin.toml" >"$RESULTS/p2.toml"
sed "s|^source = .*|source = \"$WASM_P3\"|" "$ROOT/spin-p3.toml" >"$RESULTS/p3.toml"
sed "s|^source = .*|source = \"$WASM_OIDC\"|" "$ROOT/spin.toml" >"$RESULTS/oidc.toml"

# The floor's manifest: one component on every path, nothing to configure.
cat >"$RESULTS/floor.toml" <<EOF
spin_manifest_version = 2
[application]
name = "scopegate-bench-floor"
[[trigger.http]]
route = "/..."
component = "floor"
[component.floor]
source = "$FLOOR_WASM"
EOF

sed -e 's/scopegate-bench-floor/scopegate-bench-floor-p3/' -e "s|^source = .*|source = \"$FLOOR_P3_WASM\"|" \
    "$RESULTS/floor.toml" >"$RESULTS/floor-p3.toml"

# Runtime configuration: the development variables (dev/, public), with
# Spin's default SQLite store, or a Redis store.
cp "$ROOT/dev/runtime-config.toml" "$RESULTS/sqlite.toml"
REDIS_PORT=$(free_port)
cp "$ROOT/dev/runtime-config.toml" "$RESULTS/redis.toml"
printf '\n[key_value_store.default]\ntype = "redis"\nurl = "redis://127.0.0.1:%s"\n' \
    "$REDIS_PORT" >>"$RESULTS/redis.toml"
# The same configuration signing with EdDSA or RS256 (the tests' public keys).
python3 "$BENCH/bench.py" signing-config "$ROOT/dev/runtime-config.toml" EdDSA \
    "$ROOT/tests/keys/ed25519-key.pem" "$ROOT/tests/keys/ed25519-cert.pem" >"$RESULTS/sqlite-eddsa.toml"
python3 "$BENCH/bench.py" signing-config "$ROOT/dev/runtime-config.toml" RS256 \
    "$ROOT/tests/keys/rsa-key.pem" "$ROOT/tests/keys/rsa-cert.pem" >"$RESULTS/sqlite-rs256.toml"

# ---- the machine, as measuring starts --------------------------------------

python3 - "$RESULTS/machine.json" "$DURATION" "$SPIN" <<'EOF'
import json, os, platform, subprocess, sys, datetime
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
run = lambda *args: subprocess.run(args, capture_output=True, text=True).stdout.strip()
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "duration": int(sys.argv[2]),
    "cpu": cpu,
    "nproc": os.cpu_count(),
    "kernel": platform.release(),
    "rustc": run("rustc", "--version").removeprefix("rustc "),
    "spin": run(sys.argv[3], "--version"),
    "load_start": " ".join(open("/proc/loadavg").read().split()[:3]),
}, open(sys.argv[1], "w"))
EOF
log "load average as measuring starts: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 "$BENCH/bench.py" seed "$RESULTS" "$ARGON2_USERS"
python3 "$BENCH/bench.py" oidc "$RESULTS"
cat "$RESULTS/seed-base.args" "$RESULTS/seed-oidc.args" >"$RESULTS/seed-oidc-all.args"
# shellcheck source=/dev/null
source "$RESULTS/credentials.sh"

# ---- Spin -------------------------------------------------------------------

# start_spin NAME MANIFEST RUNTIME_CONFIG SEEDS_FILE HEALTH_PATH: a fresh
# `spin up` on a free port with a fresh state directory; sets URL.
start_spin() {
    local name=$1 manifest=$2 runtime_config=$3 seeds_file=$4 health=$5
    local seeds=() port state
    [[ -n $seeds_file ]] && mapfile -d '' seeds <"$seeds_file"
    port=$(free_port)
    state=$(mktemp -d "$RESULTS/state.XXXXXX")
    STATE=$state
    "$SPIN" up -f "$manifest" --listen "127.0.0.1:$port" --state-dir "$state" \
        --runtime-config-file "$runtime_config" "${seeds[@]}" \
        >"$RESULTS/$name.spin.log" 2>&1 &
    SPIN_PID=$!
    URL="http://127.0.0.1:$port"
    local waited=0
    until curl -s -o /dev/null "$URL$health"; do
        if ! kill -0 "$SPIN_PID" 2>/dev/null || ((waited > 600)); then
            log "spin for $name did not start:"; tail -20 "$RESULTS/$name.spin.log" >&2; exit 1
        fi
        sleep 0.1; waited=$((waited + 1))
    done
}

# check WHAT EXPECTED CURL_ARGS...: one request must answer EXPECTED (and
# seeds any state the scenario relies on).
check() {
    local what=$1 expected=$2; shift 2
    local status
    status=$(curl -s -o "$RESULTS/check.body" -w '%{http_code}' "$@")
    if [[ $status != "$expected" ]]; then
        log "$what: expected $expected, got $status: $(head -c 300 "$RESULTS/check.body")"; exit 1
    fi
}

# [STORE=sqlite|redis] [MODES="..."] scenario NAME MANIFEST SEEDS HEALTH METHOD PATH [AUTH] [BODY] [AUTH_FILE]
# One wrk run per mode (ka1 ka8 close1 close8: keep-alive or
# `Connection: close`, 1 or 8 connections), each on a fresh Spin and store.
scenario() {
    local name=$1 manifest=$2 seeds=$3 health=$4 method=$5 path=$6 auth=${7:-} body=${8:-} auth_file=${9:-}
    local store=${STORE:-sqlite} mode threads connections close run
    for mode in ${MODES:-ka1 ka8 close1 close8}; do
        case $mode in
            ka1) threads=1 connections=1 close="" ;;
            ka8) threads=2 connections=8 close="" ;;
            close1) threads=1 connections=1 close=1 ;;
            close8) threads=2 connections=8 close=1 ;;
        esac
        run="$name.$mode"
        start_spin "$run" "$manifest" "$RESULTS/$store.toml" "$seeds" "$health"
        local curl_args=(-X "$method" "$URL$path")
        [[ -n $auth ]] && curl_args+=(-H "Authorization: $auth")
        [[ -n $body ]] && curl_args+=(--data "$body")
        check "$name" 200 "${curl_args[@]}"
        log "$name ($store): wrk -t$threads -c$connections -d${DURATION}s${close:+ Connection: close}"
        BENCH_METHOD=$method BENCH_PATH=$path BENCH_AUTH=$auth BENCH_BODY=$body \
            BENCH_AUTH_FILE=$auth_file BENCH_THREADS=$threads BENCH_CLOSE=$close \
            wrk -t"$threads" -c"$connections" -d"${DURATION}s" --timeout 10s \
            -s "$BENCH/wrk.lua" "$URL" >"$RESULTS/$run.wrk"
        log "  $(grep '^BENCH_RESULT' "$RESULTS/$run.wrk" | cut -c14-)"
        stop_spin
        # The component's own log lines: latency_us is the time inside it.
        cat "$STATE"/logs/*_stdout.txt >"$RESULTS/$run.component.log" 2>/dev/null || true
    done
}

PULL_PUBLIC='/token?service=registry.local&scope=repository:public/app:pull'
PULL_TEAM='/token?service=registry.local&scope=repository:team/app:pull'
TWO_SCOPES='/token?service=registry.local&scope=repository:team/app:pull,push&scope=repository:public/base:pull'
SEEDS="$RESULTS/seed-base.args"
USERS="$RESULTS/seed-users.args"
SG="$RESULTS/p2.toml"
SG_P3="$RESULTS/p3.toml"

# ---- floor ------------------------------------------------------------------

scenario empty-p2 "$RESULTS/floor.toml" "" /empty GET /empty
MODES="ka1 ka8" scenario token-sized-p2 "$RESULTS/floor.toml" "" /empty GET /token-sized
log "floor: signatures timed inside wasm (one fresh instance per request)"
start_spin floor-sign "$RESULTS/floor.toml" "$RESULTS/sqlite.toml" "" /empty
for _ in 1 2; do
    curl -sf "$URL/sign?n=500" >>"$RESULTS/floor-sign.jsonl"
    curl -sf "$URL/sign-jwt-simple?n=500" >>"$RESULTS/floor-sign-jwt-simple.jsonl"
    curl -sf "$URL/verify-rs256?n=200" >>"$RESULTS/floor-verify-rs256.jsonl"
done
stop_spin

MODES="ka1 ka8" scenario empty-p3 "$RESULTS/floor-p3.toml" "" /empty GET /empty
MODES="ka1 ka8" scenario sign-p3 "$RESULTS/floor-p3.toml" "" /empty GET /sign

# ---- scopegate, SQLite store ------------------------------------------------

scenario anonymous "$SG" "$SEEDS" /healthz GET "$PULL_PUBLIC"
scenario api-token "$SG" "$SEEDS" /healthz GET "$TWO_SCOPES" "$API_AUTH"
# The same request signed with EdDSA and with RS256 (signing_alg).
STORE=sqlite-eddsa MODES="ka1 ka8" scenario api-token-eddsa "$SG" "$SEEDS" /healthz GET "$TWO_SCOPES" "$API_AUTH"
STORE=sqlite-rs256 MODES="ka1 ka8" scenario api-token-rs256 "$SG" "$SEEDS" /healthz GET "$TWO_SCOPES" "$API_AUTH"
scenario refresh "$SG" "$SEEDS" /healthz POST /token "" "$REFRESH_BODY"
# The check request logs alice in, so the run finds her password remembered.
scenario password-cached "$SG" "$SEEDS" /healthz GET "$PULL_TEAM" "$PASSWORD_AUTH"
# Every request is a user's first login (the check request is alice's).
scenario password-argon2 "$SG" "$USERS" /healthz GET "$PULL_TEAM" "$PASSWORD_AUTH" "" \
    "$RESULTS/users.auth"
MODES="ka1 ka8" scenario jwks "$SG" "$SEEDS" /healthz GET /.well-known/jwks.json
# A CI job's ID token (RS256, as GitHub's), its issuer's JWKS already cached
# in the store (seeded as the component caches it), the same two scopes.
OIDC_SCOPES='/token?service=registry.local&scope=repository:acme/app:pull,push&scope=repository:public/base:pull'
scenario oidc "$RESULTS/oidc.toml" "$RESULTS/seed-oidc-all.args" /healthz GET "$OIDC_SCOPES" "$OIDC_AUTH"

# ---- the WASI 0.3 build (spin-p3.toml), SQLite store --------------------------

MODES="ka1 ka8" scenario api-token-p3 "$SG_P3" "$SEEDS" /healthz GET "$TWO_SCOPES" "$API_AUTH"
MODES="ka1 ka8" scenario jwks-p3 "$SG_P3" "$SEEDS" /healthz GET /.well-known/jwks.json

# ---- scopegate, Redis store -------------------------------------------------

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    >"$RESULTS/redis.log" 2>&1 &
REDIS_PID=$!
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
STORE=redis MODES="ka1 ka8" scenario api-token-redis "$SG" "$SEEDS" /healthz GET "$TWO_SCOPES" "$API_AUTH"
STORE=redis MODES="ka1 ka8" scenario api-token-p3-redis "$SG_P3" "$SEEDS" /healthz GET "$TWO_SCOPES" "$API_AUTH"

# ---- native policy benches --------------------------------------------------

log "policy benches (criterion)"
cargo bench --quiet -p scopegate-policy --bench evaluate -- \
    --warm-up-time 1 --measurement-time 3 >"$RESULTS/criterion.txt" 2>&1 ||
    { log "cargo bench failed:"; tail -20 "$RESULTS/criterion.txt" >&2; exit 1; }

# ---- refusal timing (bench/timing.py) ---------------------------------------

log "refusal timing (${TIMING_ROUNDS:-300} interleaved rounds)"
python3 "$BENCH/timing.py" "${TIMING_ROUNDS:-300}" >"$RESULTS/timing.md" ||
    log "refusal timing: medians not within 10% (see the report)"

# ---- report -----------------------------------------------------------------

python3 -c 'import json, sys
path = sys.argv[1]
machine = json.load(open(path))
machine["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
json.dump(machine, open(path, "w"))' "$RESULTS/machine.json"
python3 "$BENCH/bench.py" render "$RESULTS" "$ROOT/BENCHMARKS.md"
if [[ -s $RESULTS/timing.md ]]; then
    { echo; cat "$RESULTS/timing.md"; } >>"$ROOT/BENCHMARKS.md"
fi
log "wrote $ROOT/BENCHMARKS.md"
