#!/usr/bin/env bash
# Fan-out of one stentor process: listeners joining at a rate over WebSocket and Ogg, as
# measured by `stentor loadtest` on the same machine. Records on-time share, time to first
# audio, lateness, server CPU per 1 000 listeners and RSS per listener.
# Usage: bench/fanout.sh "1000 5000 19000" [JOIN_RATE] [HOLD_SECONDS]
# Writes bench/results/fanout-DATE.md. (Icecast and a bare write loop come next.)
set -euo pipefail
cd "$(dirname "$0")/.."
counts=${1:-"1000 5000"}
rate=${2:-2000}
hold=${3:-30}
cargo build --release -q --bin stentor
bin=target/release/stentor
hz=$(getconf CLK_TCK)
# NAME (optional) tells runs of one day apart: fanout-DATE-NAME.md.
tag="$(date +%F)${NAME:+-$NAME}"
file="bench/results/fanout-$tag.md"
mkdir -p bench/results
{
  echo "# Fan-out of one stentor process, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr); server and load generator on the same machine."
  echo "Command: \`bench/fanout.sh \"$counts\" $rate $hold\`. Each row: a fresh \`stentor demo\`"
  echo "(release build, 32 kbit/s mix), then \`stentor loadtest --rate $rate --hold $hold\`."
  echo "On time = every frame received, none later than 1 s plus the server's cadence after its"
  echo "earliest delivery to anyone. CPU and RSS are the server's, from /proc, over the run."
  echo
  echo "| transport | listeners | received audio | on time | first audio p50 / p99 ms | worst lateness p99 ms | server CPU s per 1 000 listeners per minute | RSS KiB per listener |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$file"
for transport in ws ogg; do
  for n in $counts; do
    data=$(mktemp -d)
    port=$((20000 + RANDOM % 20000))
    $bin demo ${SERVER_ARGS:-} --bind "127.0.0.1:$port" --data-dir "$data" >"$data/log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    rss0=$(ps -o rss= -p $pid)
    cpu0=$(awk '{print $14+$15}' /proc/$pid/stat)
    t0=$(date +%s.%N)
    plot="bench/results/fanout-$tag-$transport-$n.svg"
    $bin loadtest --url "http://127.0.0.1:$port" --space demo --transport $transport \
      --listeners "$n" --rate "$rate" --hold "$hold" --json "$data/report.json" --plot "$plot" 2>/dev/null | sed 's/^/    /'
    t1=$(date +%s.%N)
    cpu1=$(awk '{print $14+$15}' /proc/$pid/stat)
    rss1=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
    kill $pid
    python3 - "$data/report.json" "$transport" "$n" "$cpu0" "$cpu1" "$hz" "$t0" "$t1" "$rss0" "$rss1" >>"$file" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
transport, n = sys.argv[2], int(sys.argv[3])
cpu = (int(sys.argv[5]) - int(sys.argv[4])) / int(sys.argv[6])
minutes = (float(sys.argv[8]) - float(sys.argv[7])) / 60
rss = (int(sys.argv[10]) - int(sys.argv[9])) / n
fa, late = r["first_audio_ms"], r["worst_late_ms"]
print(f"| {transport} | {n} | {r['admitted']} | {100*r['on_time_share']:.2f}% | {fa['p50']:.0f} / {fa['p99']:.0f} | {late['p99']:.0f} | {cpu / (n/1000) / minutes:.2f} | {rss:.1f} |")
PY
    rm -rf "$data"
  done
done
echo "" >> "$file"
echo "Charts of each run over time: \`fanout-$tag-<transport>-<listeners>.svg\` beside this file." >> "$file"
echo "wrote $file"
cat "$file"
