#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: the backend
# proxying to a remote runtime, and nginx proxying to the same runtime, on worker
# detail, list (eight workers) and input. Counting instructions instead of timing
# requests gives the same answer on a busy machine as on a quiet one.
#
# Usage: bench/callgrind.sh [SECONDS] (default 8 s of load per route and target)
# COUNT=runtime counts the runtime's instructions instead, per request relayed by
# each proxy (at one connection the runtime's work is part of every round trip).
# Needs: valgrind, wrk, nginx, curl, and a release build (cargo build --release
# -p switchyard-server --bin switchyard), or BIN=path/to/switchyard.
# Leaves the callgrind files in $OUT (default: a fresh temporary directory) for
# callgrind_annotate.
set -euo pipefail

SECONDS_PER_RUN=${1:-8}
BIN=${BIN:-target/release/switchyard}
OUT=${OUT:-$(mktemp -d /tmp/switchyard-callgrind-XXXXXX)}
CONNECTIONS=${CONNECTIONS:-4}
COUNT=${COUNT:-proxies}
TOKEN=callgrind-token-0123456789abcdef
mkdir -p "$OUT"
cd "$OUT"
BIN=$(cd - >/dev/null && realpath "$BIN")
echo "results in $OUT" >&2

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Waits for "listening on http://ADDR" in file $1; prints ADDR.
address_in() {
    for _ in $(seq 1 600); do
        if grep -q '^listening on http://' "$1" 2>/dev/null; then
            sed -n 's#^listening on http://##p' "$1" | head -1
            return
        fi
        sleep 0.1
    done
    echo "no address in $1" >&2
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

echo "$TOKEN" >token
cat >runtime.toml <<EOF
runtime_id = "remote"
max_workers = 20000
input_queue = 1000000
EOF
# Execs "$@" (so call it in the background, and $! is the program's pid), under
# callgrind with instrumentation off until measured if $1 names what COUNT counts;
# callgrind's files are $OUT/$1.PID.out*.
counted() {
    local name=$1
    shift
    local counts=no
    if [ "$name" = runtime ]; then
        [ "$COUNT" = runtime ] && counts=yes
    else
        [ "$COUNT" = runtime ] || counts=yes
    fi
    if [ "$counts" = yes ]; then
        exec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/$name.%p.out" "$@"
    else
        exec "$@"
    fi
}

RUST_LOG=warn counted runtime "$BIN" runtime --listen 127.0.0.1:0 --config runtime.toml \
    --token-file token >runtime.out 2>runtime.err &
RUNTIME_PID=$!
PIDS+=($RUNTIME_PID)
RUNTIME=$(address_in runtime.out)

cat >backend.toml <<EOF
health_interval_ms = 60000
[[remote]]
runtime_id = "remote"
base_url = "http://$RUNTIME"
token_file = "$OUT/token"
connect_timeout_ms = 2000
request_timeout_ms = 30000
EOF
RUST_LOG=warn counted backend "$BIN" serve --listen 127.0.0.1:0 --config backend.toml >backend.out 2>backend.err &
BACKEND_PID=$!
PIDS+=($BACKEND_PID)
BACKEND=$(address_in backend.out)

NGINX_PORT=$(free_port)
mkdir -p nginx/logs nginx/body nginx/proxy nginx/fastcgi nginx/uwsgi nginx/scgi
cat >nginx/nginx.conf <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/err.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $OUT/nginx/body;
    proxy_temp_path $OUT/nginx/proxy;
    fastcgi_temp_path $OUT/nginx/fastcgi;
    uwsgi_temp_path $OUT/nginx/uwsgi;
    scgi_temp_path $OUT/nginx/scgi;
    keepalive_requests 10000000;
    upstream runtime { server $RUNTIME; keepalive 64; keepalive_requests 10000000; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://runtime;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer $TOKEN";
        }
    }
}
EOF
counted nginx "$(command -v nginx || echo /usr/sbin/nginx)" -c "$OUT/nginx/nginx.conf" -p "$OUT/nginx" \
    >nginx.out 2>nginx.err &
NGINX_PID=$!
PIDS+=($NGINX_PID)
for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/v1/health" && break
    sleep 0.1
done

# Eight echo workers, created on the runtime directly.
WORKERS=()
for _ in $(seq 1 8); do
    WORKERS+=("$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"profile":"echo"}' "http://$RUNTIME/v1/workers" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["worker_id"])')")
done
W=${WORKERS[0]}
cat >input.lua <<'EOF'
wrk.method = "POST"
wrk.body = '{"text":"ping"}'
wrk.headers["Content-Type"] = "application/json"
EOF

# Counts instructions of process $1 (dump name $2) while wrk loads URL $3 (extra
# wrk arguments after it); prints "instructions requests".
measure() {
    local pid=$1 name=$2 url=$3
    shift 3
    wrk -t1 -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null 2>&1
    callgrind_control -z "$pid" >/dev/null 2>&1
    callgrind_control -i on "$pid" >/dev/null 2>&1
    local out
    out=$(wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "$@" "$url")
    callgrind_control -i off "$pid" >/dev/null 2>&1
    callgrind_control -d "$name" "$pid" >/dev/null 2>&1
    sleep 0.5
    local requests file instructions
    requests=$(echo "$out" | sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p')
    file=$(grep -l "^desc: Trigger: dump $name\$" "$OUT"/*.out.* 2>/dev/null | tail -1)
    instructions=$(sed -n 's/^totals: *//p' "$file" | head -1)
    echo "$instructions $requests"
}

printf '%-8s %-8s %14s %10s %12s\n' target route instructions requests "instr/req"
[ "$COUNT" = runtime ] && echo "(instructions of the runtime, by the proxy that relayed)"
for target in backend nginx; do
    if [ "$target" = backend ]; then
        pid=$BACKEND_PID
        [ "$COUNT" = runtime ] && pid=$RUNTIME_PID
        base="http://$BACKEND/api/runtimes/remote"
    else
        pid=$NGINX_PID
        [ "$COUNT" = runtime ] && pid=$RUNTIME_PID
        base="http://127.0.0.1:$NGINX_PORT/v1"
    fi
    for route in detail list input; do
        case $route in
        detail) set -- "$base/workers/$W" ;;
        list) set -- "$base/workers" ;;
        input) set -- "$base/workers/$W/input" -s input.lua ;;
        esac
        read -r instructions requests < <(measure "$pid" "$target-$route" "$@")
        printf '%-8s %-8s %14s %10s %12s\n' "$target" "$route" "$instructions" "$requests" \
            "$((instructions / requests))"
    done
done
