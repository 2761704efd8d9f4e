#!/usr/bin/env bash
# The admission path under attack, on one machine (loopback only, bounded in time):
#   1. attack while live: LISTENERS listeners in (WebSocket, from 64 loopback networks), then
#      one attack after another for SECONDS each — forged tickets, a ticket flood from one
#      /24, slow-loris connections, malformed WebSocket frames — while a probe times a host's
#      command and a new listener's join (from another network) twice a second.
#   2. flash crowd: CROWD listeners told to join at one start time, following the announced
#      join window; then CROWD that ignore it and come in the same second.
# Usage: bench/attack.sh [LISTENERS] [SECONDS] [CROWD] [SLOWLORIS]
# Writes bench/results/attack-DATE.md. The attack tool runs at nice 10: attack traffic comes
# from other machines, and should not take this one's cores from the server it measures.
set -euo pipefail
cd "$(dirname "$0")/.."
listeners=${1:-5000}
seconds=${2:-20}
crowd=${3:-15000}
slowloris=${4:-8000}
cargo build --release -q --bin stentor
bin=target/release/stentor
file="bench/results/attack-$(date +%F).md"
mkdir -p bench/results
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)

start_server() { # port data -> pid
  $bin demo --bind "127.0.0.1:$1" --data-dir "$2" >"$2/log" 2>&1 &
  echo $!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && break; sleep 0.1; done
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# ---- 1. attack while live ---------------------------------------------------------------
port=$((20000 + RANDOM % 20000))
data="$work/live"; mkdir -p "$data"
pid=$(start_server "$port" "$data")
url="http://127.0.0.1:$port"
attacks=(forged-tickets ticket-flood slowloris bad-frames)
total=$(( seconds * ${#attacks[@]} + 10 ))
rss_before=$(rss_kib "$pid")
$bin loadtest --url "$url" --space demo --listeners "$listeners" --rate 1000 \
  --hold "$((total + 5))" --json "$data/listeners.json" >"$data/listeners.log" 2>&1 &
lt=$!
sleep "$(( listeners / 1000 + 4 ))"
rss_in=$(rss_kib "$pid")
$bin attack --url "$url" --kind probe --seconds "$total" \
  --sources 127.200.0.1-127.200.0.254 --json "$data/probe.json" >/dev/null 2>"$data/probe.log" &
probe=$!
( peak=0; while kill -0 "$probe" 2>/dev/null; do r=$(rss_kib "$pid"); (( r > peak )) && peak=$r; echo "$peak" >"$data/rss_peak"; sleep 1; done ) &
sleep 3
for kind in "${attacks[@]}"; do
  case $kind in
    forged-tickets) args=(--connections 128 --sources 127.66.0.1-127.66.63.254) ;;
    ticket-flood)   args=(--connections 128 --sources 127.66.6.1-127.66.6.254) ;;
    slowloris)      args=(--connections "$slowloris" --sources 127.77.0.1-127.77.31.254) ;;
    bad-frames)     args=(--connections 64 --sources 127.88.0.1-127.88.63.254) ;;
  esac
  echo "attack: $kind for $seconds s" >&2
  nice -n 10 $bin attack --url "$url" --kind "$kind" --seconds "$seconds" "${args[@]}" \
    --json "$data/$kind.json" >/dev/null 2>"$data/$kind.log" || echo "attack $kind failed" >&2
done
wait "$probe" || true
wait "$lt" || true
rss_after=$(rss_kib "$pid")
kill "$pid"; wait "$pid" 2>/dev/null || true

{
  echo "# The admission path under attack, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr); server, listeners, attacker and probe on the same machine."
  echo "Command: \`bench/attack.sh $listeners $seconds $crowd $slowloris\`. Server: \`stentor demo\` with default settings."
  echo
  echo "## Attack while live"
  echo
  echo "$listeners WebSocket listeners joined at 1 000/s from 64 loopback /24s, then stayed through"
  echo "four attacks of $seconds s each, one after another (the attacker at nice 10). Meanwhile the"
  echo "probe, from another network, twice a second: a host's command (\`mute_all\` on a Space of"
  echo "its own, over HTTP) timed to its answer, and a new listener timed from its ticket request"
  echo "to its first audio frame."
  echo
} >"$file"
python3 - "$data" "$listeners" "$rss_before" "$rss_in" "$rss_after" "${attacks[@]}" >>"$file" <<'PY'
import json, sys, os
data, listeners = sys.argv[1], int(sys.argv[2])
rss_before, rss_in, rss_after = (int(x) for x in sys.argv[3:6])
kinds = sys.argv[6:]
peak = int(open(os.path.join(data, "rss_peak")).read().strip() or 0)
r = json.load(open(os.path.join(data, "listeners.json")))
p = json.load(open(os.path.join(data, "probe.json")))
def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")
print("| attack | connections | sent | answers |")
print("|---|---|---|---|")
flags = {"forged-tickets": "128 loops, 64 /24s", "ticket-flood": "128 kept-alive loops, one /24",
         "slowloris": "held at once (peak)", "bad-frames": "64 loops, 64 /24s"}
for k in kinds:
    t = json.load(open(os.path.join(data, f"{k}.json")))
    conns = f"{t['held_peak']} held at once" if k == "slowloris" else flags[k]
    answers = ", ".join(f"{v} {a}" for a, v in sorted(t["answers"].items(), key=lambda x: -x[1]))
    print(f"| {k} | {conns} | {t['attempts']} | {answers} |")
print()
print("| measured | value |")
print("|---|---|")
print(f"| listeners in, on time (every frame, none later than 1 s + cadence) | {r['admitted']} of {listeners}, {100*r['on_time_share']:.2f}% on time, {r['missed']} frames missed |")
c, j = p["control_ms"], p["join_ms"]
print(f"| host's command, ms (n = {len(c)}) | p50 {pct(c,.5):.1f}, p99 {pct(c,.99):.1f}, max {max(c) if c else float('nan'):.1f} |")
print(f"| new listener, ticket to first audio, ms (n = {len(j)}) | p50 {pct(j,.5):.1f}, p99 {pct(j,.99):.1f}, max {max(j) if j else float('nan'):.1f} |")
if p["answers"]:
    print(f"| probe failures | {', '.join(f'{v} {a}' for a, v in p['answers'].items())} |")
print(f"| server RSS, MiB | {rss_before/1024:.0f} before, {rss_in/1024:.0f} with the listeners, peak {peak/1024:.0f} under attack, {rss_after/1024:.0f} after |")
PY
echo >>"$file"

# ---- 2. flash crowd ---------------------------------------------------------------------
flash() { # label, extra loadtest flags
  local label=$1; shift
  local port=$((20000 + RANDOM % 20000)) data="$work/$label"
  mkdir -p "$data"
  local pid; pid=$(start_server "$port" "$data")
  # Waiting clients ask for the status in the ten seconds before the start.
  local at; at=$(python3 -c "import time; print(round(time.time() + 13, 3))")
  $bin loadtest --url "http://127.0.0.1:$port" --space demo --listeners "$crowd" --at "$at" \
    "$@" --hold 20 --json "$data/report.json" >"$data/log.txt" 2>&1 || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$data/report.json" "$label" "$crowd" >>"$file" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); label, n = sys.argv[2], int(sys.argv[3])
fa = r["first_audio_ms"]
failures = sum(r["failures"].values())
t99 = r.get("admitted_99_s")
t99 = "never" if t99 is None else f"{t99:.1f}"
print(f"| {label} | {n} | {r['admitted']} | {r['retries']} | {r['admitted_after_retry']} | "
      f"{t99} | {fa['p50']:.0f} / {fa['p99']:.0f} | {failures} | {100*r['on_time_share']:.2f}% |")
PY
}
{
  echo "## Flash crowd"
  echo
  echo "$crowd listeners, told to join at one start time (13 s after the run begins). *In the"
  echo "window*: each waits a moment drawn from the join window the Space's status announces;"
  echo "*all at once*: they ignore it. Refused joins get 503/429 with a Retry-After and come back."
  echo
  echo "| arrival | listeners | admitted | told to come back | admitted after coming back | 99 % admitted after s | first audio p50 / p99 ms | failed | on time |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >>"$file"
flash "in the window" --follow-window
flash "all at once"
rm -rf "$work"
cat "$file"
