#!/usr/bin/env bash
# Scaling curves, each against a baseline from the same run:
#   - latency and throughput vs pipeline length (0, 1, 2, 4, 8 no-op plugins)
#   - latency and throughput vs response body size, with and without a JSON transform
#   - memory at idle and with 1,000 idle keep-alive connections (demo config)
#   - time from start to ready with 10 plugins, cold and warm artifact cache
# Writes benches/results/scaling.md. Takes ~3 minutes after the build.
#
#   bash benches/scaling.sh         # DURATION=5 CONNS=64 LAT_DURATION=3 WORKERS=1 by default
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DURATION="${DURATION:-5}"
CONNS="${CONNS:-64}"
LAT_DURATION="${LAT_DURATION:-3}"
HOLD="${HOLD:-1000}"
OUT="$ROOT/benches/results/scaling.md"

prepare

# run NAME URL: CONNS-connection and 1-connection runs; sets R_* values.
run() {
    local name=$1 url=$2
    wrk_run "$WORK/$name-warmup.txt" "$CONNS" 1 "$url"
    wrk_run "$WORK/$name.txt" "$CONNS" "$DURATION" "$url"
    wrk_run "$WORK/$name-1c.txt" 1 "$LAT_DURATION" "$url"
    R_RPS=$(wrk_rps "$WORK/$name.txt")
    R_P50=$(wrk_lat_us "$WORK/$name.txt" 50%)
    R_P99=$(wrk_lat_us "$WORK/$name.txt" 99%)
    R_P50_1=$(wrk_lat_us "$WORK/$name-1c.txt" 50%)
    R_ERR=$(($(wrk_errors "$WORK/$name.txt") + $(wrk_errors "$WORK/$name-1c.txt")))
    log "$name: $R_RPS req/s, p50 $R_P50 µs, p99 $R_P99 µs, 1 conn p50 $R_P50_1 µs, errors $R_ERR"
}

start_upstream
start_gateway "$ROOT/benches/configs/scaling.toml"

PIPE_ROWS=()
for n in 0 1 2 4 8; do
    run "p$n" "http://$GATEWAY_ADDR/p$n/users/42"
    if [[ $n == 0 ]]; then
        BASE_RPS=$R_RPS BASE_P50_1=$R_P50_1
    fi
    per=$(awk -v a="$R_P50_1" -v b="$BASE_P50_1" -v n="$n" 'BEGIN { if (n > 0) printf "%.1f µs", (a - b) / n; else print "—" }')
    PIPE_ROWS+=("| $n | $R_RPS | $(ratio "$R_RPS" "$BASE_RPS") | $R_P50 µs | $R_P99 µs | $R_P50_1 µs | $((R_P50_1 - BASE_P50_1)) µs | $per | $R_ERR |")
done

BODY_ROWS=()
for size in 1024 102400 1048576; do
    run "plain-$size" "http://$GATEWAY_ADDR/plain/bytes/$size"
    p_rps=$R_RPS p_p50=$R_P50 p_p50_1=$R_P50_1 p_err=$R_ERR
    run "tx-$size" "http://$GATEWAY_ADDR/tx/bytes/$size"
    label=$(awk -v s="$size" 'BEGIN { if (s >= 1048576) print s / 1048576 " MB"; else print s / 1024 " KB" }')
    BODY_ROWS+=("| $label | $p_rps | $R_RPS | $(ratio "$R_RPS" "$p_rps") | $p_p50 µs | $R_P50 µs | $p_p50_1 µs | $R_P50_1 µs | $((R_P50_1 - p_p50_1)) µs | $((p_err + R_ERR)) |")
done
LOAD_PEAK=$(peak_mb)
stop_servers
wait_free "$GATEWAY_ADDR"

# Memory with the demo config: idle, then holding HOLD keep-alive connections.
sed -e "s#\.\./target#$ROOT/target#g" -e 's#127.0.0.1:8080#127.0.0.1:9300#' -e 's#127.0.0.1:9901#127.0.0.1:9301#' \
    "$ROOT/configs/demo.toml" >"$WORK/demo.toml"
start_gateway "$WORK/demo.toml"
sleep 2
IDLE_RSS=$(mem_mb VmRSS)
"$BIN/bench-client" hold "$GATEWAY_ADDR" "$HOLD" 8 /none >"$WORK/hold.txt" &
HOLDER=$!
PIDS+=("$HOLDER")
for _ in $(seq 1 600); do
    grep -q holding "$WORK/hold.txt" 2>/dev/null && break
    sleep 0.1
done
sleep 1
HELD=$(ss -Htn state established "( sport = :${GATEWAY_ADDR##*:} )" | wc -l)
HELD_RSS=$(mem_mb VmRSS)
wait "$HOLDER" || true
stop_servers

log "start to ready"
STARTUP="$("$BIN/bench-client" startup "$BIN/wasmgate" 5)"

{
    echo "# Scaling curves"
    echo
    echo "Written by \`bash benches/scaling.sh\`; each table's baseline is measured in the same run."
    echo "wasmgate runs with \`TOKIO_WORKER_THREADS=$WORKERS\` against \`bench-upstream\` on loopback;"
    echo "\`wrk -t1 -c$CONNS -d${DURATION}s --latency\`, then \`wrk -t1 -c1 -d${LAT_DURATION}s\`. Config: \`benches/configs/scaling.toml\`."
    echo
    echo "$MACHINE"
    echo
    echo "## Pipeline length (no-op plugins in front of the upstream)"
    echo
    echo "| no-op plugins | req/s | vs 0 | p50 | p99 | p50 @1 conn | added p50 @1 conn | per plugin | errors |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${PIPE_ROWS[@]}"
    echo
    echo "## Response body size (JSON transform with response body operations vs the same route without)"
    echo
    echo "| body | req/s plain | req/s transform | transform / plain | p50 plain | p50 transform | p50 @1 conn plain | p50 @1 conn transform | added p50 @1 conn | errors |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${BODY_ROWS[@]}"
    echo
    echo "Errors are wrk's non-2xx answers and socket errors of both runs. With 1 MB bodies they are its"
    echo "2 s timeouts (64 connections queue behind transforms of tens of milliseconds each) and 500s"
    echo "from transforms that ran past the plugin's 50 ms time limit, as a limit should answer."
    echo
    echo "Peak RSS of the gateway over both tables (1 MB bodies included): $LOAD_PEAK MB."
    echo
    echo "## Memory (configs/demo.toml)"
    echo
    echo "| state | RSS |"
    echo "| --- | ---: |"
    echo "| idle, 2 s after start | $IDLE_RSS MB |"
    echo "| holding $HELD idle keep-alive connections (one request each) | $HELD_RSS MB |"
    echo
    echo "Per connection: $(awk -v a="$HELD_RSS" -v b="$IDLE_RSS" -v n="$HELD" 'BEGIN { if (n > 0) printf "%.1f KB", (a - b) * 1024 / n; else print "—" }')."
    echo
    echo "## Start to ready (\`wasmgate run\`, 10 plugin components, polled until a request answers)"
    echo
    echo "$STARTUP"
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
