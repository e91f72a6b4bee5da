#!/usr/bin/env python3
"""Timing of refusals under real Spin: do 401s tell anything apart?

    bench/timing.py [ROUNDS]        (default 300)

Starts the built component (`spin build` first) under real `spin up` on a
free loopback port with its state in a temporary directory, then sends, in
each round and in a random order, one request of each kind:

- unknown user:      Basic `nobody-N:password`
- wrong password:    Basic `alice:wrong-password` (alice exists)
- locked account:    Basic `lockie:any-password` (lockie is locked)
- revoked API token: Basic `ci:sgd_...` (created, then revoked)

and reports each kind's median, p10 and p90 client-side latency (one fresh
connection per request), and whether every median is within 10% of the
others. Users imported with bcrypt hashes (htpasswd's cost 5, GitLab's 10,
the accepted maximum 12) are reported beside them, outside the 10% check:
their refusals cost bcrypt, the README's price of the transition. Prints a Markdown section for BENCHMARKS.md. Standard library only.
Finds Spin as $SPIN or `spin` on PATH.
"""

import base64
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_SECRET = "dev-admin-secret"  # dev/runtime-config.toml's admin_token_sha256
SERVICE = "registry.local"
# The quick start's stored hash of "dev-password" (m=19456,t=2,p=1).
HASH = "$argon2id$v=19$m=19456,t=2,p=1$/6+2yxh6/8oaWedgruGj7w$qqD8mmsU19xARAHv7UmCvs13J3fpKd9E53XyoFPLQtg"
# `htpasswd -nbB -C COST x dev-password` (Apache 2.4).
BCRYPT = {
    5: "$2y$05$uUuELa1dJP0apYIlHXZ4hubP.DXf6JWILtRuQSa9ZkbydfM9qsVvy",
    10: "$2y$10$G6S/EICwk65EtQVp/U9AbuHwHFR1YOv0iBY2QO9yIA/e29qFQcDr.",
    12: "$2y$12$c8UJU9KJX1QZrAAEyt5oxudAKZOH95O9HfMPElln5FQ6VxryPbz2a",
}


def spin_binary():
    if os.environ.get("SPIN"):
        return os.environ["SPIN"]
    on_path = shutil.which("spin")
    if on_path:
        return on_path
    sys.exit("timing.py: Spin not found: set SPIN or put spin on PATH")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port, method, path, headers=None, body=None):
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data, time.perf_counter() - started


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    spin = spin_binary()
    subprocess.run([spin, "build", "-f", str(ROOT / "spin.toml")], check=True,
                   stdout=subprocess.DEVNULL)
    state = tempfile.mkdtemp(prefix="scopegate-timing.")
    port = free_port()
    now = int(time.time())
    user = lambda groups: json.dumps({"v": 1, "password": HASH, "groups": groups})
    lock = json.dumps({"v": 1, "failures": 10, "since": now, "locked_until": now + 86400})
    command = [
        spin, "up", "-f", str(ROOT / "spin.toml"),
        "--runtime-config-file", str(ROOT / "dev" / "runtime-config.toml"),
        "--state-dir", state, "--listen", f"127.0.0.1:{port}",
        "--key-value", f"user/alice={user(['team'])}",
        "--key-value", f"user/lockie={user(['team'])}",
        "--key-value", f"lockout/lockie={lock}",
    ]
    for cost, hashed in BCRYPT.items():
        record = json.dumps({"v": 1, "password": hashed, "groups": ["team"]})
        command += ["--key-value", f"user/bcrypt{cost}={record}"]
    env = dict(os.environ)
    # Count failures as production does, without ever locking alice.
    env["SPIN_VARIABLE_LOCKOUT_THRESHOLD"] = "1000000"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 60
        while True:
            try:
                request(port, "GET", "/healthz")
                break
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    sys.exit("timing.py: spin up did not start")
                time.sleep(0.05)
        admin = {"Authorization": f"Bearer {ADMIN_SECRET}", "Content-Type": "application/json"}
        status, body, _ = request(port, "POST", "/admin/tokens", admin,
                                  json.dumps({"kind": "deploy", "owner": "alice", "name": "t"}))
        assert status == 201, body
        created = json.loads(body)
        status, body, _ = request(port, "DELETE", f"/admin/tokens/{created['id']}", admin)
        assert status == 200, body

        path = f"/token?service={SERVICE}&scope=repository:team/app:pull"
        kinds = {
            "unknown user": lambda n: basic(f"nobody-{n}", "some-password"),
            "wrong password": lambda n: basic("alice", "wrong-password"),
            "locked account": lambda n: basic("lockie", "dev-password"),
            "revoked API token": lambda n: basic("ci", created["secret"]),
        }
        compared = list(kinds)
        for cost in BCRYPT:
            kinds[f"wrong password, bcrypt cost {cost}"] = (
                lambda n, cost=cost: basic(f"bcrypt{cost}", "wrong-password"))
        samples = {kind: [] for kind in kinds}
        rng = random.Random(7)
        for _ in range(10):  # warm-up, not counted
            for make in kinds.values():
                request(port, "GET", path, make(0))
        for n in range(rounds):
            order = list(kinds)
            rng.shuffle(order)
            for kind in order:
                status, body, seconds = request(port, "GET", path, kinds[kind](n))
                assert status == 401, (kind, status, body)
                samples[kind].append(seconds * 1000)
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(state, ignore_errors=True)

    medians = {kind: statistics.median(values) for kind, values in samples.items()}
    checked = [medians[kind] for kind in compared]
    spread = max(checked) / min(checked) - 1
    print(f"## Refusal timing ({rounds} interleaved rounds, `bench/timing.py {rounds}`)\n")
    print("Client-side latency of one 401 of each kind per round, in a random order, one fresh")
    print("connection per request, SQLite store. Every refusal spends one argon2 run and one")
    print("counted failure (README, Security).\n")
    print("| 401 for | median ms | p10 ms | p90 ms |")
    print("| --- | ---: | ---: | ---: |")
    for kind, values in samples.items():
        deciles = statistics.quantiles(values, n=10)
        print(f"| {kind} | {medians[kind]:.2f} | {deciles[0]:.2f} | {deciles[-1]:.2f} |")
    verdict = "within" if spread <= 0.10 else "NOT within"
    print(f"\nLargest median / smallest median - 1 (the first four rows) = {spread * 100:.1f}%: {verdict} 10%.")
    print("The bcrypt rows are users imported from htpasswd or GitLab before their first login;")
    print("costs below 10 are padded with an unknown user's work (README, Migrating).")
    return 0 if spread <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
