#!/usr/bin/env bash
# The admission path under attack, on one machine (loopback only, bounded in time):
#   1. attack while live: LISTENERS listeners in (WebSocket, from 64 loopback networks), then
#      one attack after another for SECONDS each — forged tickets, a ticket flood from one
#      /24, slow-loris connections, malformed WebSocket frames — and then all four at once,
#      while a probe times a host's command and a new listener's join (from another network)
#      ten times a second.
#   2. flash crowd: CROWD listeners told to join at one start time, following the announced
#      join window; then CROWD that ignore it and come in the same second.
# Usage: bench/attack.sh [LISTENERS] [SECONDS] [CROWD] [SLOWLORIS]
# Writes bench/results/attack-DATE[-NAME].md. SERVER=path serves with another build of
# stentor (an earlier commit's, to compare in one run) while this build's client measures;
# CROWD 0 leaves out the flash crowd. The attack tool runs at nice 10: attack traffic comes
# from other machines, and should not take this one's cores from the server it measures.
set -euo pipefail
cd "$(dirname "$0")/.."
listeners=${1:-5000}
seconds=${2:-20}
crowd=${3:-15000}
slowloris=${4:-8000}
cargo build --release -q --bin stentor
bin=target/release/stentor
server=${SERVER:-$bin}
file="bench/results/attack-$(date +%F)${NAME:+-$NAME}.md"
mkdir -p bench/results
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)

start_server() { # port data -> pid
  $server demo --bind "127.0.0.1:$1" --data-dir "$2" >"$2/log" 2>&1 &
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
phases=("${attacks[@]}" together)
total=$(( seconds * ${#phases[@]} + 15 ))
rss_before=$(rss_kib "$pid")
$bin loadtest --url "$url" --space demo --listeners "$listeners" --rate 1000 \
  --hold "$total" --json "$data/listeners.json" >"$data/listeners.log" 2>&1 &
lt=$!
sleep "$(( listeners / 1000 + 4 ))"
rss_in=$(rss_kib "$pid")
( peak=0; while kill -0 "$lt" 2>/dev/null; do r=$(rss_kib "$pid"); (( r > peak )) && peak=$r; echo "$peak" >"$data/rss_peak"; sleep 1; done ) &
attack() { # kind json
  local args
  case $1 in
    forged-tickets) args=(--connections 128 --sources 127.66.0.1-127.66.63.254) ;;
    ticket-flood)   args=(--connections 128 --sources 127.66.6.1-127.66.6.254) ;;
    slowloris)      args=(--connections "$slowloris" --sources 127.77.0.1-127.77.31.254) ;;
    bad-frames)     args=(--connections 64 --sources 127.88.0.1-127.88.63.254) ;;
  esac
  nice -n 10 $bin attack --url "$url" --kind "$1" --seconds "$seconds" "${args[@]}" \
    --json "$2" >/dev/null 2>"$2.log" || echo "attack $1 failed" >&2
}
for phase in "${phases[@]}"; do
  echo "attack: $phase for $seconds s" >&2
  # The probe, from a network of its own, for the length of the phase.
  $bin attack --url "$url" --kind probe --seconds "$seconds" \
    --sources 127.200.0.1-127.200.0.254 --json "$data/probe-$phase.json" >/dev/null 2>"$data/probe-$phase.log" &
  probe=$!
  if [ "$phase" = together ]; then
    pids=()
    for kind in "${attacks[@]}"; do attack "$kind" "$data/together-$kind.json" & pids+=($!); done
    wait "${pids[@]}" || true
  else
    attack "$phase" "$data/$phase.json"
  fi
  wait "$probe" || true
done
wait "$lt" || true
rss_after=$(rss_kib "$pid")
kill "$pid"; wait "$pid" 2>/dev/null || true

{
  echo "# The admission path under attack, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr); server, listeners, attacker and probe on the same machine."
  echo "Command: \`${SERVER:+SERVER=$SERVER }bench/attack.sh $listeners $seconds $crowd $slowloris\`. Server: \`stentor demo\` with default settings."
  echo "Server build: ${SERVER:-the same} (the client: $(git rev-parse --short HEAD))."
  echo
  echo "## Attack while live"
  echo
  echo "$listeners WebSocket listeners joined at 1 000/s from 64 loopback /24s, then stayed through"
  echo "four attacks of $seconds s each, one after another, then all four at once for $seconds s (the"
  echo "attacker at nice 10). In each phase the probe, from another network, ten times a second: a"
  echo "host's command (\`mute_all\` on a Space of its own, over HTTP) timed to its answer, and a"
  echo "new listener timed from its ticket request to its first audio frame; and, beside the"
  echo "command, \`GET /healthz\` on the host's connection: what any request cost at that moment."
  echo "\"In the command task\" is the server's own histogram of the same commands, from queued to"
  echo "outcome (\`stentor_command_seconds\`, read before and after the phase; bucket bounds)."
  echo
} >"$file"
python3 - "$data" "$listeners" "$rss_before" "$rss_in" "$rss_after" "${attacks[@]}" >>"$file" <<'PY'
import json, sys, os
data, listeners = sys.argv[1], int(sys.argv[2])
rss_before, rss_in, rss_after = (int(x) for x in sys.argv[3:6])
kinds = sys.argv[6:]
peak = int(open(os.path.join(data, "rss_peak")).read().strip() or 0)
r = json.load(open(os.path.join(data, "listeners.json")))
def load(name):
    return json.load(open(os.path.join(data, name)))
def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")
def spread(xs):
    return f"{pct(xs, .5):.1f} / {pct(xs, .99):.1f} / {max(xs) if xs else float('nan'):.1f}"
how = {"forged-tickets": "128 loops, 64 /24s", "ticket-flood": "128 kept-alive loops, one /24",
       "slowloris": "connections held at once (peak)", "bad-frames": "64 loops, 64 /24s"}
print("| phase | attack | how | sent | answers | host's command p50 / p99 / max ms | of it in the command task p50 / p99 ≤ ms | new listener to audio p50 / p99 / max ms | /healthz p50 / p99 / max ms |")
print("|---|---|---|---|---|---|---|---|---|")
for phase in kinds + ["together"]:
    p = load(f"probe-{phase}.json")
    inside = p.get("command_inside_ms")
    inside = f"{inside[0]:g} / {inside[1]:g}" if inside else "not measured"
    probe = f"{spread(p['control_ms'])} | {inside} | {spread(p['join_ms'])} | {spread(p.get('healthz_ms', []))}"
    if p["answers"]:
        probe += " (probe failures: " + ", ".join(f"{v} {a}" for a, v in p["answers"].items()) + ")"
    for k in (kinds if phase == "together" else [phase]):
        t = load(f"together-{k}.json" if phase == "together" else f"{k}.json")
        conns = f"{t['held_peak']} held at once" if k == "slowloris" else how[k]
        answers = ", ".join(f"{v} {a}" for a, v in sorted(t["answers"].items(), key=lambda x: -x[1]))
        print(f"| {phase} | {k} | {conns} | {t['attempts']} | {answers} | {probe} |")
print()
print("| measured over the whole run | value |")
print("|---|---|")
print(f"| listeners in, on time (every frame, none later than 1 s + cadence) | {r['admitted']} of {listeners}, {100*r['on_time_share']:.2f}% on time, {r['missed']} frames missed, {r['stalls']} stalls |")
print(f"| server RSS, MiB | {rss_before/1024:.0f} before, {rss_in/1024:.0f} with the listeners, peak {peak/1024:.0f} under attack, {rss_after/1024:.0f} after |")
PY
echo >>"$file"

# ---- 2. flash crowd ---------------------------------------------------------------------
if [ "$crowd" = 0 ]; then rm -rf "$work"; cat "$file"; exit 0; fi
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
