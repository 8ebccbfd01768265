#!/usr/bin/env bash
# A coordinator over two datanodes against PostgreSQL 15 on this machine, side by side in one
# run, with pgbench custom scripts on a hash-distributed table kv (k int PRIMARY KEY, v int) of
# N rows (every statement on rxc goes client -> rxc-coordinator -> one datanode):
#   point-select  SELECT v FROM kv WHERE k = :k             (read-only, autocommit)
#   point-update  UPDATE kv SET v = v + 1 WHERE k = :k      (a durable commit each)
# each with CLIENTS clients, -M simple and -M prepared. The cluster is one rxc-gtm, datanodes dn1
# (primary) and dn2 and coordinator coord1; both sides commit durably (PostgreSQL: initdb
# defaults, fsync on). The rows are loaded on both with the same multi-row INSERT statements
# (1000 rows each, one psql session; the coordinator takes no COPY or INSERT ... SELECT yet).
# After the updates the sum of v must have grown by the number of committed updates on both.
# Builds nothing: run `cargo build --release --workspace` first. Needs initdb/pg_ctl
# (PostgreSQL 15), psql, pgbench, python3.
#
#   deploy/bench/coordinator-bench.sh [CLIENTS] [SECONDS]     (defaults 8 clients, 8 s per run)
#   RXC_BENCH_ROWS=N   rows in kv (default 200000)
#
# Exits nonzero if any pgbench run reports failed transactions or errors, or a check fails.
# Last line: result: <workload>_<mode>_rxc_tps=<f> <workload>_<mode>_pg_tps=<f> ... failed=<int>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
clients=${1:-8}
seconds=${2:-8}
rows=${RXC_BENCH_ROWS:-200000}
batch=1000
bench=coordinator-bench
with_coordinator=1
# shellcheck source=lib/datanode-and-postgres.sh
source deploy/bench/lib/datanode-and-postgres.sh

# psql on a target (rxc = the coordinator, pg = PostgreSQL); stops at the first error.
sql() {
    local port=$coord_port; [[ $1 == pg ]] && port=$pg_port
    shift
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}
die() {
    echo "$bench: $*" >&2
    echo "--- last lines of $work/coord1.log:" >&2
    tail -20 "$work/coord1.log" >&2 || true
    exit 1
}

sql rxc -c "CREATE TABLE kv (k int PRIMARY KEY, v int) DISTRIBUTE BY HASH (k)" \
    || die "CREATE TABLE on the coordinator failed"
sql pg -c "CREATE TABLE kv (k int PRIMARY KEY, v int)"

# Rows (k, k) for k = 1..N, $batch per INSERT statement.
python3 - "$rows" "$batch" >"$work/load.sql" <<'PY'
import sys
n, b = int(sys.argv[1]), int(sys.argv[2])
for lo in range(1, n + 1, b):
    hi = min(lo + b - 1, n)
    print("INSERT INTO kv VALUES " + ",".join(f"({k},{k})" for k in range(lo, hi + 1)) + ";")
PY
for target in rxc pg; do
    start=$(date +%s.%N)
    sql "$target" -f "$work/load.sql" >/dev/null 2>"$work/load-$target.err" \
        || { head -c 600 "$work/load-$target.err" >&2; echo >&2; die "loading $rows rows on $target failed"; }
    [[ $target == pg ]] && sql pg -c "VACUUM ANALYZE kv"
    n=$(sql "$target" -c "SELECT count(*) FROM kv") || die "count(*) on $target failed"
    [[ $n == "$rows" ]] || die "$target holds $n rows, expected $rows"
    printf 'load %d rows on %s: %.1f s\n' "$rows" "$target" "$(python3 -c "print($(date +%s.%N) - $start)")"
done
on_dn1=$(sql rxc -c "EXECUTE DIRECT ON (dn1) 'SELECT count(*) FROM kv'") || die "EXECUTE DIRECT failed"
on_dn2=$(sql rxc -c "EXECUTE DIRECT ON (dn2) 'SELECT count(*) FROM kv'") || die "EXECUTE DIRECT failed"
echo "rxc rows per datanode: dn1=$on_dn1 dn2=$on_dn2"
[[ $((on_dn1 + on_dn2)) == "$rows" && $on_dn1 -gt 0 && $on_dn2 -gt 0 ]] || die "rows not spread over dn1 and dn2"
declare -A sum0
for target in rxc pg; do
    sum0[$target]=$(sql "$target" -c "SELECT sum(v) FROM kv") || die "sum(v) on $target failed"
done

cat >"$work/select.sql" <<SQL
\\set k random(1, $rows)
SELECT v FROM kv WHERE k = :k;
SQL
cat >"$work/update.sql" <<SQL
\\set k random(1, $rows)
UPDATE kv SET v = v + 1 WHERE k = :k;
SQL

summary=()
failed=0
declare -A tps updates=([rxc]=0 [pg]=0)
printf '\n%-14s %-9s %12s %12s %7s\n' workload mode rxc_tps pg_tps ratio
for workload in select update; do
    for mode in simple prepared; do
        for target in rxc pg; do
            port=$coord_port; [[ $target == pg ]] && port=$pg_port
            rc=0
            out=$(pgbench -n -h 127.0.0.1 -p "$port" -U postgres -c "$clients" -j 2 -T "$seconds" \
                -M "$mode" -f "$work/$workload.sql" postgres 2>&1) || rc=$?
            t=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
            f=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out" | head -1)
            p=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out" | head -1)
            if ((rc != 0)) || [[ -z $t || ${f:-0} != 0 ]] || grep -q 'error' <<<"$out"; then
                echo "$bench: point-$workload -M $mode on $target: pgbench exit $rc, failed=${f:-?}" >&2
                grep -m 5 -i 'error' <<<"$out" >&2 || tail -5 <<<"$out" >&2
                f=${f:-0}; failed=$((failed + (f > 0 ? f : 1)))
            fi
            [[ $workload == update ]] && updates[$target]=$((updates[$target] + ${p:-0}))
            tps[$target]=${t:-0}
            summary+=("${workload}_${mode}_${target}_tps=${t:-0}")
        done
        ratio=$(python3 -c "print(f'{${tps[rxc]} / max(${tps[pg]}, 1e-9):.2f}')")
        printf '%-14s %-9s %12s %12s %7s\n' "point-$workload" "$mode" "${tps[rxc]}" "${tps[pg]}" "$ratio"
    done
done

# Every committed update added 1 to one v: the sum grew by exactly the committed updates.
for target in rxc pg; do
    sum1=$(sql "$target" -c "SELECT sum(v) FROM kv") || die "sum(v) on $target failed"
    if ((sum1 - sum0[$target] != updates[$target])); then
        echo "$bench: $target: sum(v) grew by $((sum1 - sum0[$target])), pgbench committed ${updates[$target]} updates" >&2
        failed=$((failed + 1))
    fi
done
echo "updates committed (and sum(v) consistent if failed=0): rxc=${updates[rxc]} pg=${updates[pg]}"
echo "result: ${summary[*]} failed=$failed"
((failed == 0)) || { tail -20 "$work/coord1.log" >&2; exit 1; }
