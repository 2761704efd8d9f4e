#!/usr/bin/env bash
# Latency from a speaker's frame arriving at the server to the mixed frame leaving for a
# WebSocket listener, on loopback, with background listeners. Writes bench/results/latency-DATE.md.
# Usage: bench/latency.sh [SECONDS] [LISTENERS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
listeners=${2:-100}
cargo build --release -q --bin stentor --example latency
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
./target/release/stentor serve --bind "127.0.0.1:$port" --data-dir "$data" 2>"$data/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
cmd="target/release/examples/latency --url http://127.0.0.1:$port --seconds $seconds --listeners $listeners"
out=$($cmd)
echo "$out"
server_side=$(curl -s "http://127.0.0.1:$port/metrics" | grep -E '^stentor_(speaker_to_mix_seconds|frames_concealed|packets_late|mixer_ticks_late|mixer_tick_seconds_(sum|count))')
mkdir -p bench/results
file="bench/results/latency-$(date +%F).md"
{
  echo "# Speaker-to-listener latency, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr); server and client on one machine, loopback."
  echo
  echo "Command: \`bench/latency.sh $seconds $listeners\` (server: \`stentor serve\`, release build;"
  echo "client: \`$cmd\`)"
  echo
  echo "A speaker sends silence with a loud 20 ms marker every 200 ms; a WebSocket listener"
  echo "decodes the mix and timestamps each marker's arrival; $listeners other WebSocket listeners"
  echo "receive the mix meanwhile. Latency = marker received by the listener - marker sent by the"
  echo "speaker, so it includes the jitter buffer, the wait for the next 20 ms tick, decode, mix,"
  echo "encode and fan-out. The speaker's clock and the mixer's tick are not aligned, so the"
  echo "wait for the next tick (0 to 20 ms) differs from run to run; runs differ by that much."
  echo
  echo '```'
  echo "$out"
  echo '```'
  echo
  echo "The server's own view (\`/metrics\` after the run): arrival of a speaker packet to the"
  echo "publication of the mix that carries it, concealment and lateness counters."
  echo
  echo '```'
  echo "$server_side"
  echo '```'
} > "$file"
echo "wrote $file"
