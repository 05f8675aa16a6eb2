#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind (callgrind): nginx's
# plain proxy_pass, wasmgate's empty pipeline, three no-op plugins, the full
# pipeline, and each of its plugins alone. Writes benches/results/instructions.md.
#
#   bash benches/instructions.sh    # REQUESTS=1000 by default
#
# The load benchmark's req/s swing by ±30% between rounds on a shared VM;
# an instruction count does not move by more than a fraction of a percent
# from run to run, so it shows what a change to the hot path did. It counts
# user space only (the kernel's share is the same for every proxy: the same
# syscalls per request) and not time: a cache miss is one instruction here.
# Every server gets the same REQUESTS sequential keep-alive requests after a
# warm-up; counting starts after the warm-up (callgrind_control).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REQUESTS="${REQUESTS:-1000}"
OUT="$ROOT/benches/results/instructions.md"

ensure_valgrind() {
    command -v valgrind >/dev/null && command -v curl >/dev/null && return
    log "installing valgrind and curl (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind curl >/dev/null
}

ensure_valgrind
prepare

# A bench config made runnable from $WORK: absolute paths, and an engine
# sized for valgrind, which cannot reserve the default pool's address space.
gateway_config() {
    sed -e "s#\.\./\.\./target#$ROOT/target#g" "$ROOT/benches/configs/$1.toml" |
        awk '/^\[runtime\]$/ { print; print "max_instances = 8"; print "max_instances_per_plugin = 2"; done = 1; next }
             { print }
             END { if (!done) { print ""; print "[runtime]"; print "max_instances = 8"; print "max_instances_per_plugin = 2" } }'
}

# Compiles CONFIG's plugins under valgrind into the artifact cache. The
# gateway compiles in a child process of itself, which valgrind runs
# natively unless it traces children: that child targets the CPU's real
# features (AVX-512...), which valgrind's emulated CPU lacks, and the
# gateway under valgrind would refuse the artifact.
warm_under_valgrind() {
    RUST_LOG=error valgrind --tool=none --trace-children=yes -q "$BIN/wasmgate" check "$1" >/dev/null
}

# The full config with only its Nth pipeline stage (1-based).
one_stage() {
    gateway_config full | awk -v keep="$1" '
        /^\[\[routes.pipeline\]\]$/ { stage++ }
        stage == 0 || stage == keep { print }'
}

nginx_config() {
    mkdir -p "$WORK/nginx-cg"
    cat <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/nginx-cg/nginx.pid;
error_log $WORK/nginx-cg/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-cg/body;
    proxy_temp_path $WORK/nginx-cg/proxy;
    upstream backend {
        server $UPSTREAM_ADDR;
        keepalive 128;
    }
    server {
        listen $GATEWAY_ADDR;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
}

# count NAME COMMAND...: instructions per request of COMMAND serving on
# GATEWAY_ADDR, into IR[NAME].
declare -A IR
count() {
    local name=$1
    shift
    local url="http://$GATEWAY_ADDR/users/42" args=() status
    for _ in $(seq 1 "$REQUESTS"); do args+=(-o /dev/null "$url"); done
    TOKIO_WORKER_THREADS=1 RUST_LOG=warn valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$WORK/$name.callgrind" "$@" >"$WORK/$name.valgrind" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$GATEWAY_ADDR"
    curl -s -H "Authorization: Bearer $TOKEN" "${args[@]}"
    callgrind_control -i on "$pid" >/dev/null
    status=$(curl -s -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" "${args[@]}" | sort | uniq -c | tr -s ' ' | paste -sd,)
    callgrind_control -i off "$pid" >/dev/null
    # A dump holds exactly the counted requests; read it rather than wait
    # for the exit summary (nginx without a master ignores SIGTERM under
    # valgrind).
    callgrind_control -d "$pid" >/dev/null
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    wait_free "$GATEWAY_ADDR"
    if [[ "$status" != " $REQUESTS 200" ]]; then
        log "$name: expected $REQUESTS answers 200, got:$status"
        exit 1
    fi
    local total
    total=$(awk '/^totals:/ { print $2; exit }' "$WORK/$name.callgrind.1")
    IR[$name]=$((total / REQUESTS))
    log "$name: ${IR[$name]} instructions per request"
}

start_upstream
nginx_config >"$WORK/nginx-cg.conf"
count nginx nginx -p "$WORK/nginx-cg" -c "$WORK/nginx-cg.conf"
for name in empty noop full; do
    gateway_config "$name" >"$WORK/$name.toml"
    warm_under_valgrind "$WORK/$name.toml"
    count "$name" "$BIN/wasmgate" run "$WORK/$name.toml"
done
# Two workers: a multi-threaded runtime, where a plugin that imports
# http-client (jwt-auth) is called directly, as in a default deployment.
for name in empty full; do
    gateway_config "$name" | sed 's/^\[server\]$/[server]\nworkers = 2/' >"$WORK/$name-2w.toml"
    count "$name-2w" "$BIN/wasmgate" run "$WORK/$name-2w.toml"
done
STAGES=(jwt-auth rate-limit transform)
for i in "${!STAGES[@]}"; do
    one_stage $((i + 1)) >"$WORK/${STAGES[$i]}.toml"
    warm_under_valgrind "$WORK/${STAGES[$i]}.toml"
    count "${STAGES[$i]}" "$BIN/wasmgate" run "$WORK/${STAGES[$i]}.toml"
done

thousands() { awk -v n="$1" 'BEGIN { printf "%.1fk", n / 1000 }'; }
{
    echo "# Instructions per request"
    echo
    echo "Written by \`bash benches/instructions.sh\`: user-space instructions per proxied request,"
    echo "counted by \`valgrind --tool=callgrind\` over $REQUESTS sequential keep-alive requests after a"
    echo "warm-up, with 1 worker (\`TOKIO_WORKER_THREADS=1\`; nginx \`worker_processes 1\`,"
    echo "\`master_process off\`). Same upstream and token as the load benchmark. Deterministic to a"
    echo "fraction of a percent, so it shows what a change did where req/s cannot; it is not time (a"
    echo "cache miss counts as one instruction) and leaves out the kernel, whose share is the same"
    echo "syscalls per request for every proxy here."
    echo
    echo "$MACHINE"
    echo
    echo "| server | instructions / request | vs nginx | added over the empty pipeline |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| nginx proxy_pass | $(thousands "${IR[nginx]}") | 1.00 | |"
    echo "| wasmgate, empty pipeline | $(thousands "${IR[empty]}") | $(ratio "${IR[empty]}" "${IR[nginx]}") | |"
    echo "| wasmgate, three no-op plugins | $(thousands "${IR[noop]}") | $(ratio "${IR[noop]}" "${IR[nginx]}") | $(thousands $((IR[noop] - IR[empty]))) |"
    echo "| wasmgate, jwt-auth → rate-limit → transform | $(thousands "${IR[full]}") | $(ratio "${IR[full]}" "${IR[nginx]}") | $(thousands $((IR[full] - IR[empty]))) |"
    for s in "${STAGES[@]}"; do
        echo "| wasmgate, $s alone (its full-pipeline config) | $(thousands "${IR[$s]}") | $(ratio "${IR[$s]}" "${IR[nginx]}") | $(thousands $((IR[$s] - IR[empty]))) |"
    done
    echo "| wasmgate, empty pipeline, 2 workers | $(thousands "${IR[empty-2w]}") | $(ratio "${IR[empty-2w]}" "${IR[nginx]}") | |"
    echo "| wasmgate, jwt-auth → rate-limit → transform, 2 workers | $(thousands "${IR[full-2w]}") | $(ratio "${IR[full-2w]}" "${IR[nginx]}") | $(thousands $((IR[full-2w] - IR[empty-2w]))) |"
    echo
    echo "Full pipeline / empty pipeline: $(ratio "${IR[full]}" "${IR[empty]}")× the instructions."
    echo "With 1 worker the runtime is single-threaded and jwt-auth (it imports \`http-client\`) is called"
    echo "asynchronously: a direct call's fetch needs another thread to hand its work to. The 2-worker"
    echo "rows (multi-threaded runtime, as deployed by default) call all three plugins directly; the"
    echo "added row is against the empty pipeline with 2 workers."
    echo "rate-limit alone keys on the client IP (no jwt-auth before it to name the user)."
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
