#!/usr/bin/env bash
# pgbench TPC-B against one rxc datanode and against PostgreSQL 15, side by side in one run on
# this machine: `pgbench -i -s SCALE` on both, then the built-in TPC-B script with 8 clients for
# SECONDS seconds in -M simple and -M prepared, rxc and PostgreSQL alternating. Both commit
# durably (PostgreSQL: fsync on, synchronous_commit on; rxc: a synced RocksDB write batch per
# commit, group commit). Builds nothing: run `cargo build --release --workspace` first.
#
#   deploy/bench/datanode-tpcb.sh [SECONDS] [SCALE]     (defaults 30 s, scale 10)
#
# Last line: result: tpcb_simple_tps=<f> tpcb_simple_pg_tps=<f> tpcb_simple_ratio=<f>
#                    tpcb_prepared_tps=<f> tpcb_prepared_pg_tps=<f> tpcb_prepared_ratio=<f> failed=<int>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
duration=${1:-30}
scale=${2:-10}
clients=${RXC_BENCH_CLIENTS:-8}
bench=datanode-tpcb
# shellcheck source=lib/datanode-and-postgres.sh
source deploy/bench/lib/datanode-and-postgres.sh
rxc_port=$dn_port
# shellcheck source=lib/tpcb.sh
source deploy/bench/lib/tpcb.sh
