#!/usr/bin/env bash
# Runs the CLI's fuzz target (the WWW-Authenticate challenge parser) for SECONDS seconds
# (default 30); fails on any crash. Installs cargo-fuzz if missing. Works on stable Rust:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags, and no sanitizer is used (those need
# a nightly std).
set -euo pipefail

seconds="${1:-30}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
target=challenge_parser
corpus="corpus/$target"
mkdir -p "$corpus"
# Seed the corpus with what registries really send, so the fuzzer starts from valid shapes.
printf 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"' >"$corpus/seed-hub"
printf 'Bearer realm="http://127.0.0.1:3000/token",service="registry.test",scope="repository:team/app:pull",error="insufficient_scope"' >"$corpus/seed-scope"
printf 'Basic realm="Registry Realm"\nNegotiate abc+/==, Newauth realm=apps, type=1, title="Login to \\"apps\\""' >"$corpus/seed-several"
echo "fuzzing $target for ${seconds}s"
cargo fuzz run --sanitizer none "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
