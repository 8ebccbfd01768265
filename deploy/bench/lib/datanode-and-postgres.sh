# Sourced by the datanode and coordinator benchmarks: starts an rxc-gtm, an rxc-datanode and a
# fresh PostgreSQL (initdb defaults: fsync on, synchronous_commit on — durable commits, as the
# datanode's) on free loopback ports, and stops them and removes their data when the script exits.
# In: $bench (the script's name, for messages); optionally $extra_bins (more rxc binaries the
# script needs, checked with the others) and $with_coordinator (set: also a second datanode dn2
# and a coordinator coord1 knowing dn1 (primary) and dn2). Out: $bin, $work, $gtm_port,
# $dn_port, $pg_port (and $dn2_port, $coord_port), free_port, wait_port, start_rxc.
bin=${RXC_BIN:-target/release}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
for b in rxc-gtm rxc-datanode ${with_coordinator:+rxc-coordinator} ${extra_bins:-}; do
    [[ -x $bin/$b ]] || { echo "$bench: $bin/$b not built" >&2; exit 1; }
done
work=$(mktemp -d)
chmod 777 "$work"
pids=()
cleanup() {
    kill -INT "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    su postgres -c "$pgbin/pg_ctl -D $work/pg stop -m immediate" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; exit 1; }
# start_rxc PROGRAM NAME PORT: an rxc node (rxc-datanode, rxc-coordinator) named NAME on the GTM,
# data in $work/NAME, log in $work/NAME.log; returns once it listens on PORT.
start_rxc() {
    RUST_LOG=warn "$bin/$1" --node-name "$2" --data-dir "$work/$2" \
        --listen "127.0.0.1:$3" --gtm "127.0.0.1:$gtm_port" 2>"$work/$2.log" &
    pids+=($!)
    wait_port "$3"
}

gtm_port=$(free_port); dn_port=$(free_port); pg_port=$(free_port)
RUST_LOG=warn "$bin/rxc-gtm" --data-dir "$work/gtm" --listen "127.0.0.1:$gtm_port" 2>"$work/gtm.log" &
pids+=($!)
wait_port "$gtm_port"
start_rxc rxc-datanode dn1 "$dn_port"
su postgres -c "$pgbin/initdb -D $work/pg -A trust -U postgres" >/dev/null
su postgres -c "$pgbin/pg_ctl -D $work/pg -o '-p $pg_port -k $work -c listen_addresses=127.0.0.1' -l $work/pg.log start" >/dev/null
wait_port "$pg_port"
if [[ -n ${with_coordinator:-} ]]; then
    dn2_port=$(free_port); coord_port=$(free_port)
    start_rxc rxc-datanode dn2 "$dn2_port"
    start_rxc rxc-coordinator coord1 "$coord_port"
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$coord_port" -U postgres -d postgres \
        -c "CREATE NODE dn1 WITH (TYPE='datanode', HOST='127.0.0.1', PORT=$dn_port, PRIMARY)" \
        -c "CREATE NODE dn2 WITH (TYPE='datanode', HOST='127.0.0.1', PORT=$dn2_port)" \
        -c "SELECT pgxc_pool_reload()" >/dev/null \
        || { echo "$bench: registering the datanodes failed" >&2; exit 1; }
fi
