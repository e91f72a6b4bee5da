#!/usr/bin/env bash
# Runs scopegate's benchmarks and writes BENCHMARKS.md at the repository root.
#
#   bench/run.sh [SECONDS]     SECONDS per wrk run (default 10)
#
# Builds the component, the floor component (bench/floor) and the test host
# (bench-host profile), then for each scenario starts a fresh host on a free
# 127.0.0.1 port and drives it with wrk: once with 1 connection (latency),
# once with 8 (throughput). Also measures the signing floor inside wasm, runs
# the native policy benches (criterion), and the component's size.
#
# The whole list runs ROUNDS times (default 3), one round after the other,
# and the report takes each figure's median over the rounds: on a shared
# machine the CPU slows down for seconds at a time, which one run cannot
# tell from the code being slow.
#
# Everything it starts is stopped when it ends. KEEP_RESULTS=1 keeps the raw
# results directory (printed at the end).
set -euo pipefail

DURATION=${1:-10}
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
ARGON2_USERS=${ARGON2_USERS:-3000}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH="$ROOT/bench"
RESULTS=$(mktemp -d "${TMPDIR:-/tmp}/scopegate-bench.XXXXXX")
touch "$RESULTS/started"
HOST_PID=""
PROBE_PID=""
PROBER_PID=""

stop_host() {
    if [[ -n $HOST_PID ]]; then
        kill "$HOST_PID" 2>/dev/null || true
        wait "$HOST_PID" 2>/dev/null || true
        HOST_PID=""
    fi
}
cleanup() {
    stop_prober
    stop_host
    HOST_PID=$PROBE_PID stop_host
    if [[ -n ${KEEP_RESULTS:-} ]]; then
        echo "raw results kept in $RESULTS" >&2
    else
        rm -rf "$RESULTS"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

for tool in wrk curl python3 cargo; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done

# ---- builds -----------------------------------------------------------------

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
echo "$TARGET_DIR" >"$RESULTS/target-dir"

# Separate cargo commands, so the floor's dependencies do not change the
# features the component is built with.
log "building the component, the floor component and the host"
cargo build --quiet --target wasm32-wasip2 --release -p scopegate
cargo build --quiet --target wasm32-wasip2 --release -p scopegate-bench-floor
cargo build --quiet --profile bench-host -p scopegate-testhost --bin scopegate-host
WASM="$TARGET_DIR/wasm32-wasip2/release/scopegate.wasm"
FLOOR_WASM="$TARGET_DIR/wasm32-wasip2/release/scopegate_bench_floor.wasm"
HOST="$TARGET_DIR/bench-host/scopegate-host"
printf '{"scopegate": %d, "floor": %d}\n' "$(stat -c %s "$WASM")" "$(stat -c %s "$FLOOR_WASM")" \
    >"$RESULTS/sizes.json"

# ---- the machine, as measuring starts --------------------------------------

python3 - "$RESULTS/machine.json" "$DURATION" "$ROUNDS" <<'EOF'
import json, os, platform, subprocess, sys, datetime
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
memory = "unknown"
for line in open("/proc/meminfo"):
    if line.startswith("MemTotal:"):
        memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "duration": int(sys.argv[2]),
    "rounds": int(sys.argv[3]),
    "cpu": cpu,
    "nproc": os.cpu_count(),
    "memory": memory,
    "kernel": platform.release(),
    "rustc": rustc.removeprefix("rustc "),
    "load_start": " ".join(open("/proc/loadavg").read().split()[:3]),
}, open(sys.argv[1], "w"))
EOF
log "load average as measuring starts: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 "$BENCH/bench.py" seed "$RESULTS" "$ARGON2_USERS"
# shellcheck source=/dev/null
source "$RESULTS/credentials.sh"
mapfile -d '' SEED_BASE <"$RESULTS/seed-base.args"
mapfile -d '' SEED_USERS <"$RESULTS/seed-users.args"

# ---- hosts ------------------------------------------------------------------

# start_host NAME WASM LOGGING SEED_ARRAY_NAME: serve WASM on a free port,
# statistics in $RESULTS/NAME.stats.json; sets URL. LOGGING=quiet drops the
# component's output, LOGGING=log keeps it in $RESULTS/NAME.log.
start_host() {
    local name=$1 wasm=$2 logging=$3
    local -n seeds=$4
    local quiet=() out="$RESULTS/$name.out"
    [[ $logging == quiet ]] && quiet=(--quiet)
    : >"$out"
    "$HOST" --wasm "$wasm" --listen 127.0.0.1:0 \
        --runtime-config-file "$ROOT/dev/runtime-config.toml" \
        --stats-file "$RESULTS/$name.stats.json" "${quiet[@]}" "${seeds[@]}" \
        >"$out" 2>"$RESULTS/$name.log" &
    HOST_PID=$!
    local waited=0
    until URL=$(sed -n 's|^Serving \(http://[0-9.:]*\)/$|\1|p' "$out") && [[ -n $URL ]]; do
        if ! kill -0 "$HOST_PID" 2>/dev/null || ((waited > 1200)); then
            log "host for $name did not start:"; cat "$RESULTS/$name.log" >&2; exit 1
        fi
        sleep 0.1; waited=$((waited + 1))
    done
}

# check WHAT EXPECTED CURL_ARGS...: one request must answer EXPECTED (and
# seeds any cache the scenario relies on).
check() {
    local what=$1 expected=$2; shift 2
    local status
    status=$(curl -s -o "$RESULTS/check.body" -w '%{http_code}' "$@")
    if [[ $status != "$expected" ]]; then
        log "$what: expected $expected, got $status: $(head -c 300 "$RESULTS/check.body")"; exit 1
    fi
}

# probe FILE: the floor's warm signature time right now (20 signatures in a
# fresh instance of the otherwise idle probe host, about 20 ms), appended to
# FILE. This machine's CPUs change speed for seconds at a time; probes
# before, during (every second) and after a run say how fast they were.
probe() {
    curl -sf "$PROBE_URL/sign?n=20" >>"$1" || true
}
stop_prober() {
    if [[ -n $PROBER_PID ]]; then
        kill "$PROBER_PID" 2>/dev/null || true
        wait "$PROBER_PID" 2>/dev/null || true
        PROBER_PID=""
    fi
}

# cpu_snapshot: busy and total jiffies of the machine (all CPUs; busy counts
# steal, time the hypervisor gave to others), and the host process's.
cpu_snapshot() {
    awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat
    awk '{print $14+$15}' "/proc/$HOST_PID/stat"
}

# run_wrk OUT WRK_ARGS...: wrk with bench/wrk.lua against $URL, its output
# in OUT.wrk and CPU accounting in OUT.cpu (machine and host jiffies before
# and after, wrk's own user and system seconds, jiffies per second).
run_wrk() {
    local out=$1; shift
    local before after wrk_cpu
    probe "$out.probe"
    { while sleep 1; do probe "$out.probe"; done; } &
    PROBER_PID=$!
    before=$(cpu_snapshot | tr '\n' ' ')
    wrk_cpu=$( { TIMEFORMAT='%U %S'; time wrk "$@" -s "$BENCH/wrk.lua" "$URL" >"$out.wrk"; } 2>&1 )
    after=$(cpu_snapshot | tr '\n' ' ')
    stop_prober
    probe "$out.probe"
    echo "$before $after $wrk_cpu $(getconf CLK_TCK)" >"$out.cpu"
}

# [EXPECT=STATUS] scenario NAME WASM SEEDS METHOD PATH [AUTH] [BODY] [AUTH_FILE]
# Two wrk runs of this round, each on a fresh host: 1 connection, then 8.
scenario() {
    local name=$1 wasm=$2 seeds=$3 method=$4 path=$5 auth=${6:-} body=${7:-} auth_file=${8:-}
    local expect=${EXPECT:-200} mode threads connections run
    echo "$expect" >"$RESULTS/$name.expect"
    for mode in c1 c8; do
        if [[ $mode == c1 ]]; then threads=1 connections=1; else threads=2 connections=8; fi
        run="$name.$mode.r$ROUND"
        start_host "$run" "$wasm" quiet "$seeds"
        local curl_args=(-X "$method" "$URL$path")
        [[ -n $auth ]] && curl_args+=(-H "Authorization: $auth")
        [[ -n $body ]] && curl_args+=(--data "$body")
        check "$name" "$expect" "${curl_args[@]}"
        log "round $ROUND, $name: wrk -t$threads -c$connections -d${DURATION}s"
        BENCH_METHOD=$method BENCH_PATH=$path BENCH_AUTH=$auth BENCH_BODY=$body \
            BENCH_AUTH_FILE=$auth_file BENCH_THREADS=$threads \
            run_wrk "$RESULTS/$run" -t"$threads" -c"$connections" -d"${DURATION}s" --timeout 10s
        log "  $(grep '^BENCH_RESULT' "$RESULTS/$run.wrk" | cut -c14-)"
        sleep 0.3 # the host rewrites its statistics file every 100 ms
        stop_host
    done
}

# guest NAME METHOD PATH [AUTH] [BODY]: a 1-connection run with the
# component's log kept, for the latency it measures itself (latency_us)
# beside wrk's for the same requests.
guest() {
    local name=$1 method=$2 path=$3 auth=${4:-} body=${5:-}
    local run="$name.guest.r$ROUND"
    start_host "$run" "$WASM" log SEED_BASE
    log "round $ROUND, $name: component's own latency, wrk -t1 -c1 -d${GUEST_DURATION}s with logging"
    BENCH_METHOD=$method BENCH_PATH=$path BENCH_AUTH=$auth BENCH_BODY=$body \
        run_wrk "$RESULTS/$run" -t1 -c1 -d"${GUEST_DURATION}s"
    stop_host
    python3 "$BENCH/bench.py" guest-latency "$RESULTS/$run.log" >"$RESULTS/$run.json"
}

PULL_PUBLIC='/token?service=registry.local&scope=repository:public/app:pull'
PULL_TEAM='/token?service=registry.local&scope=repository:team/app:pull'
TWO_SCOPES='/token?service=registry.local&scope=repository:team/app:pull,push&scope=repository:public/base:pull'

GUEST_DURATION=$((DURATION < 5 ? DURATION : 5))

# The probe host: the floor component, idle but for the probes.
start_host probe "$FLOOR_WASM" quiet SEED_BASE
PROBE_PID=$HOST_PID PROBE_URL=$URL HOST_PID=""

for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    # ---- floor ----------------------------------------------------------------
    scenario empty "$FLOOR_WASM" SEED_BASE GET /empty
    log "round $ROUND, floor: signatures timed inside wasm"
    start_host "floor-sign.r$ROUND" "$FLOOR_WASM" quiet SEED_BASE
    for _ in 1 2; do # each request is a fresh instance
        curl -sf "$URL/sign?n=2000" >>"$RESULTS/floor-sign.jsonl"
        curl -sf "$URL/sign-jwt-simple?n=2000" >>"$RESULTS/floor-sign-jwt-simple.jsonl"
        curl -sf "$URL/scalar-mul?n=1000" >>"$RESULTS/floor-scalar-mul.jsonl"
    done
    stop_host

    # ---- scopegate ------------------------------------------------------------
    scenario anonymous "$WASM" SEED_BASE GET "$PULL_PUBLIC"
    scenario api-token "$WASM" SEED_BASE GET "$TWO_SCOPES" "$API_AUTH"
    scenario refresh "$WASM" SEED_BASE POST /token "" "$REFRESH_BODY"
    # The check request logs alice in, so the run finds her password remembered.
    scenario password-cached "$WASM" SEED_BASE GET "$PULL_TEAM" "$PASSWORD_AUTH"
    # Every request is a user's first login (the check request is alice's).
    scenario password-argon2 "$WASM" SEED_USERS GET "$PULL_TEAM" "$PASSWORD_AUTH" "" \
        "$RESULTS/users.auth"

    # Routes doing less work, to see where the time goes.
    EXPECT=404 scenario nowhere "$WASM" SEED_BASE GET /nowhere
    scenario jwks "$WASM" SEED_BASE GET /.well-known/jwks.json
    scenario healthz "$WASM" SEED_BASE GET /healthz

    guest nowhere GET /nowhere
    guest jwks GET /.well-known/jwks.json
    guest healthz GET /healthz
    guest anonymous GET "$PULL_PUBLIC"
    guest api-token GET "$TWO_SCOPES" "$API_AUTH"
    guest refresh POST /token "" "$REFRESH_BODY"
    guest password-cached GET "$PULL_TEAM" "$PASSWORD_AUTH"
done

# ---- native policy benches --------------------------------------------------

log "policy benches (criterion)"
cargo bench --quiet -p scopegate-policy --bench evaluate -- \
    --warm-up-time 1 --measurement-time 3 >"$RESULTS/criterion.txt" 2>&1 ||
    { log "cargo bench failed:"; tail -20 "$RESULTS/criterion.txt" >&2; exit 1; }

# ---- report -----------------------------------------------------------------

python3 -c 'import json, sys
path = sys.argv[1]
machine = json.load(open(path))
machine["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
json.dump(machine, open(path, "w"))' "$RESULTS/machine.json"
python3 "$BENCH/bench.py" render "$RESULTS" "$ROOT/BENCHMARKS.md"
log "wrote $ROOT/BENCHMARKS.md"
