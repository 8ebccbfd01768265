#!/usr/bin/env bash
# pgbench TPC-B through an rxc coordinator over two datanodes and against PostgreSQL 15, side by
# side in one run on this machine: `pgbench -i -s SCALE` on both (through the coordinator: its
# tables hash-distributed on their primary keys, pgbench_history on its first column), then
# the built-in TPC-B script with CLIENTS clients for SECONDS seconds in -M simple and
# -M prepared, rxc and PostgreSQL alternating. A TPC-B transaction on rxc touches both
# datanodes in most cases: two-phase commit. Both commit durably. Builds nothing: run
# `cargo build --release --workspace` first.
#
#   deploy/bench/coordinator-tpcb.sh [SECONDS] [SCALE]     (defaults 20 s, scale 4)
#   RXC_BENCH_CLIENTS=N   clients (default 8)
#
# Last line: result: tpcb_simple_tps=<f> tpcb_simple_pg_tps=<f> tpcb_simple_ratio=<f>
#                    tpcb_prepared_tps=<f> tpcb_prepared_pg_tps=<f> tpcb_prepared_ratio=<f> failed=<int>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
duration=${1:-20}
scale=${2:-4}
clients=${RXC_BENCH_CLIENTS:-8}
bench=coordinator-tpcb
with_coordinator=1
# shellcheck source=lib/datanode-and-postgres.sh
source deploy/bench/lib/datanode-and-postgres.sh
rxc_port=$coord_port
# shellcheck source=lib/tpcb.sh
source deploy/bench/lib/tpcb.sh
