#!/usr/bin/env bash
# What a looping plugin costs the routes that do not use it: the latency of
# a route without plugins, alone, then while CONNS connections call
# another route back to back: a healthy plugin (the load itself), a plugin
# that loops until its 50 ms CPU budget stops it with the plugin breaker
# off (as before the breaker), and the same with the breaker at its
# defaults. One gateway serves every row (benches/configs/noisy.toml).
# Writes benches/results/noisy.md.
#
#   bash benches/noisy.sh    # N=300 CONNS=64 WORKERS=1 ROUNDS=3 by default
#
# The row with the breaker off takes most of the time: each quiet request
# waits for up to a second there. The gateway starts fresh, so the first
# round's breaker-on row includes the first wave of looping calls, which
# all run to their budget before the breaker opens.
#
# Rows run interleaved, ROUNDS times; the table shows each column's median.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

N="${N:-300}"
CONNS="${CONNS:-64}"
ROUNDS="${ROUNDS:-3}"
OUT="$ROOT/benches/results/noisy.md"

prepare
start_upstream
start_gateway "$ROOT/benches/configs/noisy.toml"

ROWS=(alone healthy unguarded guarded)
declare -A LABEL=(
    [alone]="no other traffic"
    [healthy]="$CONNS connections on a route with a no-op plugin"
    [unguarded]="$CONNS connections on a looping plugin, breaker off"
    [guarded]="$CONNS connections on a looping plugin, breaker on (defaults)"
)
declare -A NOISE=([alone]="/healthy 0" [healthy]="/healthy $CONNS" [unguarded]="/loop-unguarded $CONNS" [guarded]="/loop $CONNS")
declare -A P50 P99 MAX SENT FAILED

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for round in $(seq 1 "$ROUNDS"); do
    for row in "${ROWS[@]}"; do
        read -r noise_path conns <<<"${NOISE[$row]}"
        read -r p50 p99 max sent failed < <("$BIN/bench-client" noisy "$GATEWAY_ADDR" "$N" /quiet/x "$noise_path" "$conns")
        log "round $round, $row: p50 $p50 µs, p99 $p99 µs, max $max µs; noise $sent requests, $failed not 2xx"
        P50[$row]+="$p50 " P99[$row]+="$p99 " MAX[$row]+="$max " SENT[$row]+="$sent " FAILED[$row]+="$failed "
        # Let quarantines and queues from this row end before the next.
        sleep 6
    done
done
stop_servers

{
    echo "# Noisy neighbour: a looping plugin and a route without plugins"
    echo
    echo "\`bash benches/noisy.sh\` (N=$N requests on the quiet route per row, $CONNS noisy connections, $WORKERS gateway worker, median of $ROUNDS interleaved rounds)."
    echo
    echo "$MACHINE"
    echo
    echo "| while the gateway serves… | quiet p50 | quiet p99 | quiet max | p99 vs alone | p99 vs healthy load | noisy requests | of them not 2xx |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    base=$(median ${P99[alone]}) busy=$(median ${P99[healthy]})
    for row in "${ROWS[@]}"; do
        p99=$(median ${P99[$row]})
        echo "| ${LABEL[$row]} | $(median ${P50[$row]}) µs | $p99 µs | $(median ${MAX[$row]}) µs | $(ratio "$p99" "$base") | $(ratio "$p99" "$busy") | $(median ${SENT[$row]}) | $(median ${FAILED[$row]}) |"
    done
    echo
    echo "Every round: p99 in µs per row — $(for row in "${ROWS[@]}"; do printf '%s: %s; ' "$row" "${P99[$row]% }"; done)"
} >"$OUT"
cat "$OUT"
