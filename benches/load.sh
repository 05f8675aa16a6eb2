#!/usr/bin/env bash
# Load benchmark: the bench upstream directly, nginx as a plain proxy_pass,
# and wasmgate (empty pipeline, three no-op plugins, full 4-stage pipeline
# with its rate-limit state in memory and in Redis, aggregation), each under
# the same wrk load, in one run; then a TLS upstream (wrk; nginx with
# proxy_ssl) and gRPC over h2c (h2load; nginx with grpc_pass), each beside
# nginx doing the same. Writes benches/results/load.md.
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

# The TLS-upstream and gRPC rows: a CA and a certificate for the upstream
# (openssl), bench-upstream over TLS and as a gRPC (h2c) service, and the
# gateway configs for them.
TLS_UPSTREAM_ADDR=127.0.0.1:9201
GRPC_UPSTREAM_ADDR=127.0.0.1:9202
PKI="$WORK/pki"
mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$PKI/ca.key" -out "$PKI/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$PKI/server.key" -out "$PKI/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$PKI/ext.cnf"
openssl x509 -req -days 2 -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
    -extfile "$PKI/ext.cnf" -out "$PKI/server.pem" 2>/dev/null
for addr in "$TLS_UPSTREAM_ADDR" "$GRPC_UPSTREAM_ADDR"; do require_free "$addr"; done
TOKIO_WORKER_THREADS=$UPSTREAM_THREADS "$BIN/bench-upstream" "$TLS_UPSTREAM_ADDR" --tls "$PKI/server.pem" "$PKI/server.key" \
    2>"$WORK/tls-upstream.log" &
PIDS+=("$!")
TOKIO_WORKER_THREADS=$UPSTREAM_THREADS "$BIN/bench-upstream" "$GRPC_UPSTREAM_ADDR" --grpc 2>"$WORK/grpc-upstream.log" &
PIDS+=("$!")
wait_port "$TLS_UPSTREAM_ADDR"
wait_port "$GRPC_UPSTREAM_ADDR"
gateway_config() { # NAME 'UPSTREAM SETTINGS'
    cat >"$WORK/$1.toml" <<CONF
[server]
listen = ["$GATEWAY_ADDR"]
[access_log]
enabled = false
[runtime]
cache_dir = "$ROOT/target/wasmgate-cache"
[upstreams.backend]
$2
[[routes]]
name = "proxy"
prefix = "/"
upstream = "backend"
CONF
}
gateway_config tls "targets = [\"$TLS_UPSTREAM_ADDR\"]
tls = { server_name = \"localhost\", ca_file = \"$PKI/ca.pem\" }"
gateway_config grpc "targets = [\"$GRPC_UPSTREAM_ADDR\"]
protocol = \"h2\""
NGINX_TLS="upstream backend { server $TLS_UPSTREAM_ADDR; keepalive 128; }
    server {
        listen $NGINX_ADDR;
        location / {
            proxy_pass https://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $PKI/ca.pem;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;
        }
    }"
# keepalive_requests: nginx closes a client's HTTP/2 connection after 1000
# requests by default, and h2load does not reconnect within a timed run
# (the connection's calls just stop); the gateway sets no such limit.
NGINX_GRPC="upstream backend { server $GRPC_UPSTREAM_ADDR; keepalive 128; keepalive_requests 100000000; }
    server {
        listen $NGINX_ADDR http2;
        keepalive_requests 100000000;
        location / { grpc_pass grpc://backend; }
    }"
# One unary call: a gRPC frame (uncompressed, 7 bytes) holding field 1 = "bench".
printf '\x00\x00\x00\x00\x07\x0a\x05bench' >"$WORK/grpc.bin"
GRPC_PATH=/bench.Echo/Get

# measure_grpc NAME ADDR ROUND: h2load, CONNS connections, one stream each
# (as many calls in flight as wrk's rows have requests), after a warm-up.
measure_grpc() {
    local name=$1 k="$1 $3" before after
    log "$name (round $3): h2c $2$GRPC_PATH"
    local check
    check=$(curl -sS --http2-prior-knowledge -D - -o /dev/null -H 'content-type: application/grpc' -H 'te: trailers' \
        --data-binary @"$WORK/grpc.bin" "http://$2$GRPC_PATH" | tr -d '\r')
    if ! grep -q '^grpc-status: 0$' <<<"$check"; then
        log "$name: no grpc-status 0 from $2: $check"
        exit 1
    fi
    before=$(cpu_ticks)
    h2load -c "$CONNS" -m 1 -D "$DURATION" --warm-up-time="$WARMUP" -H 'content-type: application/grpc' \
        -H 'te: trailers' -d "$WORK/grpc.bin" "http://$2$GRPC_PATH" >"$WORK/$name.txt" 2>&1
    after=$(cpu_ticks)
    R_RPS[$k]=$(awk '/^finished in/ { gsub(",", "", $4); printf "%.0f", $4 }' "$WORK/$name.txt")
    # h2load gives no percentiles: the mean, and the mean + 2 sd as a tail.
    R_P50[$k]=$(h2load_us mean "$WORK/$name.txt")
    R_P99[$k]=$(h2load_us tail "$WORK/$name.txt")
    R_ERR[$k]=$(awk '/^requests:/ { print $10 + $12 }' "$WORK/$name.txt")
    R_P50_1[$k]=""
    R_P99_1[$k]=""
    R_RSS[$k]=$(peak_mb)
    R_CPU[$k]=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v r="${R_RPS[$k]}" -v d="$DURATION" \
        'BEGIN { if (r > 0) printf "%.1f", t / hz * 1e6 / (r * d); else print "—" }')
    log "$name: ${R_RPS[$k]} calls/s, mean ${R_P50[$k]} µs, errors ${R_ERR[$k]}"
}

# h2load_us mean|tail FILE: the mean time per request, or mean + 2 sd, in µs.
h2load_us() {
    awk -v which="$1" '
        function us(v,  unit) { unit = v; gsub(/[0-9.]/, "", unit); sub(/[a-z]+$/, "", v)
            return v * ((unit == "us") ? 1 : (unit == "ms") ? 1000 : (unit == "s") ? 1000000 : 1) }
        /^time for request:/ { m = us($6); sd = us($7); printf "%.0f", (which == "mean") ? m : m + 2 * sd; exit }' "$2"
}

EXTRA=(tls-nginx tls grpc-nginx grpc)
declare -A LABEL_EXTRA=(
    [tls-nginx]="nginx proxy_pass https (proxy_ssl_verify, keep-alive)"
    [tls]="wasmgate, TLS upstream (CA file, keep-alive)"
    [grpc-nginx]="nginx grpc_pass (h2c both sides)"
    [grpc]="wasmgate, protocol = \"h2\" (h2c both sides)"
)

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

    start_nginx_with "$NGINX_TLS"
    measure tls-nginx "http://$NGINX_ADDR/users/42" "$round"
    stop_servers
    start_gateway "$WORK/tls.toml"
    measure tls "http://$GATEWAY_ADDR/users/42" "$round"
    stop_servers
    wait_free "$GATEWAY_ADDR"

    start_nginx_with "$NGINX_GRPC"
    measure_grpc grpc-nginx "$NGINX_ADDR" "$round"
    stop_servers
    start_gateway "$WORK/grpc.toml"
    measure_grpc grpc "$GATEWAY_ADDR" "$round"
    stop_servers
    wait_free "$GATEWAY_ADDR"
done

for s in "${SCENARIOS[@]}" "${EXTRA[@]}"; do
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
    echo "## TLS upstream and gRPC, beside nginx doing the same"
    echo
    echo "In the same run, interleaved with the rows above. TLS: the same wrk load through a proxy to"
    echo "\`bench-upstream --tls\` (HTTP/1.1 over TLS, ECDSA P-256 certificate for \`localhost\` from a CA made"
    echo "with openssl): nginx \`proxy_pass https://\` with \`proxy_ssl_verify on\`, the CA as"
    echo "\`proxy_ssl_trusted_certificate\`, \`proxy_ssl_name localhost\` and keep-alive; wasmgate with"
    echo "\`tls = { server_name = \"localhost\", ca_file = ... }\`. gRPC: \`h2load -c$CONNS -m1 -D$DURATION\`"
    echo "(${WARMUP}s warm-up) sending one unary call per request (a 12-byte gRPC frame) over h2c to nginx"
    echo "(\`listen ... http2\`, \`grpc_pass grpc://\`, keep-alive) or to wasmgate (\`protocol = \"h2\"\`), both in"
    echo "front of \`bench-upstream --grpc\` (h2c; echoes the message, \`grpc-status: 0\` in the trailers)."
    echo "h2load reports no percentiles: for the gRPC rows the latency columns are h2load's mean time"
    echo "per request and its mean + 2 standard deviations."
    echo
    echo "| scenario | req/s ($CONNS conns) | vs nginx doing the same | p50 (gRPC: mean) | p99 (gRPC: mean + 2 sd) | peak RSS | server CPU per request | errors | req/s per round |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for s in "${EXTRA[@]}"; do
        base=${s%-nginx}-nginx
        echo "| ${LABEL_EXTRA[$s]} | ${RPS[$s]} | $(ratio "${RPS[$s]}" "${RPS[$base]}") | $(us "${P50[$s]}") | $(us "${P99[$s]}") | ${RSS[$s]} MB | ${CPU[$s]} µs | ${ERR[$s]} | ${RUNS[$s]} |"
    done
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
    noop_empty=$(ratio "${RPS[noop]}" "${RPS[empty]}")
    echo "| three no-op plugins ≥ 0.92 × the empty pipeline | $noop_empty | $(check "$noop_empty >= 0.92") |"
    echo "| full pipeline ≥ 0.80 × the empty pipeline | $full_empty | $(check "$full_empty >= 0.80") |"
    echo "| full pipeline ≥ 0.60 × nginx | $full_nginx | $(check "$full_nginx >= 0.60") |"
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
