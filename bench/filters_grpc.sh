#!/bin/bash
# 1M × 128-d catalog with payload fields through the pipeline, then filtered searches over gRPC
# (BENCHMARKS.md, "Filtered search"). Needs `cargo build --release -p skye`; usage: bash bench/filters_grpc.sh [DATA_DIR]
set -e
cd "$(dirname "$0")/.."
D=${1:-/tmp/bdf}
rm -rf $D
./target/release/skye --data-dir $D bench ingest --vectors 1000000 --dim 128 --payload
APP_NAME=bench ./target/release/skye --data-dir $D standalone > /tmp/bdf-server.log 2>&1 &
SERVER=$!
for i in $(seq 1 120); do curl -sf http://127.0.0.1:9090/health >/dev/null && break; sleep 1; done
run() { echo "== $1"; shift; ./target/release/skye bench grpc --entity bench --model m --variant v --dim 128 --concurrency 2 --duration 10 --distinct 0 "$@"; }
run "unfiltered"
run "cat IN 50 values (50 %)" --filter "cat:IN:$(seq -s'|' -f 'c%g' 0 49)"
run "cat IN 10 values (10 %)" --filter "cat:IN:$(seq -s'|' -f 'c%g' 0 9)"
run "cat IN 1 value (1 %)" --filter "cat:IN:c7"
run "shop IN 10 values (0.1 %)" --filter "shop:IN:$(seq -s'|' -f 's%g' 0 9)"
run "shop IN 1 value (0.01 %)" --filter "shop:IN:s42"
run "AND of two at 4 %: cat IN 40 values, price < 1000" --filter "cat:IN:$(seq -s'|' -f 'c%g' 0 39)" --filter "price:LT:1000"
run "AND of two at 1 %: cat IN 10 values, price < 1000" --filter "cat:IN:$(seq -s'|' -f 'c%g' 0 9)" --filter "price:LT:1000"
run "AND of three at 1 %: cat IN 20, shop IN 1000, price < 5000" --filter "cat:IN:$(seq -s'|' -f 'c%g' 0 19)" --filter "shop:IN:$(seq -s'|' -f 's%g' 0 999)" --filter "price:LT:5000"
run "price < 1000 (10 %)" --filter "price:LT:1000"
kill $SERVER; wait $SERVER || true
rm -rf $D
