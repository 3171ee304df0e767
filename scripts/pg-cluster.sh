#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback, for the tests on PostgreSQL.
#   scripts/pg-cluster.sh start DIR PORT   initdb in DIR (made if missing; as root, its parent
#                                          must be open to the postgres user, e.g. /tmp),
#                                          start on 127.0.0.1:PORT
#   scripts/pg-cluster.sh restart DIR      stop it (fast) and start it again, same port
#   scripts/pg-cluster.sh stop DIR         stop it (the caller removes DIR)
# Prints nothing on success but the store URL base (postgres://casebot@127.0.0.1:PORT).
# The server refuses to run as root: as root, it runs as the postgres user.
# fsync is off: the cluster lives for one test run and never survives a crash.
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "error: no PostgreSQL server (apt-get install postgresql)" >&2; exit 1; }
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
start)
    dir=$2 port=$3
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U casebot -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c full_page_writes=off" \
        start >/dev/null
    echo "postgres://casebot@127.0.0.1:$port"
    ;;
restart)
    as_owner "$bin/pg_ctl" -D "$2/data" -l "$2/server.log" -m fast -w -t 60 restart >/dev/null
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$2/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 start DIR PORT | restart DIR | stop DIR" >&2
    exit 2
    ;;
esac
