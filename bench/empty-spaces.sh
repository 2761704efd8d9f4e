#!/usr/bin/env bash
# CPU of N empty live Spaces (nobody sounding, nobody listening): a server, N Spaces started
# (spread over hosts and loopback addresses), then the server's CPU over SECONDS.
# Usage: bench/empty-spaces.sh BINARY PORT [N] [SECONDS]
set -euo pipefail
bin=$1; port=$2; n=${3:-40}; seconds=${4:-20}
data=$(mktemp -d)
$bin serve --bind 127.0.0.1:$port --data-dir "$data" >"$data/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
S=http://127.0.0.1:$port/api/v1
for i in $(seq $n); do
  h=$(( (i - 1) / 2 )); ip=127.0.60.$((h + 1))
  if (( (i - 1) % 2 == 0 )); then
    TOKEN=$(curl -s --interface $ip $S/accounts -H 'content-type: application/json' -d "{\"handle\":\"host$h\",\"password\":\"password-1\"}" | sed 's/.*"token":"\([^"]*\)".*/\1/')
  fi
  SPACE=$(curl -s --interface $ip $S/spaces -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "{\"title\":\"empty $i\"}" | sed 's/.*"id":"\([^"]*\)".*/\1/')
  curl -s --interface $ip -o /dev/null -w '' $S/spaces/$SPACE/commands -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"cmd":"start"}'
done
sleep 2
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
sleep $seconds
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
live=$(curl -s $S/spaces | grep -o '"state":"live"' | wc -l)
hz=$(getconf CLK_TCK)
echo "live=$live cpu_percent_of_a_core=$(echo "scale=2; ($t1 - $t0) * 100 / $hz / $seconds" | bc)"
kill $pid; wait $pid 2>/dev/null || true
rm -rf "$data"
