#!/usr/bin/env bash
# Builds the whole rxc workspace and runs every test: the README's test command.
#
# Works on a fresh Debian/Ubuntu machine: installs what the build needs when it is missing
# (clang and libclang-dev for RocksDB's bindings, a C toolchain, psql for the end-to-end tests,
# the PostgreSQL 15 server the .slt suites check rxc against),
# calling apt only when something is missing. Uses cargo-nextest when installed, else cargo test.
# Extra arguments go to the test runner, e.g. `tests/run.sh -p rxc-common`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

# --- prerequisites --------------------------------------------------------------------------
step "Checking build prerequisites"

missing=()
have_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v clang >/dev/null 2>&1 || missing+=(clang)
if command -v dpkg-query >/dev/null 2>&1 && ! have_package libclang-dev; then
    missing+=(libclang-dev)
fi
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# The .slt suites compare rxc with a PostgreSQL 15 server they start themselves.
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || missing+=(postgresql-15)
if [[ -d "$HOME/.cargo/bin" && ":$PATH:" != *":$HOME/.cargo/bin:"* ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found: install the Rust toolchain (rustup) first" >&2
    exit 1
fi

if ((${#missing[@]})); then
    echo "missing: ${missing[*]}"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: apt-get not found; install ${missing[*]} by hand" >&2
        exit 1
    fi
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "error: not root and no sudo; install ${missing[*]} by hand" >&2
            exit 1
        fi
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "all present"
fi

cargo --version

# --- build ----------------------------------------------------------------------------------
# One profile only, release: the quickstart needs release binaries anyway, so the tests use the
# same build (RocksDB's C++ is compiled once, not twice, and the build fits a small disk).
step "cargo build --release --workspace --all-targets"
cargo build --release --workspace --all-targets

# --- test -----------------------------------------------------------------------------------
status=0
if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --release --workspace --no-fail-fast"
    cargo nextest run --release --workspace --no-fail-fast "$@" || status=$?
    # nextest does not run doc tests; run them too unless the caller picked tests.
    if (($# == 0)); then
        step "cargo test --release --workspace --doc"
        cargo test --release --workspace --doc || status=$?
    fi
else
    step "cargo test --release --workspace --no-fail-fast (cargo-nextest not installed)"
    cargo test --release --workspace --no-fail-fast "$@" || status=$?
fi
# The README's other command: the quickstart builds, starts, prints how to connect, stops cleanly.
if (($# == 0)); then
    step "quickstart smoke test (deploy/quickstart.sh)"
    qs_dir=$(mktemp -d)
    RXC_QUICKSTART_SECONDS=10 RXC_QUICKSTART_BUILT=1 ./deploy/quickstart.sh "$qs_dir/cluster" \
        >"$qs_dir/out.txt" 2>&1 &
    qs_pid=$!
    # While it runs, connect to the datanode it printed with psql.
    dn_port=""
    # (The release binaries are built already, above.)
    for _ in $(seq 1 3600); do
        dn_port=$(sed -n 's/^  datanode dn1 *127\.0\.0\.1:\([0-9]*\).*/\1/p' "$qs_dir/out.txt")
        [[ -n "$dn_port" ]] && break
        kill -0 "$qs_pid" 2>/dev/null || break
        sleep 0.5
    done
    qs_sql=""
    qs_coord=""
    if [[ -n "$dn_port" ]]; then
        qs_sql=$(psql -X -A -t -h 127.0.0.1 -p "$dn_port" -U postgres -d postgres \
            -c "CREATE TABLE quickstart (k int PRIMARY KEY, v text)" \
            -c "INSERT INTO quickstart VALUES (1, 'rxc')" \
            -c "SELECT v FROM quickstart WHERE k = 1" 2>&1 | tail -1) || true
        # And through the coordinator: a table over both datanodes.
        coord_port=$(sed -n 's/^  coordinator coord1 *127\.0\.0\.1:\([0-9]*\).*/\1/p' "$qs_dir/out.txt")
        qs_coord=$(psql -X -q -A -t -h 127.0.0.1 -p "$coord_port" -U postgres -d postgres \
            -c "CREATE TABLE spread (k int PRIMARY KEY, v text)" \
            -c "INSERT INTO spread VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')" \
            -c "SELECT v FROM spread ORDER BY k" 2>&1 | tr -d '\n') || true
    fi
    if wait "$qs_pid" && [[ "$qs_sql" == "rxc" && "$qs_coord" == "abcd" ]] &&
        grep -q "rxc quickstart stopped" "$qs_dir/out.txt"; then
        echo "quickstart: ok (psql on the datanode answered '$qs_sql', on the coordinator '$qs_coord')"
    else
        echo "quickstart: FAILED (psql said: $qs_sql / $qs_coord)"; cat "$qs_dir/out.txt"; status=1
    fi
    rm -rf "$qs_dir"
fi

if ((status)); then
    step "Some tests FAILED"
    exit "$status"
fi

step "All tests passed"
