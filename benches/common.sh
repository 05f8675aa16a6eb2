# Shared by benches/load.sh and benches/scaling.sh: tools, builds, process
# control, wrk parsing. Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The `profiling` profile: the release build with line tables, so that
# callgrind and perf name lines (the release binary ships without them).
BIN="$ROOT/target/profiling"
UPSTREAM_ADDR=127.0.0.1:9200
GATEWAY_ADDR=127.0.0.1:9300
NGINX_ADDR=127.0.0.1:9400
REDIS_ADDR=127.0.0.1:9500
WORKERS="${WORKERS:-1}"            # gateway tokio workers = nginx workers
UPSTREAM_THREADS="${UPSTREAM_THREADS:-1}"
WORK="$(mktemp -d /tmp/wasmgate-bench.XXXXXX)"
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[$(date +%T)] $*" >&2; }

ensure_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v h2load >/dev/null || missing+=(nghttp2-client)
    command -v openssl >/dev/null || missing+=(openssl)
    if ((${#missing[@]})); then
        log "installing ${missing[*]} (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

build() {
    log "building optimised binaries (profile \`profiling\`) and plugins"
    (cd "$ROOT" && cargo build --profile profiling -q -p wasmgate -p wasmgate-benches -p wasmgate-testbed)
}

# wait_port HOST:PORT — until something accepts connections there.
wait_port() {
    local host=${1%:*} port=${1##*:}
    for _ in $(seq 1 3000); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.01
    done
    log "nothing listens on $1"
    return 1
}

# wait_free HOST:PORT — until nobody listens there any more.
wait_free() {
    local host=${1%:*} port=${1##*:}
    for _ in $(seq 1 500); do
        (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null || return 0
        sleep 0.01
    done
}

# require_free HOST:PORT — fails when something already listens there: a
# server left over from another run would answer in place of the one
# about to start (whose bind fails), and be measured instead.
require_free() {
    local host=${1%:*} port=${1##*:}
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
        log "$1 is already in use (a server left from another run?); stop it first"
        exit 1
    fi
}

start_upstream() {
    require_free "$UPSTREAM_ADDR"
    TOKIO_WORKER_THREADS=$UPSTREAM_THREADS "$BIN/bench-upstream" "$UPSTREAM_ADDR" 2>"$WORK/upstream.log" &
    UPSTREAM_PID=$!
    PIDS+=("$UPSTREAM_PID")
    wait_port "$UPSTREAM_ADDR"
}

# start_gateway CONFIG — sets SERVER_PIDS.
start_gateway() {
    require_free "$GATEWAY_ADDR"
    TOKIO_WORKER_THREADS=$WORKERS RUST_LOG=warn "$BIN/wasmgate" run "$1" 2>>"$WORK/gateway.log" &
    SERVER_PIDS=($!)
    PIDS+=("$!")
    wait_port "$GATEWAY_ADDR"
}

start_nginx() {
    start_nginx_with "upstream backend {
        server $UPSTREAM_ADDR;
        keepalive 128;
    }
    server {
        listen $NGINX_ADDR;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
}

# start_nginx_with 'UPSTREAM AND SERVER BLOCKS' — nginx with these in its
# http block (and the settings every row shares).
start_nginx_with() {
    require_free "$NGINX_ADDR"
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes $WORKERS;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    $1
}
CONF
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
    local master=$!
    PIDS+=("$master")
    wait_port "$NGINX_ADDR"
    SERVER_PIDS=("$master" $(pgrep -P "$master"))
}

stop_servers() {
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
    done
    SERVER_PIDS=()
}

# Sum of a /proc/PID/status field (kB) over SERVER_PIDS, printed in MB.
mem_mb() {
    local field=$1 total=0 kb
    for pid in "${SERVER_PIDS[@]}"; do
        kb=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    awk -v k="$total" 'BEGIN { printf "%.1f", k / 1024 }'
}

# Peak RSS in MB over SERVER_PIDS: VmHWM, or VmRSS when larger (the kernel
# updates the high-water mark lazily, at unmap time).
peak_mb() {
    local hwm rss
    hwm=$(mem_mb VmHWM)
    rss=$(mem_mb VmRSS)
    awk -v a="$hwm" -v b="$rss" 'BEGIN { print (a + 0 > b + 0) ? a : b }'
}

# CPU time (user + system, in clock ticks) of SERVER_PIDS so far.
cpu_ticks() {
    local total=0 t
    for pid in "${SERVER_PIDS[@]}"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null)
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

# wrk_run OUTFILE CONNECTIONS SECONDS URL [extra wrk args...]
wrk_run() {
    local out=$1 conns=$2 secs=$3 url=$4
    shift 4
    wrk -t1 -c"$conns" -d"${secs}s" --latency "$@" "$url" >"$out" 2>&1
}

# Requests/s from a wrk output file.
wrk_rps() { awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$1"; }

# Latency percentile (50% | 99% ...) in µs from a wrk --latency output file.
wrk_lat_us() {
    awk -v p="$2" '
        $1 == p && NF == 2 {
            v = $2; unit = v; gsub(/[0-9.]/, "", unit); sub(/[a-z]+$/, "", v)
            m = (unit == "us") ? 1 : (unit == "ms") ? 1000 : (unit == "s") ? 1000000 : 1
            printf "%.0f", v * m; exit
        }' "$1"
}

# Non-2xx responses and socket errors reported by wrk (0 when none).
wrk_errors() {
    awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { for (i = 4; i <= NF; i += 2) n += $i } END { print n + 0 }' "$1"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "—"; else printf "%.2f", a / b }'; }

machine() {
    echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.1f GB RAM", $2 / 1048576 }' /proc/meminfo)"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(nginx -v 2>&1 | cut -d' ' -f3)"
    echo "- commit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) when the run started; other builds may share the CPUs"
}

TOKEN="$(grep -o 'TOKEN_MEMBER: &str = "[^"]*"' "$ROOT/tests/src/demo.rs" | cut -d'"' -f2)"

# Compiles every plugin the bench configs and the demo config load into the
# artifact cache, so that no measured start compiles: a cold start's
# compiler memory would otherwise be the peak RSS of whichever row came
# first, and the idle figure. (scaling.sh times the cold start on its own,
# with an empty cache dir of its own.)
warm_cache() {
    local config
    for config in "$ROOT"/benches/configs/*.toml "$ROOT/configs/demo.toml"; do
        RUST_LOG=warn "$BIN/wasmgate" check "$config" >/dev/null
    done
}

# The start of every benchmark script: tools, optimised build (unless
# SKIP_BUILD=1), a warm artifact cache, file-descriptor room for many
# connections, machine facts.
prepare() {
  ensure_tools
  [[ "${SKIP_BUILD:-}" == 1 ]] || build
  warm_cache
  ulimit -n 65536 2>/dev/null || true
  MACHINE="$(machine)"
}
