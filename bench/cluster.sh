#!/usr/bin/env bash
# stentor past one process: an origin and edges on NATS, measured by `stentor loadtest`.
#   linear  an origin and 3 edges with PER Ogg listeners on each (for each PER), beside 3
#           bare write loops (crates/loadtest/examples/bare_loop.rs) serving the same
#           listeners: where the box is the limit, not stentor; the origin's and the NATS
#           server's CPU for each audience.
#   many    an origin and MANY edges with MANY_PER listeners each: what each edge costs the
#           origin and the NATS server, and the bytes each edge receives for the Space (NATS
#           monitoring, per connection).
#   faults  an origin, a standby and 3 edges (the third in a network namespace of its own),
#           FAULT_PER WebSocket listeners per edge; one after another: kill -9 of an edge,
#           kill -9 of the origin, the NATS server restarted, the third edge cut from NATS:
#           per group of listeners, the longest gap in audio, moves, failures.
# Usage: bench/cluster.sh [PHASES]  (default "linear many faults")
# Env: PER ("1000 5000"), MANY (20), MANY_PER (50), FAULT_PER (300), HOLD (20), RATE (1000),
#      NAME (tells runs of one day apart), STENTOR_BENCH_DATABASE (faults: a PostgreSQL URL
#      whose server the script may make a database on; default postgres://postgres@127.0.0.1:5432/test).
# Needs nats-server 2.9+ on PATH (a server of the script's own is started and stopped); the
# faults need root (ip netns) and PostgreSQL. Every process started here is stopped here, by
# PID; the namespace and the database are removed at the end.
# Writes bench/results/cluster-DATE[-NAME].md.
set -euo pipefail
cd "$(dirname "$0")/.."
phases=${1:-"linear many faults"}
per_list=${PER:-"1000 5000"}
many=${MANY:-20}
many_per=${MANY_PER:-50}
fault_per=${FAULT_PER:-300}
hold=${HOLD:-20}
rate=${RATE:-1000}
command -v nats-server >/dev/null || { echo "cluster.sh: nats-server is needed on PATH" >&2; exit 1; }
cargo build --release -q --bin stentor
cargo build --release -q -p stentor-loadtest --example bare_loop
bin=$PWD/target/release/stentor
bare=$PWD/target/release/examples/bare_loop
hz=$(getconf CLK_TCK)
tag="$(date +%F)${NAME:+-$NAME}"
file="bench/results/cluster-$tag.md"
work=$(mktemp -d /tmp/stentor-cluster.XXXXXX)
ulimit -n "$(ulimit -Hn)"
declare -A pid url
lease=()
ns=""
db=""
admin=${STENTOR_BENCH_DATABASE:-postgres://postgres@127.0.0.1:5432/test}

stop_all() {
  for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pid[@]}"; do wait "$p" 2>/dev/null || true; done
  pid=()
}
cleanup() {
  stop_all
  [[ -n $ns ]] && { ip netns del "$ns" 2>/dev/null || true; ip link del sb-host 2>/dev/null || true; ip link del sn-host 2>/dev/null || true; }
  [[ -n $db ]] && psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  [[ -n ${KEEP:-} ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
wait_http() { # url
  for _ in $(seq 200); do curl -sf -m 1 "$1/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "cluster.sh: nothing answers at $1" >&2; return 1
}
cpu_mark() { # name... : remembers each one's CPU ticks and the time
  local who
  mark_t=$(date +%s.%N); declare -gA mark
  for who in "$@"; do mark[$who]=$(ticks "${pid[$who]}"); done
}
cpu_pct() { # name... : their CPU since cpu_mark, % of one core, summed
  local t1 sum=0 who; t1=$(date +%s.%N)
  for who in "$@"; do sum=$(( sum + $(ticks "${pid[$who]}") - ${mark[$who]} )); done
  python3 -c "print(f'{$sum / $hz / ($t1 - $mark_t) * 100:.1f}')"
}

start_nats() { # addr port
  mkdir -p "$work/nats"
  nats-server -a "$1" -p "$2" -js -sd "$work/nats" -m $(( $2 + 1 )) -l "$work/nats.log" &
  pid[nats]=$!
  nats="nats://$1:$2"; monitor="http://$1:$(( $2 + 1 ))"
  for _ in $(seq 50); do curl -sf -m 1 "$monitor/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "cluster.sh: the NATS server did not start" >&2; return 1
}
origin() { # name port extra...
  local name=$1 port=$2; shift 2
  mkdir -p "$work/$name"
  "$bin" demo --role origin --nats "$nats" --cluster "$cluster" --node "$name" \
    --bind "127.0.0.1:$port" --data-dir "$work/$name" --ticket-key-file "$key" "$@" \
    >"$work/$name.log" 2>&1 &
  pid[$name]=$!; url[$name]="http://127.0.0.1:$port"
  wait_http "${url[$name]}"
}
edge() { # name port [netns]
  local name=$1 port=$2 in=${3:-} addr=127.0.0.1 run=()
  if [[ -n $in ]]; then addr=10.99.0.2; run=(ip netns exec "$in"); fi
  mkdir -p "$work/$name"
  "${run[@]}" "$bin" serve --role edge --nats "$nats" --cluster "$cluster" --node "$name" \
    --bind "$addr:$port" --data-dir "$work/$name" --ticket-key-file "$key" "${lease[@]}" \
    >"$work/$name.log" 2>&1 &
  pid[$name]=$!; url[$name]="http://$addr:$port"
  wait_http "${url[$name]}"
}
edges_listed() { # origin-url n: waits until the origin lists n edges
  for _ in $(seq 100); do
    local listed; listed=$(curl -sf "$1/api/v1/spaces/demo/edges" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["edges"]))' || echo 0)
    [[ $listed -ge $2 ]] && return 0; sleep 0.2
  done
  echo "cluster.sh: the origin lists fewer than $2 edges" >&2; return 1
}
summary() { # report.json -> "received | on time | first audio | missed | gap | moves | failures"
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
g, f = r["longest_gap_ms"], r["first_audio_ms"]
fails = "; ".join(f"{n} × {k}" for k, n in r["failures"].items()) or "0"
print(f"{r['admitted']} of {r['listeners']} | {100 * r['on_time_share']:.2f}% | "
      f"{f['p50']:.0f} / {f['p99']:.0f} | {r['missed']} | {g['p50']:.0f} / {g['p99']:.0f} / {g['max']:.0f} | "
      f"{r['moves']} ({r['moved']}) | {fails}")
PY
}
# Below the ephemeral range (32768 up), where outgoing connections could hold a port.
port=$((20000 + RANDOM % 10000))
next_port() { port=$((port + 2)); }
key="$work/cluster.key"
head -c 32 /dev/urandom >"$key"; chmod 600 "$key"
bytes() { # monitor: "name out_bytes in_bytes" per connection
  curl -sf "$monitor/connz?limit=1024" | python3 -c '
import json, sys
for c in json.load(sys.stdin)["connections"]:
    print(c.get("name", "?").replace(" ", "_"), c["out_bytes"], c["in_bytes"])'
}

{
  echo "# stentor past one process: origin and edges on NATS, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr); every node, the NATS server ($(nats-server --version))"
  echo "and the load generator on this one machine. Command: \`bench/cluster.sh \"$phases\"\` with"
  echo "PER=\"$per_list\" MANY=$many MANY_PER=$many_per FAULT_PER=$fault_per HOLD=$hold RATE=$rate."
  echo "Origins run \`stentor demo --role origin\` (a synthetic speaker, 32 kbit/s mix), edges"
  echo "\`stentor serve --role edge\`; one NATS server of the script's own. Listeners:"
  echo "\`stentor loadtest\`. On time = every frame received, none later than 1 s after its earliest"
  echo "delivery to anyone. CPU = % of one core over the hold, from /proc. Gap = each listener's"
  echo "longest time between two frames (p50 / p99 / max ms)."
  echo
} >"$file"

if [[ " $phases " == *" linear "* ]]; then
  {
    echo "## Linear edges: 3 edges, listeners spread over them"
    echo
    echo "| server | listeners | received audio | on time | first audio p50 / p99 ms | missed | gap p50 / p99 / max ms | moves | failures | origin CPU % | NATS CPU % | edges (or bare loops) CPU %, summed |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  } >>"$file"
  for per in $per_list; do
    n=$((3 * per)); cluster="bench-linear-$$-$per"
    next_port; start_nats 127.0.0.1 "$port"
    next_port; origin origin "$port"
    for e in 1 2 3; do next_port; edge "edge$e" "$port"; done
    edges_listed "${url[origin]}" 3
    join=$(python3 -c "print(int($n / $rate) + 3)")
    "$bin" loadtest --url "${url[origin]}" --space demo --transport ogg --edges --listeners "$n" \
      --rate "$rate" --hold "$hold" --json "$work/linear.json" >"$work/linear.txt" 2>&1 &
    lt=$!
    sleep "$join"
    cpu_mark origin nats edge1 edge2 edge3
    sleep $(( hold - 4 ))
    c_origin=$(cpu_pct origin); c_nats=$(cpu_pct nats); c_edges=$(cpu_pct edge1 edge2 edge3)
    cadence=$(for e in 1 2 3; do curl -sf "${url[edge$e]}/metrics" | awk '/^stentor_cadence_ms/ {print $2}'; done | sort -n | tail -1)
    wait "$lt" || true
    echo "| stentor, 3 edges | $n ($per each) | $(summary "$work/linear.json") | $c_origin | $c_nats | $c_edges |" >>"$file"
    stop_all
    # The reference: three bare write loops, at the cadence the edges chose, the same client.
    nodes=()
    for b in 1 2 3; do
      next_port
      "$bare" "127.0.0.1:$port" "${cadence:-20}" >"$work/bare$b.log" 2>&1 &
      pid[bare$b]=$!; nodes+=("http://127.0.0.1:$port/live.opus")
    done
    sleep 1
    "$bin" loadtest --url "${nodes[0]}" --transport ogg --nodes "$(IFS=,; echo "${nodes[*]}")" \
      --listeners "$n" --rate "$rate" --hold "$hold" --json "$work/bare.json" >"$work/bare.txt" 2>&1 &
    lt=$!
    sleep "$join"
    cpu_mark bare1 bare2 bare3
    sleep $(( hold - 4 ))
    c_bare=$(cpu_pct bare1 bare2 bare3)
    wait "$lt" || true
    echo "| bare loops ×3 (cadence ${cadence:-20} ms) | $n ($per each) | $(summary "$work/bare.json") | – | – | $c_bare |" >>"$file"
    stop_all
  done
  echo >>"$file"
fi

if [[ " $phases " == *" many "* ]]; then
  cluster="bench-many-$$"
  next_port; start_nats 127.0.0.1 "$port"
  next_port; origin origin "$port"
  sleep 2
  cpu_mark origin nats; sleep 5
  idle_origin=$(cpu_pct origin); idle_nats=$(cpu_pct nats)
  names=()
  for e in $(seq "$many"); do next_port; edge "edge$e" "$port"; names+=("edge$e"); done
  edges_listed "${url[origin]}" "$many"
  n=$((many * many_per))
  "$bin" loadtest --url "${url[origin]}" --space demo --transport ogg --edges --listeners "$n" \
    --rate "$rate" --hold "$hold" --json "$work/many.json" >"$work/many.txt" 2>&1 &
  lt=$!
  sleep $(( n / rate + 3 ))
  bytes >"$work/bytes0"; cpu_mark origin nats "${names[@]}"; t0=$(date +%s.%N)
  sleep $(( hold - 4 ))
  bytes >"$work/bytes1"; t1=$(date +%s.%N)
  c_origin=$(cpu_pct origin); c_nats=$(cpu_pct nats); c_edges=$(cpu_pct "${names[@]}")
  wait "$lt" || true
  per_edge=$(python3 - "$work/bytes0" "$work/bytes1" "$t0" "$t1" <<'PY'
import sys
def read(p):
    return {l.split()[0]: (int(l.split()[1]), int(l.split()[2])) for l in open(p)}
a, b = read(sys.argv[1]), read(sys.argv[2]); secs = float(sys.argv[4]) - float(sys.argv[3])
edges = [(b[k][0] - a[k][0]) / secs for k in b if k.startswith("stentor_edge") and k in a]
origin = [(b[k][1] - a[k][1]) / secs for k in b if k.startswith("stentor_origin") and k in a]
print(f"{sum(edges) / max(len(edges), 1) / 1000:.2f} kB/s to each of {len(edges)} edges "
      f"(min {min(edges) / 1000:.2f}, max {max(edges) / 1000:.2f}); "
      f"{sum(origin) / 1000:.2f} kB/s from the origin")
PY
)
  {
    echo "## Many edges: $many edges, $many_per listeners each"
    echo
    echo "| measure | value |"
    echo "|---|---|"
    echo "| listeners | $(summary "$work/many.json" | cut -d'|' -f1) |"
    echo "| received / on time / first audio / missed / gap / moves / failures | $(summary "$work/many.json") |"
    echo "| origin CPU %, alone → with $many edges | $idle_origin → $c_origin |"
    echo "| NATS CPU %, origin alone → with $many edges | $idle_nats → $c_nats |"
    echo "| edges' CPU %, summed | $c_edges |"
    echo "| bus traffic (NATS monitoring, per connection) | $per_edge |"
    echo
  } >>"$file"
  stop_all
fi

if [[ " $phases " == *" faults "* ]]; then
  [[ $(id -u) == 0 ]] || { echo "cluster.sh: the faults need root (ip netns)" >&2; exit 1; }
  # A namespace with two links to this host: one for listeners (10.99.0.0/24), one for NATS
  # (10.99.1.0/24), so that NATS can be cut while the listeners still reach the edge.
  ns="stentor-bench-$$"
  ip netns add "$ns"
  ip link add sb-host type veth peer name sb-ns
  ip link add sn-host type veth peer name sn-ns
  ip link set sb-ns netns "$ns"; ip link set sn-ns netns "$ns"
  ip addr add 10.99.0.1/24 dev sb-host; ip link set sb-host up
  ip addr add 10.99.1.1/24 dev sn-host; ip link set sn-host up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip addr add 10.99.0.2/24 dev sb-ns
  ip netns exec "$ns" ip addr add 10.99.1.2/24 dev sn-ns
  ip netns exec "$ns" ip link set sb-ns up
  ip netns exec "$ns" ip link set sn-ns up
  db="stentor_bench_cluster_$$"
  psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
  database="${admin%/*}/$db"
  cluster="bench-faults-$$"
  nats_port=$((port + 2)); port=$nats_port
  start_nats 10.99.1.1 "$nats_port"
  lease=(--lease-ms 1000)
  next_port; origin origin-a "$port" --database-url "$database" "${lease[@]}"
  next_port; origin origin-b "$port" --database-url "$database" "${lease[@]}"
  next_port; edge edge1 "$port"
  next_port; edge edge2 "$port"
  next_port; edge edge3 "$port" "$ns"
  edges_listed "${url[origin-a]}" 3
  {
    echo "## Faults: origin, standby, 3 edges ($fault_per WebSocket listeners each; the third edge in a network namespace)"
    echo
    echo "Each fault comes 8 s after the listeners joined; each listener's nodes: group 1 edge1 then"
    echo "edge2, group 2 edge2 then edge1, group 3 edge3 then edge2 (a listener whose edge goes"
    echo "away moves to the next; one sent elsewhere goes where it is told). Leases last 1 s."
    echo
    echo "| fault | group | received audio | on time | first audio p50 / p99 ms | missed | gap p50 / p99 / max ms | moves (listeners) | failures |"
    echo "|---|---|---|---|---|---|---|---|---|"
  } >>"$file"
  fault_run() { # label fault-command...
    local label=$1; shift
    local groups=("${url[edge1]},${url[edge2]}" "${url[edge2]},${url[edge1]}" "${url[edge3]},${url[edge2]}")
    local sources=("127.0.70.1-127.0.70.254" "127.0.71.1-127.0.71.254" "10.99.0.1")
    local lts=()
    for g in 0 1 2; do
      "$bin" loadtest --url "${groups[$g]%%,*}" --space demo --transport ws \
        --nodes "${groups[$g]%%,*}" --fallback "${groups[$g]#*,}" --sources "${sources[$g]}" --listeners "$fault_per" \
        --rate 500 --hold 20 --workers 1 --json "$work/fault$g.json" >"$work/fault$g.txt" 2>&1 &
      lts+=($!)
    done
    sleep $(( fault_per / 500 + 8 ))
    "$@"
    for l in "${lts[@]}"; do wait "$l" || true; done
    for g in 0 1 2; do
      echo "| $label | $((g + 1)) | $(summary "$work/fault$g.json") |" >>"$file"
    done
  }
  kill_edge1() { kill -9 "${pid[edge1]}"; }
  fault_run "kill -9 of edge1" kill_edge1
  wait "${pid[edge1]}" 2>/dev/null || true
  edge edge1 "${url[edge1]##*:}"
  edges_listed "${url[origin-a]}" 3
  kill_origin() { kill -9 "${pid[origin-a]}"; }
  fault_run "kill -9 of the origin (standby takes over)" kill_origin
  wait "${pid[origin-a]}" 2>/dev/null || true
  restart_nats() {
    kill -9 "${pid[nats]}"; wait "${pid[nats]}" 2>/dev/null || true
    start_nats 10.99.1.1 "$nats_port"
  }
  fault_run "NATS server killed and restarted" restart_nats
  sleep 3
  cut_edge3() { ip netns exec "$ns" ip link set sn-ns down; }
  fault_run "edge3 cut from NATS (its namespace's link down)" cut_edge3
  echo >>"$file"
  for n in origin-b edge1 edge2 edge3; do
    echo "- ${n}: $(grep -c 'sending the listeners away' "$work/$n.log" || true) time(s) sent its listeners away; lease changes: $(grep -c "this node is the space's origin" "$work/$n.log" || true)" >>"$file"
  done
  echo >>"$file"
fi

echo "Results: $file"
cat "$file"
