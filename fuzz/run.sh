#!/usr/bin/env bash
# Runs each fuzz target of the component's core for SECONDS seconds (default 30); fails on
# any crash. Installs cargo-fuzz if missing. Works on stable Rust: RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its -Z flags, and no sanitizer is used (those need a nightly std).
set -euo pipefail

seconds="${1:-30}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
sep=$'\xff'
for target in request records id_token; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    # Seed the corpus with real shapes so the fuzzer starts from valid requests.
    case "$target" in
        request)
            printf '\x00\x00%s%s%sservice=registry.fuzz&scope=repository:team/app:pull,push%s%s%s' \
                "$sep" "/token" "$sep" "$sep" "$sep" "$sep" >"$corpus/seed-anonymous"
            printf '\x00\x00%s%s%sservice=registry.fuzz&scope=repository:team/app:pull%sBasic Y2k6c2dkX2Z1eno=%s%s' \
                "$sep" "/token" "$sep" "$sep" "$sep" "$sep" >"$corpus/seed-token"
            printf '\x02\x00%s%s%s%s%sapplication/x-www-form-urlencoded%sgrant_type=refresh_token&refresh_token=sgr_x&service=registry.fuzz&scope=repository%%3Ateam%%2Fapp%%3Apull' \
                "$sep" "/token" "$sep" "$sep" "$sep" "$sep" >"$corpus/seed-refresh"
            printf '\x02\x00%s%s%s%s%sapplication/x-www-form-urlencoded%sgrant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange&subject_token=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln&subject_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Aid_token&service=registry.fuzz' \
                "$sep" "/token" "$sep" "$sep" "$sep" "$sep" >"$corpus/seed-exchange"
            printf '\x02\x00%s%s%s%sBearer fuzz-admin-secret%sapplication/json%s{"kind":"deploy","owner":"alice","name":"x","scopes":["repository:team/**:pull"]}' \
                "$sep" "/admin/tokens" "$sep" "$sep" "$sep" "$sep" >"$corpus/seed-admin"
            ;;
        records)
            printf '{"v":1,"password":"p","groups":["team"],"disabled":false,"created_at":1}' >"$corpus/seed-user"
            printf '{"v":1,"kind":"deploy","owner":"ci","name":"x","limits":[],"expires_at":null,"created_at":0}' >"$corpus/seed-token"
            ;;
        id_token)
            # A token, NUL, the JWKS the fake issuer serves (also read as a discovery document).
            printf 'eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjkiLCJzdWIiOiJ4IiwiYXVkIjoiciIsImV4cCI6MTgwMDAwMDEwMH0.AAAA\0{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},{"kty":"RSA","kid":"k2","alg":"RS256","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}' >"$corpus/seed-es256"
            printf '{"issuer":"http://127.0.0.1:9","jwks_uri":"http://127.0.0.1:9/keys"}' >"$corpus/seed-discovery"
            ;;
    esac
    echo "fuzzing $target for ${seconds}s"
    cargo fuzz run --sanitizer none "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=8192 -print_final_stats=1
done
