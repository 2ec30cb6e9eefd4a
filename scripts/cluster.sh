#!/usr/bin/env bash
# Starts a local 3-broker cluster: every broker runs an etcd member (one
# quorum of three) and replicates Kafka partitions. Ctrl-C stops all three
# (SIGTERM: controlled shutdown). Data and logs: ./data/cluster/broker-N.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SEDIMENT:-./bin/sediment}
base=./data/cluster
initial="1=http://127.0.0.1:2380,2=http://127.0.0.1:2382,3=http://127.0.0.1:2384"
pids=()
stop() {
  echo "stopping brokers (controlled shutdown)"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT
for n in 1 2 3; do
  mkdir -p "$base/broker-$n"
  "$bin" serve --node-id "$n" --data-dir "$base/broker-$n" \
    --listen "127.0.0.1:$((9091 + n))" --http "127.0.0.1:$((9643 + n))" \
    --meta-client-listen "127.0.0.1:$((2377 + 2 * n))" --meta-peer-listen "127.0.0.1:$((2378 + 2 * n))" \
    --meta-initial-cluster "$initial" --default-replication-factor 3 --min-insync-replicas 2 \
    >"$base/broker-$n.log" 2>&1 &
  pids+=($!)
  echo "broker $n: kafka 127.0.0.1:$((9091 + n)), http 127.0.0.1:$((9643 + n)), log $base/broker-$n.log"
done
echo "bootstrap servers: 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 (Ctrl-C stops the cluster)"
wait -n "${pids[@]}" || { echo "a broker exited; see its log"; exit 1; }
