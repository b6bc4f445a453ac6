#!/usr/bin/env bash
# Prints a PostgreSQL URL that answers, for `make run` and `make test`.
#
# If the given URL ($1, default: the local server) answers, it is printed as is.
# Otherwise, only when PG_FALLBACK=1 (the Makefile sets it when you did not
# give DATABASE_URL / TEST_DATABASE_URL yourself) and PostgreSQL's initdb is
# installed, a private cluster is created (once) under ./.data/postgres,
# started on port 54329, and its URL is printed instead. A URL you gave that
# does not answer is an error: a typo in its host must not quietly start a
# private cluster. Messages go to stderr; only the URL goes to stdout.
set -euo pipefail

url="${1:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
fallback="${PG_FALLBACK:-0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
data="$root/.data/postgres"
port=54329

answers() { pg_isready -q -d "$1" -t 3 2>/dev/null; }

if command -v pg_isready >/dev/null && answers "$url"; then
  echo "$url"
  exit 0
fi

if [ "$fallback" != 1 ]; then
  if ! command -v pg_isready >/dev/null; then
    echo "$url" # cannot check without pg_isready: lockstep itself will say if it cannot connect
    exit 0
  fi
  shown="$(printf '%s' "$url" | sed -E 's#(//[^:/@]*):[^@]*@#\1:***@#')"
  echo "PostgreSQL does not answer at $shown: check the host and port in DATABASE_URL (or start PostgreSQL there)." >&2
  echo "(The private cluster under ./.data is used only when DATABASE_URL is not set.)" >&2
  exit 1
fi

bindir=""
if command -v initdb >/dev/null; then
  bindir="$(dirname "$(command -v initdb)")"
else
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "PostgreSQL does not answer at $url and initdb is not installed: install PostgreSQL or set DATABASE_URL." >&2
  exit 1
fi

# initdb and postgres refuse to run as root: run them as the postgres user
# (or nobody) in a folder that user owns — under /tmp when that user cannot
# reach the checkout (a home folder is often closed to others).
as=()
if [ "$(id -u)" = 0 ]; then
  user=postgres
  id "$user" >/dev/null 2>&1 || user=nobody
  as=(runuser -u "$user" --)
  if ! runuser -u "$user" -- test -x "$root"; then
    data="/tmp/lockstep-postgres-$(printf '%s' "$root" | cksum | cut -d' ' -f1)"
  fi
  mkdir -p "$data"
  chown -R "$user" "$data"
  cd /
else
  mkdir -p "$data"
fi

private="postgres://postgres@127.0.0.1:$port/${url##*/}"
private="${private%%\?*}?sslmode=disable"
if answers "$private"; then
  echo "$private"
  exit 0
fi

if [ ! -f "$data/PG_VERSION" ]; then
  echo "PostgreSQL does not answer at $url: creating a private cluster in $data" >&2
  "${as[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
fi
echo "Starting the private PostgreSQL cluster in $data on port $port" >&2
"${as[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
  -o "-p $port -k $data -c listen_addresses=127.0.0.1" start >/dev/null
echo "$private"
