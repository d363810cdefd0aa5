#!/usr/bin/env bash
# scripts/postgres.sh -- a private PostgreSQL server for weir jobs and tests.
#
#   scripts/postgres.sh start  --dir DIR [--port P]   initdb when needed, start, print the DSN
#   scripts/postgres.sh stop   --dir DIR              pg_ctl stop -m fast (removes nothing)
#   scripts/postgres.sh env    --dir DIR              print DIR/postgres.env (exit 3: not running)
#   scripts/postgres.sh status --dir DIR              exit 0 when running, 3 when not
#
# Everything lives under DIR:
#
#   pgdata/          the cluster (initdb -E UTF8 --no-locale; fsync on)
#   socket/          the server's unix socket directory
#   postgres.log     the server's log (pg_ctl -l), initdb.log
#   postgres.env     PG_DSN=postgresql://USER@127.0.0.1:PORT/weir
#
# The server listens on 127.0.0.1 only, with trust authentication for local
# and loopback connections (initdb --auth-local=trust --auth-host=trust):
# a development fixture, never a server to expose. It runs with fsync on and
# TimeZone UTC. PORT is P, or when P is 0 or absent the port of the last
# start if it is still free, else a free loopback port. A database `weir` is
# created; USER is `postgres` when the script runs as root (initdb refuses
# root, so the server runs as the postgres user), else the current user.
#
# Root and unreachable directories: the server process (user postgres) must
# reach DIR/pgdata. When DIR lies under a directory postgres cannot traverse
# (/root is 0700), or when DIR is so deep that the socket path would pass the
# 107-byte limit of a unix socket, the cluster is put in a fresh
# /tmp/weir-pg.XXXXXX (owned by the server user, 0700) and DIR/pgdata (and
# DIR/postgres.log) are symlinks to it, so every later command finds it
# through DIR. `stop` keeps it; to discard the cluster remove both DIR and
# $(dirname "$(readlink DIR/pgdata)").
#
# `start` is idempotent: when the cluster in DIR is already running it only
# makes sure `weir` exists, rewrites postgres.env and prints the DSN (it
# fails when --port names another port than the running one).
#
# Binaries: $PG_BIN, else `pg_config --bindir`, else the newest
# /usr/lib/postgresql/*/bin, else initdb on PATH.
set -euo pipefail

prog=postgres.sh
cmd=
dir=
port=0
start_tries=5

usage() {
    echo "usage: scripts/postgres.sh start --dir DIR [--port P]"
    echo "       scripts/postgres.sh stop|env|status --dir DIR"
    echo "A private PostgreSQL server in DIR on 127.0.0.1 (see docs/postgres.md)."
}

die() {
    echo "$prog: $*" >&2
    exit 1
}

need_value() {
    [ $# -ge 2 ] || { echo "$prog: $1 needs a value" >&2; usage >&2; exit 2; }
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in
    start|stop|env|status) cmd=$1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$prog: unknown command '$1'" >&2; usage >&2; exit 2 ;;
esac
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) need_value "$@"; dir=$2; shift 2 ;;
        --dir=*) dir=${1#*=}; shift ;;
        --port) need_value "$@"; port=$2; shift 2 ;;
        --port=*) port=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "$prog: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[ -n "$dir" ] || { echo "$prog: --dir is required" >&2; usage >&2; exit 2; }
case "$port" in
    ''|*[!0-9]*) die "--port must be a number, not '$port'" ;;
esac
[ "$port" -le 65535 ] || die "--port must be at most 65535"

# ---- binaries and users ---------------------------------------------------

find_bin() {
    local d
    if [ -n "${PG_BIN:-}" ]; then
        echo "$PG_BIN"
        return
    fi
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return
        fi
    fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then
        echo "$d"
        return
    fi
    d=$(command -v initdb 2>/dev/null || true)
    [ -n "$d" ] || die "PostgreSQL server binaries not found (install postgresql, or set PG_BIN)"
    dirname "$d"
}
bin=$(find_bin)
for b in initdb pg_ctl psql; do
    [ -x "$bin/$b" ] || die "$bin/$b not found (set PG_BIN to the directory of initdb and pg_ctl)"
done

if [ "$(id -u)" -eq 0 ]; then
    pg_user=postgres
    id -u "$pg_user" >/dev/null 2>&1 ||
        die "running as root needs a 'postgres' user to run the server as (initdb refuses root)"
    command -v runuser >/dev/null 2>&1 || die "runuser not found (util-linux)"
else
    pg_user=$(id -un)
fi

# Runs a command as the server's user, from / (a 0700 working directory such
# as /root makes initdb and pg_ctl complain).
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u "$pg_user" -- "$@")
    else
        "$@"
    fi
}

# Gives path to the server's user (root only).
give() {
    if [ "$(id -u)" -eq 0 ]; then
        chown "$pg_user": "$@"
    fi
}

# ---- paths ------------------------------------------------------------------

mkdir -p "$dir" 2>/dev/null || die "cannot create directory '$dir'"
dir=$(cd "$dir" && pwd -P)
env_file=$dir/postgres.env

# The cluster's directory when it exists (following the symlink of the /tmp
# fallback), else empty.
find_data() {
    if [ -d "$dir/pgdata" ]; then
        (cd "$dir/pgdata" && pwd -P)
    fi
}
data=$(find_data)

is_running() {
    [ -n "$data" ] && [ -f "$data/PG_VERSION" ] &&
        as_pg "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1
}

# ---- stop, env, status --------------------------------------------------------

case "$cmd" in
    stop)
        if [ -z "$data" ] || [ ! -f "$data/PG_VERSION" ]; then
            echo "$prog: no cluster in $dir; nothing to stop" >&2
            exit 0
        fi
        if ! is_running; then
            echo "$prog: the server in $dir is not running" >&2
            exit 0
        fi
        as_pg "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null ||
            die "pg_ctl stop failed (see $dir/postgres.log)"
        exit 0 ;;
    env)
        is_running || { echo "$prog: no server running in $dir" >&2; exit 3; }
        [ -f "$env_file" ] || die "$env_file is missing (run start again)"
        cat "$env_file"
        exit 0 ;;
    status)
        if is_running; then
            echo "running: $(sed -n 's/^PG_DSN=//p' "$env_file" 2>/dev/null || true)"
            exit 0
        fi
        echo "not running"
        exit 3 ;;
esac

# ---- start ------------------------------------------------------------------------

# Whether the server's user can reach path (every ancestor traversable).
pg_can_reach() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$pg_user" -- test -x "$1" 2>/dev/null
    else
        test -x "$1"
    fi
}

# A single-quoted postgresql.conf string.
conf_str() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"
}

# Whether something accepts connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if ! port_in_use "$p"; then
            echo "$p"
            return
        fi
    done
    die "no free loopback port found"
}

init_cluster() {
    local home
    home=$dir
    # socket path: <home>/socket/.s.PGSQL.NNNNN must fit in sun_path (108 bytes)
    if ! pg_can_reach "$dir" || [ $(( ${#dir} + 25 )) -gt 107 ]; then
        home=$(mktemp -d /tmp/weir-pg.XXXXXX)
        chmod 700 "$home"
        give "$home"
        echo "$prog: the server cannot use $dir (not reachable by user $pg_user, or too deep" \
             "for a unix socket); the cluster lives in $home, linked from $dir/pgdata" >&2
    fi
    data=$home/pgdata
    mkdir -p "$data" "$home/socket"
    chmod 700 "$data" "$home/socket"
    : >>"$home/postgres.log"
    give "$data" "$home/socket" "$home/postgres.log"
    if [ "$home" != "$dir" ]; then
        ln -sfn "$data" "$dir/pgdata"
        ln -sfn "$home/postgres.log" "$dir/postgres.log"
    fi
    if ! as_pg "$bin/initdb" -D "$data" -U "$pg_user" -E UTF8 --no-locale \
            --auth-local=trust --auth-host=trust >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed (log: $dir/initdb.log)"
    fi
    printf "\n# weir: loopback only, port and socket in weir.conf (scripts/postgres.sh)\n%s\n" \
        "include_if_exists = 'weir.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
}

# Writes pgdata/weir.conf for port $1.
write_conf() {
    local sock
    sock="$(dirname "$data")/socket"
    {
        echo "# written by scripts/postgres.sh on every start"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $1"
        echo "unix_socket_directories = $(conf_str "$sock")"
        echo "fsync = on"
        echo "timezone = 'UTC'"
        echo "log_timezone = 'UTC'"
    } | as_pg tee "$data/weir.conf" >/dev/null
}

conf_port() {
    [ -f "$data/weir.conf" ] || return 0
    sed -n 's/^port = \([0-9][0-9]*\)$/\1/p' "$data/weir.conf" | tail -n 1
}

running_port() {
    # line 4 of postmaster.pid is the port
    sed -n 4p "$data/postmaster.pid"
}

log_file() {
    echo "$(dirname "$data")/postgres.log"
}

start_server() {
    local p=$1 auto=$2 tries=0
    while :; do
        tries=$((tries + 1))
        write_conf "$p"
        if as_pg "$bin/pg_ctl" start -D "$data" -l "$(log_file)" -w -t 60 >/dev/null 2>&1; then
            port=$p
            return 0
        fi
        if [ "$auto" = 1 ] && [ "$tries" -lt "$start_tries" ] &&
            tail -n 20 "$(log_file)" | grep -q "could not bind\|could not create any TCP/IP"; then
            p=$(pick_port)
            continue
        fi
        echo "$prog: the server did not start; the end of $(log_file):" >&2
        tail -n 20 "$(log_file)" >&2 || true
        exit 1
    done
}

if [ -z "$data" ] || [ ! -f "$data/PG_VERSION" ]; then
    [ -z "$data" ] || [ -z "$(ls -A "$data")" ] ||
        die "$dir/pgdata exists but holds no PostgreSQL cluster; remove it or choose another --dir"
    init_cluster
fi

if is_running; then
    rp=$(running_port)
    if [ "$port" -ne 0 ] && [ "$port" != "$rp" ]; then
        die "the server in $dir is already running on port $rp, not $port"
    fi
    port=$rp
else
    if [ "$port" -ne 0 ]; then
        port_in_use "$port" && die "port $port is taken"
        start_server "$port" 0
    else
        prev=$(conf_port)
        if [ -n "$prev" ] && ! port_in_use "$prev"; then
            start_server "$prev" 1
        else
            start_server "$(pick_port)" 1
        fi
    fi
fi

# the database jobs write to
psql_pg() {
    as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$pg_user" "$@"
}
if [ "$(psql_pg -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'weir'")" != 1 ]; then
    psql_pg -d postgres -c "CREATE DATABASE weir" >/dev/null ||
        die "cannot create database weir (see $(log_file))"
fi

dsn="postgresql://$pg_user@127.0.0.1:$port/weir"
printf 'PG_DSN=%s\n' "$dsn" >"$env_file.tmp"
mv -f "$env_file.tmp" "$env_file"
echo "$dsn"
