#!/usr/bin/env bash
# pgbench, unchanged, on a fresh rxc cluster and on a fresh PostgreSQL 15, side by side in one
# run on this machine. The rxc cluster is started by `rxc init` from a generated cluster file:
# a GTM, a GTM proxy, one coordinator and two datanodes (pgbench's tables hash-distributed by
# rxc's default rule, each on its first column). Both are loaded with `pgbench -i -s SCALE`,
# then TPC-B (the built-in script) and select-only (-S) run with CLIENTS clients for SECONDS
# seconds each in -M prepared, rxc and PostgreSQL alternating. Both commit durably (initdb
# defaults). Builds nothing: run `cargo build --release --workspace` first. Needs initdb/pg_ctl
# (PostgreSQL 15), psql, pgbench, python3.
#
#   deploy/bench/pgbench-compare.sh [SECONDS] [SCALE]     (defaults 30 s, scale 10)
#   RXC_BENCH_CLIENTS=N   clients (default 8)
#
# Prints a table, then a last line:
# result: tpcb_tps=<f> tpcb_pg_tps=<f> tpcb_ratio=<f> ro_tps=<f> ro_pg_tps=<f> ro_ratio=<f> failed=<int>
# Exits nonzero if the cluster does not start or the balances do not add up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
duration=${1:-30}
scale=${2:-10}
clients=${RXC_BENCH_CLIENTS:-8}
bin=${RXC_BIN:-target/release}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
for b in rxc rxc-gtm rxc-gtm-proxy rxc-datanode rxc-coordinator; do
    [[ -x $bin/$b ]] || { echo "pgbench-compare: $bin/$b not built" >&2; exit 1; }
done
work=$(mktemp -d)
chmod 777 "$work"
cleanup() {
    "$bin/rxc" stop -c "$work/cluster.toml" --mode immediate >/dev/null 2>&1 || true
    su postgres -c "$pgbin/pg_ctl -D $work/pg stop -m immediate" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

gtm_port=$(free_port); proxy_port=$(free_port); coord_port=$(free_port)
dn1_port=$(free_port); dn2_port=$(free_port); pg_port=$(free_port)
cat >"$work/cluster.toml" <<TOML
[gtm]
name = "gtm"
host = "127.0.0.1"
port = $gtm_port
data_dir = "gtm"

[[proxy]]
name = "gtm_proxy"
host = "127.0.0.1"
port = $proxy_port
data_dir = "gtm_proxy"

[[datanode]]
name = "dn1"
host = "127.0.0.1"
port = $dn1_port
data_dir = "dn1"
primary = true

[[datanode]]
name = "dn2"
host = "127.0.0.1"
port = $dn2_port
data_dir = "dn2"

[[coordinator]]
name = "coord1"
host = "127.0.0.1"
port = $coord_port
data_dir = "coord1"
TOML
RUST_LOG=warn "$bin/rxc" init -c "$work/cluster.toml" >"$work/init.log" 2>&1 \
    || { cat "$work/init.log" >&2; exit 1; }
su postgres -c "$pgbin/initdb -D $work/pg -A trust -U postgres" >/dev/null
su postgres -c "$pgbin/pg_ctl -D $work/pg -o '-p $pg_port -k $work -c listen_addresses=127.0.0.1' -l $work/pg.log start" >/dev/null
for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$pg_port") 2>/dev/null && break; sleep 0.05; done

rxc_port=$coord_port
# shellcheck source=lib/pgbench.sh
source deploy/bench/lib/pgbench.sh
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB; rxc: GTM + proxy + coordinator + 2 datanodes; PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}')"
pgbench_init_both

summary=()
failed=0
declare -A tps
printf '\n%-12s %-9s %12s %12s %7s\n' workload mode rxc_tps pg_tps ratio
for workload in tpcb ro; do
    flags=()
    [[ $workload == ro ]] && flags=(-S)
    for target in rxc pg; do
        run_pgbench "$target" "${flags[@]}" -M prepared
        failed=$((failed + run_failed))
        tps[$target]=$run_tps
    done
    ratio=$(python3 -c "print(f'{${tps[rxc]} / max(${tps[pg]}, 1e-9):.3f}')")
    name=$workload; [[ $workload == ro ]] && name=select-only
    printf '%-12s %-9s %12s %12s %7s\n' "$name" prepared "${tps[rxc]}" "${tps[pg]}" "$ratio"
    summary+=("${workload}_tps=${tps[rxc]}" "${workload}_pg_tps=${tps[pg]}" "${workload}_ratio=$ratio")
done
# Every TPC-B transaction moved one delta through an account, a teller, a branch and the
# history: the sums agree on rxc.
sum() { psql -X -A -t -h 127.0.0.1 -p "$coord_port" -U postgres -d postgres -c "SELECT coalesce(sum($1), 0) FROM $2"; }
a=$(sum abalance pgbench_accounts); t=$(sum tbalance pgbench_tellers)
b=$(sum bbalance pgbench_branches); h=$(sum delta pgbench_history)
echo "rxc balances: accounts $a, tellers $t, branches $b, history $h"
[[ $a == "$t" && $t == "$b" && $b == "$h" ]] || { echo "pgbench-compare: the balances do not agree" >&2; failed=$((failed + 1)); }
echo "result: ${summary[*]} failed=$failed"
