#!/usr/bin/env bash
# GTM throughput: the same rxc-gtm-bench load directly against rxc-gtm and through
# rxc-gtm-proxy, side by side in one run, on this machine. Builds nothing: run
# `cargo build --release -p rxc-gtm -p rxc-gtm-proxy` first.
#
#   deploy/bench/gtm-bench.sh [SECONDS]       (default 10 s per configuration)
#
# Two connection models: one connection per session (as each Postgres-XC backend has), and all
# sessions over one shared connection (as an rxc component multiplexes its sessions over one
# GtmClient). Prints one table row per configuration and a last line:
#   result: direct64_tps=<f> proxy32_tps=<f> proxy64_tps=<f> proxy256_tps=<f> proxy_vs_direct=<f> proxy256_vs_32=<f> shared_direct64_tps=<f> shared_proxy64_tps=<f> errors=<int>
# (the first six figures with one connection per session).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${RXC_BIN:-target/release}
seconds=${1:-10}
for b in rxc-gtm rxc-gtm-proxy rxc-gtm-bench; do
    [[ -x $bin/$b ]] || { echo "gtm-bench: $bin/$b not built (cargo build --release -p rxc-gtm -p rxc-gtm-proxy)" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; exit 1; }

gtm=127.0.0.1:$(free_port)
proxy=127.0.0.1:$(free_port)
RUST_LOG=warn "$bin/rxc-gtm" --data-dir "$work/gtm" --listen "$gtm" 2>"$work/gtm.log" &
pids+=($!)
wait_port "${gtm##*:}"
RUST_LOG=warn "$bin/rxc-gtm-proxy" --listen "$proxy" --gtm "$gtm" 2>"$work/proxy.log" &
pids+=($!)
wait_port "${proxy##*:}"

declare -A tps
errors=0
printf '%-10s %9s %12s %14s %14s %9s %7s\n' target sessions connections "txns/s" "requests/s" "p99 us" errors
run() {
    local label=$1 addr=$2 sessions=$3 connections=${4:-$3}
    local out line
    out=$("$bin/rxc-gtm-bench" --gtm "$addr" --sessions "$sessions" --connections "$connections" --seconds "$seconds")
    line=$(tail -n 1 <<<"$out")
    local t r p e
    t=$(sed -E 's/.*txns_per_s=([0-9.]+).*/\1/' <<<"$line")
    r=$(sed -E 's/.*requests_per_s=([0-9.]+).*/\1/' <<<"$line")
    p=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$line")
    e=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
    printf '%-10s %9s %12s %14.0f %14.0f %9s %7s\n' "$label" "$sessions" "$connections" "$t" "$r" "$p" "$e"
    tps[$label$sessions-$connections]=$t
    errors=$((errors + e))
}
run direct "$gtm" 64
run proxy "$proxy" 32
run proxy "$proxy" 64
run proxy "$proxy" 256
run direct "$gtm" 64 1
run proxy "$proxy" 32 1
run proxy "$proxy" 64 1
run proxy "$proxy" 256 1
ratio=$(python3 -c "print(f'{${tps[proxy64-64]}/${tps[direct64-64]}:.2f}')")
scale=$(python3 -c "print(f'{${tps[proxy256-256]}/${tps[proxy32-32]}:.2f}')")
echo "result: direct64_tps=${tps[direct64-64]} proxy32_tps=${tps[proxy32-32]} proxy64_tps=${tps[proxy64-64]} proxy256_tps=${tps[proxy256-256]} proxy_vs_direct=$ratio proxy256_vs_32=$scale shared_direct64_tps=${tps[direct64-1]} shared_proxy64_tps=${tps[proxy64-1]} errors=$errors"
