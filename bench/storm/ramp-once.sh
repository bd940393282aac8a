#!/usr/bin/env bash
# Scenario 2 with a 30 s ramp, one run per server and mode (K=2000, the storm fixture): prints
# the server CPU over the run, its peak RSS and the load generator's result line. Needs
# bench/go/bin/{loadgen,refserver} (built by bench/storm/run.ts). Not yet part of storm/run.ts.
set -u
cd "$(dirname "$0")/../.."
CLK=$(getconf CLK_TCK)
cpu() { awk -v t=$CLK '{print ($14+$15)/t}' /proc/$1/stat; }
for mode in sotw delta; do for srv in weft gcp; do
  port=$((23000 + RANDOM % 1000))
  if [ $srv = weft ]; then node_modules/node/bin/node --import tsx bench/storm/weft-fixture-server.ts --port $port --clusters 100 --endpoints 10 --listeners 20 > /tmp/rs.out 2>&1 &
  else bench/go/bin/refserver -port $port -clusters 100 -endpoints 10 -listeners 20 > /tmp/rs.out 2>&1 & fi
  pid=$!
  for i in $(seq 1 60); do grep -q ready /tmp/rs.out && break; sleep 0.5; done
  c0=$(cpu $pid)
  line=$(bench/go/bin/loadgen -target 127.0.0.1:$port -clients 2000 -mode $mode -ramp 30s -timeout 120s | head -1)
  c1=$(cpu $pid)
  hwm=$(grep VmHWM /proc/$pid/status | awk '{print $2/1024}')
  echo "$mode $srv cpu=$(echo "$c1 - $c0" | bc) hwmMB=$hwm $line"
  kill $pid; wait $pid 2>/dev/null
done; done
