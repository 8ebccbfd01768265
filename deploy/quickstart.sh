#!/usr/bin/env bash
# Builds rxc and starts what exists so far on this machine: an active GTM, its synchronous
# standby, a GTM proxy, two datanodes (PostgreSQL-wire SQL servers on RocksDB) and a
# coordinator over them (registered with CREATE NODE through psql), all behind the proxy, on
# free loopback ports, in the foreground. Ctrl-C stops everything.
#
#   ./deploy/quickstart.sh [DIR]      (data and logs under DIR, default ./rxc-quickstart)
#
# Set RXC_QUICKSTART_SECONDS=N to stop by itself after N seconds (used by the smoke test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
dir=${1:-$root/rxc-quickstart}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if ! command -v cargo >/dev/null 2>&1; then
    echo "quickstart: cargo not found; install the Rust toolchain first" >&2
    exit 1
fi
# RXC_QUICKSTART_BUILT=1: the release binaries were just built (tests/run.sh builds the whole
# workspace first; building again with this package selection would recompile rxc's crates).
if [[ "${RXC_QUICKSTART_BUILT:-}" != 1 ]]; then
    echo "==> building rxc (release)"
    cargo build --release -p rxc-gtm -p rxc-gtm-proxy -p rxc-datanode -p rxc-coordinator
fi
bin=$root/target/release

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
gtm_port=$(free_port)
standby_port=$(free_port)
proxy_port=$(free_port)
dn_port=$(free_port)
dn2_port=$(free_port)
coord_port=$(free_port)

pids=()
cleanup() {
    trap - INT TERM EXIT
    if ((${#pids[@]})); then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    echo "rxc quickstart stopped; data and logs are in $dir"
}
trap cleanup INT TERM EXIT

wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "quickstart: nothing listens on port $1; see the logs in $dir" >&2
    exit 1
}

"$bin/rxc-gtm" --node-name gtm --data-dir "$dir/gtm" --listen "127.0.0.1:$gtm_port" \
    >>"$dir/gtm.log" 2>&1 &
pids+=($!)
wait_port "$gtm_port"
"$bin/rxc-gtm" --node-name gtm_standby --data-dir "$dir/gtm_standby" \
    --listen "127.0.0.1:$standby_port" --standby-of "127.0.0.1:$gtm_port" >>"$dir/gtm_standby.log" 2>&1 &
pids+=($!)
wait_port "$standby_port"
"$bin/rxc-gtm-proxy" --node-name gtm_proxy --listen "127.0.0.1:$proxy_port" \
    --gtm "127.0.0.1:$gtm_port,127.0.0.1:$standby_port" >>"$dir/gtm_proxy.log" 2>&1 &
pids+=($!)
wait_port "$proxy_port"

"$bin/rxc-datanode" --node-name dn1 --data-dir "$dir/dn1" --listen "127.0.0.1:$dn_port" \
    --gtm "127.0.0.1:$proxy_port" >>"$dir/dn1.log" 2>&1 &
pids+=($!)
"$bin/rxc-datanode" --node-name dn2 --data-dir "$dir/dn2" --listen "127.0.0.1:$dn2_port" \
    --gtm "127.0.0.1:$proxy_port" >>"$dir/dn2.log" 2>&1 &
pids+=($!)
"$bin/rxc-coordinator" --node-name coord1 --data-dir "$dir/coord1" \
    --listen "127.0.0.1:$coord_port" --gtm "127.0.0.1:$proxy_port" >>"$dir/coord1.log" 2>&1 &
pids+=($!)
wait_port "$dn_port"
wait_port "$dn2_port"
wait_port "$coord_port"

# The coordinator learns its datanodes with CREATE NODE (kept in its catalog: on a restart
# over the same directory they are known already).
register="CREATE NODE dn1 WITH (TYPE = 'datanode', HOST = '127.0.0.1', PORT = $dn_port, PRIMARY);
CREATE NODE dn2 WITH (TYPE = 'datanode', HOST = '127.0.0.1', PORT = $dn2_port);
SELECT pgxc_pool_reload();"
if ! command -v psql >/dev/null 2>&1; then
    echo "quickstart: psql not found: register the datanodes on the coordinator yourself:" >&2
    echo "$register" >&2
elif [[ -z $(psql -X -A -t -h 127.0.0.1 -p "$coord_port" -U postgres -d postgres \
    -c "SELECT node_name FROM pgxc_node" 2>>"$dir/coord1.log") ]]; then
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$coord_port" -U postgres -d postgres \
        -c "$register" >/dev/null 2>>"$dir/coord1.log" ||
        { echo "quickstart: registering the datanodes failed; see $dir/coord1.log" >&2; exit 1; }
else
    # Ports are new on every start: point the known nodes at them.
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$coord_port" -U postgres -d postgres \
        -c "ALTER NODE dn1 WITH (PORT = $dn_port)" -c "ALTER NODE dn2 WITH (PORT = $dn2_port)" \
        -c "SELECT pgxc_pool_reload()" >/dev/null 2>>"$dir/coord1.log" ||
        { echo "quickstart: updating the datanodes failed; see $dir/coord1.log" >&2; exit 1; }
fi

cat <<MSG

rxc is running (data and logs in $dir):
  GTM (active)      127.0.0.1:$gtm_port
  GTM standby       127.0.0.1:$standby_port   (synchronous)
  GTM proxy         127.0.0.1:$proxy_port      (components connect here)
  datanode dn1      127.0.0.1:$dn_port      (PostgreSQL wire protocol)
  datanode dn2      127.0.0.1:$dn2_port
  coordinator coord1 127.0.0.1:$coord_port   (one database over dn1 and dn2: connect here)

Try, from another terminal:
  psql -h 127.0.0.1 -p $coord_port -U postgres postgres      # tables hash-distributed over dn1, dn2
  psql -h 127.0.0.1 -p $dn_port -U postgres postgres      # one datanode directly
  $bin/rxc-gtm status --gtm 127.0.0.1:$gtm_port
  $bin/rxc-gtm-bench --gtm 127.0.0.1:$proxy_port --sessions 64 --seconds 5
  $bin/rxc-gtm promote --gtm 127.0.0.1:$standby_port     # after stopping the active

Ctrl-C stops everything.
MSG

if [[ -n "${RXC_QUICKSTART_SECONDS:-}" ]]; then
    sleep "$RXC_QUICKSTART_SECONDS"
    exit 0
fi
wait -n "${pids[@]}" || true
echo "quickstart: a component exited; see the logs in $dir" >&2
exit 1
