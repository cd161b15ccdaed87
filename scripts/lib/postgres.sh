# Sourced by the scripts: a private PostgreSQL cluster under the git-ignored .pg/ folder.
# Usage: pg_up NAME PORT   -> exports PG_CONN (an Npgsql connection string); pg_down NAME
# A new cluster gets the lines of PG_EXTRA_CONF added to its postgresql.conf (profiling: pg_stat_statements, auto_explain).
# Why runuser: PostgreSQL refuses to run as root, and these machines run everything as root.

ROOT_DIR="${ROOT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

# pg_ensure_installed: PostgreSQL, and what every script that starts it needs besides: libgomp1 (LightGbm's native
# library loads it: order risk, churn and purchase intent), curl (waiting for the app, the demo's calls) and openssl
# (the demo's webhook signatures). Only the missing ones are installed, from Debian's packages.
pg_ensure_installed() {
  local missing=()
  pg_bindir >/dev/null || missing+=(postgresql)
  dpkg-query -W -f='${Status}' libgomp1 2>/dev/null | grep -q 'ok installed' || missing+=(libgomp1)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "[pg] installing ${missing[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
}

# The cluster lives under the git-ignored .pg/ of the checkout, unless the postgres user cannot reach it there
# (a checkout below a root-only folder such as /root): then under /var/tmp, one folder per checkout.
pg_data_root() {
  mkdir -p "$ROOT_DIR/.pg"
  if runuser -u postgres -- test -x "$ROOT_DIR/.pg" 2>/dev/null; then echo "$ROOT_DIR/.pg"
  else echo "/var/tmp/pluginapp-pg-$(printf '%s' "$ROOT_DIR" | md5sum | cut -c1-12)"; fi
}

pg_up() {
  local name="$1" port="$2" bin data root
  pg_ensure_installed
  bin="$(pg_bindir)"
  root="$(pg_data_root)"
  mkdir -p "$root"
  data="$root/$name"
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"; mkdir -p "$data"; chown postgres: "$data"; chmod 700 "$data"
    runuser -u postgres -- "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
    cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$data'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
    # Why: profiling a benchmark's database, e.g. PG_EXTRA_CONF="shared_preload_libraries = 'pg_stat_statements'".
    [ -z "${PG_EXTRA_CONF:-}" ] || printf '%s\n' "$PG_EXTRA_CONF" >> "$data/postgresql.conf"
  fi
  chown -R postgres: "$data"
  if ! runuser -u postgres -- "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null
  fi
  local db="pluginapp"
  if ! runuser -u postgres -- "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
    runuser -u postgres -- "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "create database $db" >/dev/null
  fi
  export PG_PORT="$port"
  export PG_CONN="Host=127.0.0.1;Port=$port;Username=postgres;Database=$db;Maximum Pool Size=100"
  echo "[pg] cluster '$name' up on 127.0.0.1:$port"
}

pg_down() {
  local name="$1" bin
  bin="$(pg_bindir)" || return 0
  local data
  data="$(pg_data_root)/$name"
  [ -f "$data/PG_VERSION" ] || return 0
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# pg_reset NAME: stop the cluster and delete it, so the next pg_up starts from an empty one.
pg_reset() {
  pg_down "$1"
  rm -rf "$(pg_data_root)/$1"
}
