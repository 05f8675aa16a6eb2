#!/usr/bin/env bash
# Load benchmark: the bench upstream directly, nginx as a plain proxy_pass,
# and wasmgate (empty pipeline, three no-op plugins, full 4-stage pipeline
# with its rate-limit state in memory and in Redis, aggregation), each under
# the same wrk load, in one run. Writes
# benches/results/load.md.
#
#   bash benches/load.sh    # DURATION=10 CONNS=64 LAT_DURATION=5 WORKERS=1 ROUNDS=3 by default
#
# Shared machines are noisy: every scenario runs ROUNDS times, the rounds
# interleaved (all scenarios once, then again), and the table shows the
# median of each column (peak RSS: the largest), with every round's req/s.
# Installs wrk, nginx and redis-server from Debian packages when missing (apt-get, needs
# root), builds the optimised binaries and plugins, then takes ~2 minutes a
# round.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DURATION="${DURATION:-10}"
CONNS="${CONNS:-64}"
LAT_DURATION="${LAT_DURATION:-5}"
WARMUP="${WARMUP:-2}"
ROUNDS="${ROUNDS:-3}"
OUT="$ROOT/benches/results/load.md"

prepare

# Per round, keyed "name round"; the table reads the medians.
declare -A R_RPS R_P50 R_P99 R_P50_1 R_P99_1 R_RSS R_CPU R_ERR
declare -A RPS P50 P99 P50_1 P99_1 RSS CPU ERR RUNS
SCENARIOS=(direct nginx empty noop full full-redis aggregate)
declare -A LABEL=(
    [direct]="upstream directly (no proxy)"
    [nginx]="nginx proxy_pass, $WORKERS worker"
    [empty]="wasmgate, empty pipeline"
    [noop]="wasmgate, three no-op plugins"
    [full]="wasmgate, jwt-auth → rate-limit → transform → upstream"
    [full-redis]="wasmgate, the same with rate-limit state in Redis"
    [aggregate]="wasmgate, aggregate over 3 upstream calls"
)

# measure NAME URL ROUND: warm-up, CONNS-connection run, 1-connection run,
# peak RSS.
measure() {
    local name=$1 url=$2 k="$1 $3" before after
    log "$name (round $3): $url"
    wrk_run "$WORK/$name-warmup.txt" "$CONNS" "$WARMUP" "$url" -H "Authorization: Bearer $TOKEN"
    before=$(cpu_ticks)
    wrk_run "$WORK/$name.txt" "$CONNS" "$DURATION" "$url" -H "Authorization: Bearer $TOKEN"
    after=$(cpu_ticks)
    wrk_run "$WORK/$name-1c.txt" 1 "$LAT_DURATION" "$url" -H "Authorization: Bearer $TOKEN"
    R_RPS[$k]=$(wrk_rps "$WORK/$name.txt")
    R_P50[$k]=$(wrk_lat_us "$WORK/$name.txt" 50%)
    R_P99[$k]=$(wrk_lat_us "$WORK/$name.txt" 99%)
    R_P50_1[$k]=$(wrk_lat_us "$WORK/$name-1c.txt" 50%)
    R_P99_1[$k]=$(wrk_lat_us "$WORK/$name-1c.txt" 99%)
    R_ERR[$k]=$(($(wrk_errors "$WORK/$name.txt") + $(wrk_errors "$WORK/$name-1c.txt")))
    R_RSS[$k]=$(peak_mb)
    # CPU µs per request of the process under test (clock ticks are 10 ms).
    R_CPU[$k]=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v r="${R_RPS[$k]}" -v d="$DURATION" \
        'BEGIN { if (r > 0) printf "%.1f", t / hz * 1e6 / (r * d); else print "—" }')
    log "$name: ${R_RPS[$k]} req/s, p50 ${R_P50[$k]} µs, p99 ${R_P99[$k]} µs, 1 conn p50 ${R_P50_1[$k]} µs, peak RSS ${R_RSS[$k]} MB, errors ${R_ERR[$k]}"
    if [[ "${R_ERR[$k]}" != 0 ]]; then
        log "$name: wrk saw errors or non-2xx answers:"
        sed -n '1,40p' "$WORK/$name.txt" >&2
    fi
}

# median VALUES...: the middle value (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# column ARRAY NAME: that scenario's value in every round.
column() {
    local -n values=$1
    local r
    for r in $(seq 1 "$ROUNDS"); do echo "${values[$2 $r]}"; done
}

start_upstream
curl -fsS "http://$UPSTREAM_ADDR/users/42" >/dev/null
# The Redis that full-redis.toml keeps its rate-limit cells in.
require_free "$REDIS_ADDR"
redis-server --port "${REDIS_ADDR##*:}" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
wait_port "$REDIS_ADDR"

for round in $(seq 1 "$ROUNDS"); do
    SERVER_PIDS=("$UPSTREAM_PID")
    measure direct "http://$UPSTREAM_ADDR/users/42" "$round"

    start_nginx
    measure nginx "http://$NGINX_ADDR/users/42" "$round"
    stop_servers

    for name in empty noop full full-redis aggregate; do
        start_gateway "$ROOT/benches/configs/$name.toml"
        path=/users/42
        [[ $name == aggregate ]] && path=/users/42/dashboard
        status=$(curl -s -o "$WORK/$name-check.txt" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://$GATEWAY_ADDR$path")
        if [[ $status != 200 ]]; then
            log "$name: expected 200 from $path, got $status: $(cat "$WORK/$name-check.txt")"
            exit 1
        fi
        measure "$name" "http://$GATEWAY_ADDR$path" "$round"
        stop_servers
        wait_free "$GATEWAY_ADDR"
    done
done

for s in "${SCENARIOS[@]}"; do
    RPS[$s]=$(median $(column R_RPS "$s"))
    P50[$s]=$(median $(column R_P50 "$s"))
    P99[$s]=$(median $(column R_P99 "$s"))
    P50_1[$s]=$(median $(column R_P50_1 "$s"))
    P99_1[$s]=$(median $(column R_P99_1 "$s"))
    CPU[$s]=$(median $(column R_CPU "$s"))
    RSS[$s]=$(column R_RSS "$s" | sort -g | tail -1)
    ERR[$s]=$(column R_ERR "$s" | awk '{ n += $1 } END { print n + 0 }')
    RUNS[$s]=$(column R_RPS "$s" | paste -sd/)
done

# What the full pipeline adds to a request at one connection, measured with
# its requests alternating with an empty route's in one gateway, so that
# the machine's noise falls on both alike: the full config with its route
# moved under /full and an empty route beside it (plugin paths made
# absolute).
sed -e "s#\.\./\.\./target#$ROOT/target#g" -e 's#^prefix = "/"$#prefix = "/full"#' \
    "$ROOT/benches/configs/full.toml" >"$WORK/latency.toml"
printf '\n[[routes]]\nname = "empty"\nprefix = "/empty"\nupstream = "backend"\n' >>"$WORK/latency.toml"
start_gateway "$WORK/latency.toml"
read -r SIDE_EMPTY_P50 SIDE_EMPTY_P99 SIDE_FULL_P50 SIDE_FULL_P99 < <(
    "$BIN/bench-client" latency "$GATEWAY_ADDR" "${SIDE_REQUESTS:-20000}" /empty/users/42 /full/users/42 "Bearer $TOKEN"
)
SIDE_ADDED=$((SIDE_FULL_P50 - SIDE_EMPTY_P50))
log "side by side at 1 connection: empty p50 $SIDE_EMPTY_P50 µs, full p50 $SIDE_FULL_P50 µs: +$SIDE_ADDED µs"
stop_servers
wait_free "$GATEWAY_ADDR"

# Idle memory with the demo config (ports moved, plugin paths made absolute).
sed -e "s#\.\./target#$ROOT/target#g" -e 's#127.0.0.1:8080#127.0.0.1:9300#' -e 's#127.0.0.1:9901#127.0.0.1:9301#' \
    "$ROOT/configs/demo.toml" >"$WORK/demo.toml"
start_gateway "$WORK/demo.toml"
sleep 2
IDLE_DEMO=$(mem_mb VmRSS)
stop_servers

us() { [[ -n "$1" ]] && echo "$1 µs" || echo "—"; }
check() { awk "BEGIN { print (($1) ? \"**met**\" : \"**missed**\") }"; }

{
    echo "# Load benchmark"
    echo
    echo "Written by \`bash benches/load.sh\`. Every row ran in the same run, against the"
    echo "same upstream (\`bench-upstream\`, $UPSTREAM_THREADS tokio worker, a fixed ~110-byte JSON answer),"
    echo "with \`wrk -t1 -c$CONNS -d${DURATION}s --latency\` after a ${WARMUP}s warm-up, then \`wrk -t1 -c1 -d${LAT_DURATION}s\`"
    echo "for latency at one connection. wasmgate runs with \`TOKIO_WORKER_THREADS=$WORKERS\`, nginx with"
    echo "\`worker_processes $WORKERS\` and keep-alive to the upstream. Every request carries the same"
    echo "\`Authorization: Bearer\` (the demo's HS256 member token). Configs: \`benches/configs/*.toml\`."
    echo
    echo "Each scenario ran $ROUNDS times, the rounds interleaved (every scenario once, then again), so"
    echo "that a noisy neighbour hits all of them alike; each cell is the median of its rounds (peak RSS: the"
    echo "largest, errors: the sum), and the last column lists every round's req/s."
    echo
    echo "$MACHINE"
    echo
    echo "| scenario | req/s ($CONNS conns) | vs upstream | vs nginx | p50 | p99 | p99 vs nginx | p50 @1 conn | p99 @1 conn | peak RSS | server CPU per request | errors | req/s per round |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for s in "${SCENARIOS[@]}"; do
        echo "| ${LABEL[$s]} | ${RPS[$s]} | $(ratio "${RPS[$s]}" "${RPS[direct]}") | $(ratio "${RPS[$s]}" "${RPS[nginx]}") | $(us "${P50[$s]}") | $(us "${P99[$s]}") | $(ratio "${P99[$s]}" "${P99[nginx]}") | $(us "${P50_1[$s]}") | $(us "${P99_1[$s]}") | ${RSS[$s]} MB | ${CPU[$s]} µs | ${ERR[$s]} | ${RUNS[$s]} |"
    done
    echo
    echo "Peak RSS is the process's VmHWM (or VmRSS when larger) at the end of its runs (for nginx, master + worker; for the upstream,"
    echo "its own). Server CPU per request is the process's user + system time during the $CONNS-connection run"
    echo "divided by the requests it served; with wrk and the upstream on the same CPUs, it is the fairer"
    echo "measure of a proxy's own cost than req/s. The aggregate row makes three upstream calls per request."
    echo "The no-op row makes the full pipeline's three plugin calls with nothing in them: what the calls"
    echo "alone cost, so its ratio to the empty pipeline ($(ratio "${RPS[noop]}" "${RPS[empty]}") here) bounds what any three-plugin"
    echo "pipeline can reach."
    echo "The Redis row is the full pipeline with \`[state] backend = \"redis\"\` (a local redis-server, one"
    echo "multiplexed connection): each request's rate-limit take is one script call to Redis. Against the"
    echo "local-memory row: $(ratio "${RPS[full-redis]}" "${RPS[full]}") of its throughput, p50 at one connection"
    echo "$(us "${P50_1[full-redis]}") vs $(us "${P50_1[full]}"), $(awk -v a="${CPU[full-redis]}" -v b="${CPU[full]}" 'BEGIN { printf "%+.1f", a - b }') µs of gateway CPU per request."
    echo
    echo "Idle RSS with \`configs/demo.toml\` (4 plugins, 5 plugin uses, warm artifact cache), 2 s after start: **$IDLE_DEMO MB**."
    echo
    echo "Side by side at one connection (\`bench-client latency\`, ${SIDE_REQUESTS:-20000} requests to each route, alternating,"
    echo "in one gateway: the full pipeline's route and an empty one): empty p50 $SIDE_EMPTY_P50 µs, p99 $SIDE_EMPTY_P99 µs;"
    echo "full p50 $SIDE_FULL_P50 µs, p99 $SIDE_FULL_P99 µs. The full pipeline adds **$SIDE_ADDED µs** at the median. The"
    echo "wrk columns above measure the two in separate runs, minutes apart, where the noise of a shared machine"
    echo "is larger than the difference."
    echo
    echo "## Targets (ratios from this run)"
    echo
    full_empty=$(ratio "${RPS[full]}" "${RPS[empty]}")
    full_nginx=$(ratio "${RPS[full]}" "${RPS[nginx]}")
    empty_nginx=$(ratio "${RPS[empty]}" "${RPS[nginx]}")
    added=$SIDE_ADDED
    peak=$(printf '%s\n' "${RSS[empty]}" "${RSS[noop]}" "${RSS[full]}" "${RSS[aggregate]}" | sort -g | tail -1)
    echo "| target | measured | |"
    echo "| --- | --- | --- |"
    echo "| full pipeline ≥ 85% of empty pipeline throughput | $full_empty (three no-op plugins: $(ratio "${RPS[noop]}" "${RPS[empty]}")) | $(check "$full_empty >= 0.85") |"
    echo "| full pipeline ≥ 100% of nginx throughput | $full_nginx | $(check "$full_nginx >= 1.0") |"
    echo "| empty pipeline ≥ 110% of nginx throughput | $empty_nginx | $(check "$empty_nginx >= 1.1") |"
    echo "| empty pipeline p99 no worse than nginx's | ${P99[empty]} µs vs ${P99[nginx]} µs | $(check "${P99[empty]} <= ${P99[nginx]}") |"
    echo "| added p50 of the full pipeline over the empty one at 1 connection ≤ 30 µs | $added µs (side by side) | $(check "$added <= 30") |"
    echo "| peak RSS under load ≤ 64 MB | $peak MB (largest wasmgate row) | $(check "$peak <= 64") |"
    echo "| idle RSS ≤ 32 MB with the demo config | $IDLE_DEMO MB | $(check "$IDLE_DEMO <= 32") |"
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
