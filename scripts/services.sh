#!/usr/bin/env bash
# Make sure a Redis server and a PostgreSQL server are reachable for the tests and the demo,
# starting throwaway ones (and installing them from Debian's packages when missing) if not;
# for the tests, also Debian's Chromium (the status page's browser test drives it).
# Prints `export` lines for the URLs to use; the caller evals them:
#   eval "$(scripts/services.sh)"          # Redis, PostgreSQL and Chromium (the tests)
#   eval "$(scripts/services.sh redis)"    # Redis only (the demo)
# Progress goes to stderr. Throwaway servers live under ${FEATURESTORE_SERVICES_DIR:-/tmp/featurestore-services}.
set -euo pipefail

dir=${FEATURESTORE_SERVICES_DIR:-/tmp/featurestore-services}
mkdir -p "$dir"
say() { echo "services: $*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    say "cannot install $* (not root): install it, or point the tests at a server (see README)"
    exit 1
  fi
  say "installing $* from Debian's packages"
  if [ ! -f "$dir/.apt-updated" ]; then apt-get update -qq >&2 && touch "$dir/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

redis_up() { redis-cli -u "$1" ping 2>/dev/null | grep -q PONG; }

wanted=${*:-redis postgresql chromium jvm}

# ---- Redis ---------------------------------------------------------------------------------
redis_url=${FEATURESTORE_TEST_REDIS_URL:-${FEATURESTORE_REDIS_URL:-redis://127.0.0.1:6379/0}}
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server redis-tools
if ! redis_up "$redis_url"; then
  port=6390
  redis_url="redis://127.0.0.1:$port/0"
  if ! redis_up "$redis_url"; then
    say "no Redis reachable: starting a throwaway one on port $port"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" >&2
    for _ in $(seq 50); do redis_up "$redis_url" && break; sleep 0.1; done
    redis_up "$redis_url" || { say "Redis did not start: see $dir/redis.log"; exit 1; }
  fi
fi
say "Redis at $redis_url"
echo "export FEATURESTORE_TEST_REDIS_URL=$redis_url FEATURESTORE_REDIS_URL=$redis_url"
case " $wanted " in *" postgresql "*) ;; *) exit 0 ;; esac

# ---- PostgreSQL ----------------------------------------------------------------------------
# The documented form, postgresql:// without a driver (the package opens it with psycopg2, the
# postgres extra's driver); psql reads the same URL. A URL naming a driver (postgresql+x://)
# is probed without it.
pg_url=${FEATURESTORE_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}
pg_up() { local url=$1; [[ $url == postgresql+* ]] && url="postgresql://${url#*://}"; psql "$url" -Atqc 'select 1' >/dev/null 2>&1; }
command -v psql >/dev/null || apt_install postgresql postgresql-client
if ! pg_up "$pg_url"; then
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$bin" ] || { apt_install postgresql; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); }
  port=5439
  pg_url="postgresql://postgres@127.0.0.1:$port/postgres"
  if ! pg_up "$pg_url"; then
    say "no PostgreSQL reachable: starting a throwaway cluster on port $port"
    data="$dir/pg"
    owner=$(id -un)
    if [ "$(id -u)" = 0 ]; then owner=postgres; id postgres >/dev/null 2>&1 || useradd -r postgres; fi
    rm -rf "$data" && mkdir -p "$data" && chown "$owner" "$data" "$dir"
    run_as() { if [ "$(id -u)" = 0 ]; then su "$owner" -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
    run_as "$bin/initdb -D $data -A trust -U postgres" >/dev/null
    run_as "$bin/pg_ctl -D $data -l $dir/pg.log -o '-p $port -k $dir -c listen_addresses=127.0.0.1' -w start" >&2
    pg_up "$pg_url" || { say "PostgreSQL did not start: see $dir/pg.log"; exit 1; }
  fi
fi
say "PostgreSQL at $pg_url"
echo "export FEATURESTORE_TEST_PG_URL=$pg_url"
case " $wanted " in *" chromium "*) ;; *) exit 0 ;; esac

# ---- Chromium (headless, for tests/test_status_page.py) ------------------------------------
chromium=${FEATURESTORE_TEST_CHROMIUM:-$(command -v chromium || true)}
[ -n "$chromium" ] || { apt_install chromium; chromium=$(command -v chromium); }
say "Chromium at $chromium"
echo "export FEATURESTORE_TEST_CHROMIUM=$chromium"
case " $wanted " in *" jvm "*) ;; *) exit 0 ;; esac

# ---- Java 17 and Maven (the engine tier: Spark with delta-spark, jars by Maven coordinates) ---
command -v java >/dev/null || apt_install openjdk-17-jdk-headless
command -v mvn >/dev/null || apt_install maven
jars=$("$(dirname "$0")/delta-jars.sh")  # fetched once, then cached
say "Java $(java -version 2>&1 | head -n 1 | cut -d'"' -f2), delta-spark jars $jars"
