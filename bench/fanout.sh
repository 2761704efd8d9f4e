#!/usr/bin/env bash
# Fan-out side by side on one machine, measured by the same `stentor loadtest`:
#   stentor-ws   stentor, WebSocket listeners
#   stentor-ogg  stentor, Ogg listeners
#   bare-ogg     bare write loop (crates/loadtest/examples/bare_loop.rs) at stentor's cadence
#   icecast-ogg  Icecast 2 fed the same 32 kbit/s CBR Opus by ffmpeg (one 20 ms packet a page)
# Usage: bench/fanout.sh "1000 5000 10000 19000" "500 2000" [HOLD_SECONDS] [SERVERS]
# Env: NAME tells runs of one day apart (fanout-DATE-NAME.md); SERVER_ARGS go to stentor.
# Writes bench/results/fanout-DATE[-NAME].md and one SVG chart per run beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=${1:-"1000 5000"}
rates=${2:-"2000"}
hold=${3:-30}
servers=${4:-"stentor-ws stentor-ogg bare-ogg icecast-ogg"}
if [[ " $servers " == *" icecast-ogg "* ]]; then
  for tool in icecast2 ffmpeg; do
    command -v "$tool" >/dev/null || {
      echo "fanout.sh: $tool is needed for icecast-ogg (apt-get install icecast2 ffmpeg), or leave icecast-ogg out" >&2
      exit 1
    }
  done
fi
cargo build --release -q --bin stentor
cargo build --release -q -p stentor-loadtest --example bare_loop
bin=target/release/stentor
bare=target/release/examples/bare_loop
hz=$(getconf CLK_TCK)
tag="$(date +%F)${NAME:+-$NAME}"
file="bench/results/fanout-$tag.md"
mkdir -p bench/results
ulimit -n "$(ulimit -Hn)"
# Steady state: from 2 s after the last join for `window` seconds.
window=$((hold > 8 ? hold - 6 : 2))

{
  echo "# Fan-out side by side, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr); servers and load generator on the same machine."
  echo "Command: \`bench/fanout.sh \"$counts\" \"$rates\" $hold \"$servers\"\`${SERVER_ARGS:+ with SERVER_ARGS=\`$SERVER_ARGS\`}."
  echo "Each row: a fresh server, then \`stentor loadtest --rate R --hold $hold\` (32 kbit/s)."
  echo "On time = every frame received, none later than 1 s plus the server's cadence after its"
  echo "earliest delivery to anyone. CPU = the server's, from /proc: steady = over ${window} s from"
  echo "2 s after the last join, above the server's idle CPU (3 s before the run, nobody"
  echo "listening), as % of one core per 1 000 listeners served (received audio); run = whole run, CPU"
  echo "seconds per 1 000 listeners per minute. RSS per listener = resident memory in the steady"
  echo "window minus before the run, divided by the listeners (peak: VmHWM instead)."
  echo "bare-ogg writes at the cadence stentor-ogg chose for the same audience. A WebSocket"
  echo "listener asks for a ticket first (a fresh connection, as a browser does); its first audio"
  echo "is counted from that request."
  echo
  echo "| server | listeners | joins/s | cadence ms | received audio | on time | ticket p50 / p99 ms | first audio p50 / p99 ms | worst lateness p99 ms | idle CPU % | steady CPU %/1000 | run CPU s/1000/min | RSS B/listener (peak) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} > "$file"

start_server() { # kind port data -> prints pid
  local kind=$1 port=$2 data=$3 cadence=$4
  case $kind in
    stentor-*)
      $bin demo ${SERVER_ARGS:-} --bind "127.0.0.1:$port" --data-dir "$data" >"$data/log" 2>&1 &
      echo $!
      for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done ;;
    bare-ogg)
      $bare "127.0.0.1:$port" "$cadence" >/dev/null 2>"$data/log" &
      echo $!
      sleep 0.3 ;;
    icecast-ogg)
      sed -e "s|@PORT@|$port|; s|@DIR@|$data|g" bench/icecast.xml >"$data/icecast.xml"
      icecast2 -c "$data/icecast.xml" >"$data/log" 2>&1 &
      echo $!
      sleep 1
      ffmpeg -nostdin -v error -re -f lavfi -i "sine=frequency=440:sample_rate=48000" -ac 1 \
        -c:a libopus -b:a 32k -vbr off -frame_duration 20 -page_duration 20000 \
        -content_type audio/ogg -f ogg "icecast://source:stentor-bench@127.0.0.1:$port/live.opus" \
        >"$data/ffmpeg.log" 2>&1 &
      echo $! >"$data/ffmpeg.pid"
      sleep 2 ;;
  esac
}

cpu_of() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_of() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

for rate in $rates; do
  for n in $counts; do
    cadence=20
    for kind in $servers; do
      data=$(mktemp -d)
      chmod 777 "$data"
      port=$((20000 + RANDOM % 20000))
      pid=$(start_server "$kind" "$port" "$data" "$cadence")
      case $kind in
        stentor-ws) args=(--url "http://127.0.0.1:$port" --space demo --transport ws) ;;
        stentor-ogg) args=(--url "http://127.0.0.1:$port" --space demo --transport ogg) ;;
        *) args=(--url "http://127.0.0.1:$port/live.opus" --transport ogg) ;;
      esac
      # What the server costs with nobody listening (the demo's speaker and mixer, Icecast's
      # source), so that per-listener figures count the fan-out alone.
      idle0=$(cpu_of "$pid"); sleep 3; idle1=$(cpu_of "$pid")
      rss0=$(rss_of "$pid"); cpu0=$(cpu_of "$pid"); t0=$(date +%s.%N)
      plot="bench/results/fanout-$tag-$kind-$n-$rate.svg"
      $bin loadtest "${args[@]}" --listeners "$n" --rate "$rate" --hold "$hold" \
        --json "$data/report.json" --plot "$plot" >"$data/loadtest.log" 2>&1 &
      lt=$!
      # Joins take n/rate seconds after the load generator starts (about 1 s).
      sleep "$(python3 -c "print(1 + $n / $rate + 2)")"
      cpu1=$(cpu_of "$pid"); sleep "$window"; cpu2=$(cpu_of "$pid"); rss1=$(rss_of "$pid")
      wait $lt || true
      t1=$(date +%s.%N); cpu3=$(cpu_of "$pid"); hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
      kill "$pid"; [ -f "$data/ffmpeg.pid" ] && kill "$(cat "$data/ffmpeg.pid")" || true
      wait "$pid" 2>/dev/null || true
      sed 's/^/    /' "$data/loadtest.log" | tail -7
      python3 - "$data/report.json" "$kind" "$n" "$rate" "$hz" "$window" "$cpu0" "$cpu1" "$cpu2" "$cpu3" \
        "$t0" "$t1" "$rss0" "$rss1" "$hwm" "$cadence" "$idle0" "$idle1" >>"$file" <<'PY'
import json, sys
a = sys.argv
r = json.load(open(a[1]))
kind, n, rate, hz, window = a[2], int(a[3]), a[4], int(a[5]), float(a[6])
cpu0, cpu1, cpu2, cpu3 = (int(x) for x in a[7:11])
minutes = (float(a[12]) - float(a[11])) / 60
rss0, rss1, hwm = (int(x) for x in a[13:16])
cadence = r["cadence_ms"] if kind.startswith("stentor") else float(a[16])
idle = (int(a[18]) - int(a[17])) / hz / 3 * 100
# Per listener actually served: a server that lost some has fewer to write to.
served = max(r["admitted"], 1)
steady = ((cpu2 - cpu1) / hz / window * 100 - idle) / (served / 1000)
run = (cpu3 - cpu0) / hz / (served / 1000) / minutes
fa, late = r["first_audio_ms"], r["worst_late_ms"]
tk = r.get("ticket_ms", {"p50": 0, "p99": 0, "max": 0})
ticket = f"{tk['p50']:.0f} / {tk['p99']:.0f}" if tk["max"] > 0 else "–"
print(f"| {kind} | {n} | {rate} | {cadence:.0f} | {r['admitted']} | {100*r['on_time_share']:.2f}% | "
      f"{ticket} | {fa['p50']:.0f} / {fa['p99']:.0f} | {late['p99']:.0f} | {idle:.1f} | {steady:.2f} | {run:.2f} | "
      f"{(rss1-rss0)*1024/n:.0f} ({(hwm-rss0)*1024/n:.0f}) |")
PY
      if [ "$kind" = stentor-ogg ]; then
        cadence=$(python3 -c "import json; print(max(20, int(json.load(open('$data/report.json'))['cadence_ms'])))")
      fi
      tail -1 "$file"
      rm -rf "$data"
    done
  done
done
echo "" >> "$file"
echo "Charts of each run over time: \`fanout-$tag-<server>-<listeners>-<joins per second>.svg\` beside this file." >> "$file"
echo "wrote $file"
