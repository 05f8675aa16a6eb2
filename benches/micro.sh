#!/usr/bin/env bash
# Runs the criterion micro benchmarks (through Gateway::handle, no sockets)
# and writes their medians, with ratios to each group's baseline from the
# same run, to benches/results/micro.md.
#
#   bash benches/micro.sh           # MEASURE=3 seconds per benchmark by default
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MEASURE="${MEASURE:-3}"
cd "$ROOT"
if [[ "${SKIP_RUN:-}" != 1 ]]; then
    cargo bench -p wasmgate-benches --bench pipeline --bench plugins --bench router --bench body -- \
        --warm-up-time 1 --measurement-time "$MEASURE"
fi
python3 - "$ROOT" <<'PY'
import json, os, subprocess, sys, datetime
root = sys.argv[1]
crit = os.path.join(root, "target/criterion")

def median(group, bench):
    path = os.path.join(crit, group, bench.replace("/", "_"), "new/estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] / 1000.0  # ns -> µs

def fmt(us):
    return f"{us:.2f} µs" if us < 1000 else f"{us / 1000:.2f} ms"

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
out = ["# Micro benchmarks", "",
       "Written by `bash benches/micro.sh` from criterion's medians (`target/criterion`); every ratio is",
       "against a baseline of the same group, measured in the same run. Through `Gateway::handle`, no sockets",
       "(except the in-process loopback upstream where a route needs one), current-thread tokio runtime.", "",
       f"- machine: {os.cpu_count()} CPUs, {cpu}; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", ""]

out += ["## Pipeline length (`pipeline`): n no-op plugins in front of a plugin that answers", "",
        "| no-op plugins | time per request | added over 0 | per no-op plugin |", "| ---: | ---: | ---: | ---: |"]
base = median("pipeline", "0-noop-plugins")
for n in [0, 1, 2, 4, 8]:
    t = median("pipeline", f"{n}-noop-plugins")
    out.append(f"| {n} | {fmt(t)} | {fmt(t - base) if n else '—'} | {fmt((t - base) / n) if n else '—'} |")

out += ["", "## Each real plugin (`plugins`), typical request (10 headers)", "",
        "| case | time per request | added over baseline | ratio |", "| --- | ---: | ---: | ---: |"]
rows = [("respond fixture alone (baseline)", "0-baseline-respond-only", "0-baseline-respond-only"),
        ("jwt-auth, HS256, token verified before (cached)", "jwt-auth-hs256", "0-baseline-respond-only"),
        ("jwt-auth, HS256, verified every time (`cache_size = 0`)", "jwt-auth-hs256-uncached", "0-baseline-respond-only"),
        ("rate-limit, limit never reached", "rate-limit-high-limit", "0-baseline-respond-only"),
        ("transform, headers only (request + response `remove`)", "transform-headers", "0-baseline-respond-only"),
        ("transform, JSON request body op (110 B body)", "transform-json-request-body", "0-baseline-respond-only"),
        ("jwt-auth → rate-limit → transform (the load test's full pipeline)", "full-jwt-rate-limit-transform", "0-baseline-respond-only"),
        ("plain proxy, one upstream call (baseline)", "0-baseline-proxy-one-call", "0-baseline-proxy-one-call"),
        ("aggregate, three upstream calls", "aggregate-three-calls", "0-baseline-proxy-one-call")]
for label, bench, b in rows:
    t, tb = median("plugins", bench), median("plugins", b)
    out.append(f"| {label} | {fmt(t)} | {fmt(t - tb) if bench != b else '—'} | {t / tb:.2f} |")

out += ["", "## Router lookup alone (`router`): 1,000 routes vs 10", "",
        "| lookup | 10 routes | 1,000 routes | ratio |", "| --- | ---: | ---: | ---: |"]
for kind in ["exact", "param", "prefix", "miss"]:
    a, b = median("router", f"10-routes/{kind}") * 1000, median("router", f"1000-routes/{kind}") * 1000
    out.append(f"| {kind} | {a:.0f} ns | {b:.0f} ns | {b / a:.2f} |")

out += ["", "## Response body JSON transform (`body`): upstream on loopback answers the body", "",
        "| body | without transform | with transform | added | ratio | transform throughput |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |"]
for label, n in [("1KB", 1 << 10), ("100KB", 100 << 10), ("1MB", 1 << 20)]:
    a, b = median("body", f"{label}/no-transform"), median("body", f"{label}/transform")
    out.append(f"| {label} | {fmt(a)} | {fmt(b)} | {fmt(b - a)} | {b / a:.2f} | {n / (b - a):.0f} MB/s |")

path = os.path.join(root, "benches/results/micro.md")
open(path, "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
