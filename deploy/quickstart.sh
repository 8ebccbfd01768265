#!/usr/bin/env bash
# Builds rxc and runs `rxc up`: a GTM, a GTM proxy, two datanodes and two coordinators on free
# loopback ports, in the foreground, data and logs under DIR. Ctrl-C stops everything; running
# it again on the same DIR restarts the same cluster on its data. `rxc status -c DIR` (from
# another terminal) shows what runs; DIR/cluster.toml describes it.
#
#   ./deploy/quickstart.sh [DIR]      (default ./rxc-quickstart)
#
# Set RXC_QUICKSTART_SECONDS=N to stop by itself after N seconds (used by the smoke test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
dir=${1:-$root/rxc-quickstart}

if ! command -v cargo >/dev/null 2>&1; then
    echo "quickstart: cargo not found; install the Rust toolchain first" >&2
    exit 1
fi
# RXC_QUICKSTART_BUILT=1: the release binaries were just built (tests/run.sh builds the whole
# workspace first; building again with this package selection would recompile rxc's crates).
if [[ "${RXC_QUICKSTART_BUILT:-}" != 1 ]]; then
    echo "==> building rxc (release)"
    cargo build --release -p rxc -p rxc-gtm -p rxc-gtm-proxy -p rxc-datanode -p rxc-coordinator
fi
args=(up --dir "$dir")
if [[ -n "${RXC_QUICKSTART_SECONDS:-}" ]]; then
    args+=(--stop-after "$RXC_QUICKSTART_SECONDS")
fi
status=0
"$root/target/release/rxc" "${args[@]}" || status=$?
echo "rxc quickstart stopped; data and logs are in $dir"
exit "$status"
