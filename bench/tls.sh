#!/usr/bin/env bash
# What a listener costs on the server's own TLS, beside the same listener on plain HTTP:
# `stentor demo` serves LISTENERS Ogg listeners (HTTP/1.1, a connection each, the same Node
# client for both) joining at RATE a second, held HOLD seconds; the server's CPU and memory
# are read from /proc while they are held. Plain HTTP listeners go to the fan-out writers;
# TLS ones get a task each (docs/operations.md, "TLS").
# Usage: bench/tls.sh [LISTENERS] [RATE] [HOLD]. Writes bench/results/tls-DATE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
listeners=${1:-2000}
rate=${2:-500}
hold=${3:-20}
cargo build --release -q --bin stentor
bin=target/release/stentor
file="bench/results/tls-$(date +%F).md"
work=$(mktemp -d)
ulimit -n "$(ulimit -Hn)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user + system, in clock ticks
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

run() { # label scheme extra-args...
  local label=$1 scheme=$2; shift 2
  local port=$((20000 + RANDOM % 20000)) data="$work/$label"
  mkdir -p "$data"
  $bin demo --bind "127.0.0.1:$port" --data-dir "$data" "$@" >"$data/log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    curl -sfk "$scheme://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
  local rss0; rss0=$(rss_mib "$pid")
  local ca=()
  [[ $scheme == https ]] && ca=("$work/cert.pem")
  node bench/tls-listeners.mjs "$scheme://127.0.0.1:$port/spaces/demo/live.opus" \
    "$listeners" "$rate" "$hold" "${ca[@]}" >"$data/client.json" &
  local client=$!
  # Measure over the middle of the hold: everyone is in, nobody has left.
  local join=$(( listeners / rate + 2 ))
  sleep $(( join + 2 ))
  local t0 c0 ct0; t0=$(date +%s.%N); c0=$(ticks "$pid"); ct0=$(ticks "$client")
  sleep $(( hold - 6 > 4 ? hold - 6 : 4 ))
  local t1 c1 ct1 rss1; t1=$(date +%s.%N); c1=$(ticks "$pid"); ct1=$(ticks "$client"); rss1=$(rss_mib "$pid")
  wait "$client"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$label" "$data/client.json" "$rss0" "$rss1" "$c0" "$c1" "$ct0" "$ct1" "$t0" "$t1" "$hz" <<'PY'
import json, sys
label, client, rss0, rss1, c0, c1, ct0, ct1, t0, t1, hz = sys.argv[1:]
r = json.load(open(client))
secs = float(t1) - float(t0)
cpu = (int(c1) - int(c0)) / int(hz) / secs * 100
ccpu = (int(ct1) - int(ct0)) / int(hz) / secs * 100
per = (int(rss1) - int(rss0)) * 1024 / max(r["admitted"], 1)
print(f"| {label} | {r['admitted']} of {r['count']} | {r['failed']} | {r['stalled']} | "
      f"{r['mean_kbit_per_s']:.1f} | {cpu:.1f} | {rss0} → {rss1} | {per:.1f} | {ccpu:.1f} |")
PY
}

{
  echo "# A listener on the server's own TLS, beside one on plain HTTP, $(date -u '+%F %H:%M') UTC"
  echo
  echo "Machine: $(nproc) cores, Linux $(uname -r); server and client on the same machine."
  echo "Command: \`bench/tls.sh $listeners $rate $hold\`. Server: \`stentor demo\` (defaults; TLS with a"
  echo "self-signed P-256 certificate). Client: bench/tls-listeners.mjs (Node, HTTP/1.1, a"
  echo "connection per listener, from 127.100.0.0/16), the same for both."
  echo
  echo "| server | listeners in | failed | stalled | kbit/s each | server CPU % of a core | server RSS MiB | KiB each | client CPU % |"
  echo "|---|---|---|---|---|---|---|---|---|"
  run "plain HTTP (fan-out writers)" http
  run "TLS (a task each)" https --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
} >"$file"
rm -rf "$work"
cat "$file"
