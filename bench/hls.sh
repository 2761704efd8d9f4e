#!/usr/bin/env bash
# LL-HLS at scale: N low-latency HLS clients (`stentor loadtest --transport hls`: every part
# listed, and a blocking playlist reload for the next, on one keep-alive connection each)
# through a cache in front of `stentor demo` (a stand-in for a CDN edge): nginx with
# proxy_cache and proxy_cache_lock, and Varnish (whose waiting list answers every collapsed
# request when the one upstream returns; nginx's cache lock looks again every 500 ms); then
# the same clients straight at stentor. Reports the requests per second reaching stentor
# (flat as clients grow, behind a cache), stentor's and the cache's CPU, and whether every
# client got every part on time.
# Usage: bench/hls.sh            Env: COUNTS ("1000 5000 10000"), HOLD (20), RATE (2000),
#        PART_MS (200), PATHS ("nginx varnish straight"), NAME (tells runs of one day
#        apart), STENTOR_BIN (a binary to use instead of building the release one).
# Needs nginx (Debian's nginx-light is enough) and varnishd (Debian's varnish). Every process started here is stopped here,
# by PID. Writes bench/results/hls-DATE[-NAME].md.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=${COUNTS:-"1000 5000 10000"}
hold=${HOLD:-20}
rate=${RATE:-2000}
part_ms=${PART_MS:-200}
command -v nginx >/dev/null || { echo "hls.sh: nginx is needed (apt-get install nginx-light)" >&2; exit 1; }
command -v varnishd >/dev/null || { echo "hls.sh: varnishd is needed (apt-get install varnish)" >&2; exit 1; }
if [[ -z ${STENTOR_BIN:-} ]]; then
  cargo build --release -q --bin stentor
fi
bin=${STENTOR_BIN:-$PWD/target/release/stentor}
hz=$(getconf CLK_TCK)
tag="$(date +%F)${NAME:+-$NAME}"
file="bench/results/hls-$tag.md"
work=$(mktemp -d /tmp/stentor-hls.XXXXXX)
chmod 755 "$work"
ulimit -n "$(ulimit -Hn)"
server="" nginx_pid="" varnish_pid=""

cleanup() {
  [[ -n $nginx_pid ]] && { kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; }
  [[ -n $varnish_pid ]] && { kill "$varnish_pid" 2>/dev/null || true; wait "$varnish_pid" 2>/dev/null || true; }
  [[ -n $server ]] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  [[ -n ${KEEP:-} ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

ticks() { # pid...: CPU ticks, summed
  local sum=0 p
  for p in "$@"; do sum=$(( sum + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done
  echo "$sum"
}
metric() { # a counter of stentor's (patient: a saturated server answers slowly)
  local v=""
  for _ in 1 2 3; do
    v=$(curl -sf -m 10 "http://127.0.0.1:$sport/metrics" | awk -v m="$1" '$1 == m {print $2}') && [[ -n $v ]] && break
  done
  echo "${v:-0}"
}
stentor_requests() { echo $(( $(metric stentor_hls_playlists_total) + $(metric stentor_hls_files_total) )); }
client_requests() { # the requests the clients made, as what answered them counted
  case $1 in
    nginx) curl -sf "http://127.0.0.1:$nport/nginx_status" | awk 'NR == 3 {print $3}' ;;
    varnish) varnishstat -n "$work/varnish" -1 -f MAIN.client_req | awk '{print $2}' ;;
    *) stentor_requests ;;
  esac
}
summary() { # report.json -> "received | on time | first audio p50/p99 | missed | gap p50/p99/max | failures"
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
g, f = r["longest_gap_ms"], r["first_audio_ms"]
fails = "; ".join(f"{n} × {k}" for k, n in r["failures"].items()) or "0"
print(f"{r['admitted']} of {r['listeners']} | {100 * r['on_time_share']:.2f}% | "
      f"{f['p50']:.0f} / {f['p99']:.0f} | {r['missed']} | {g['p50']:.0f} / {g['p99']:.0f} / {g['max']:.0f} | {fails}")
PY
}

sport=$((20000 + RANDOM % 10000)); nport=$((sport + 1)); vport=$((sport + 2))
mkdir -p "$work/data" "$work/cache" "$work/tmp"
"$bin" demo --bind "127.0.0.1:$sport" --data-dir "$work/data" --hls-part-ms "$part_ms" >"$work/stentor.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$sport/healthz" >/dev/null && break; sleep 0.1; done

cat >"$work/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile 19000;
user root;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 16000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $work/tmp/body;
  proxy_temp_path $work/tmp/proxy;
  fastcgi_temp_path $work/tmp/fastcgi;
  uwsgi_temp_path $work/tmp/uwsgi;
  scgi_temp_path $work/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  proxy_cache_path $work/cache levels=1:2 keys_zone=hls:16m max_size=256m inactive=60s use_temp_path=off;
  upstream stentor { server 127.0.0.1:$sport; keepalive 64; }
  server {
    listen 127.0.0.1:$nport backlog=16384;
    location = /nginx_status { stub_status; }
    location / {
      proxy_pass http://stentor;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache hls;
      proxy_cache_key \$uri\$is_args\$args;
      # One request upstream per URL however many clients ask at once; the rest wait for it.
      proxy_cache_lock on;
      proxy_cache_lock_timeout 8s;
      proxy_cache_lock_age 8s;
      proxy_read_timeout 10s;
      add_header X-Cache-Status \$upstream_cache_status;
    }
  }
}
EOF
nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' 2>"$work/nginx.stderr" &
nginx_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$nport/nginx_status" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$nport/spaces/demo/live.m3u8" >/dev/null

cat >"$work/varnish.vcl" <<EOF
vcl 4.1;
backend stentor { .host = "127.0.0.1"; .port = "$sport"; .first_byte_timeout = 10s; }
sub vcl_recv {
  # Every GET is cacheable as stentor says (Cache-Control); identical requests in flight
  # wait for the one sent upstream (Varnish's waiting list).
  if (req.method != "GET") { return (pass); }
  unset req.http.Cookie;
  return (hash);
}
sub vcl_backend_response {
  set beresp.grace = 0s;
}
EOF
mkdir -p "$work/varnish"
varnishd -F -a "127.0.0.1:$vport" -f "$work/varnish.vcl" -s malloc,256m -n "$work/varnish" \
  -p thread_pools=2 -p thread_pool_min=200 -p thread_pool_max=5000 -p timeout_idle=60 \
  >"$work/varnish.log" 2>&1 &
varnish_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$vport/spaces/demo/live.m3u8" >/dev/null && break; sleep 0.1; done

{
  echo "# LL-HLS through a cache and straight, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr); stentor, $(nginx -v 2>&1 | sed 's/.*: //') and the load generator on"
  echo "this one machine. Command: \`bench/hls.sh\` with COUNTS=\"$counts\" HOLD=$hold RATE=$rate PART_MS=$part_ms PATHS=\"${PATHS:-nginx varnish straight}\"."
  echo "\`stentor demo --hls-part-ms $part_ms\` (a synthetic speaker, 32 kbit/s). In front of it: nginx with"
  echo "proxy_cache and proxy_cache_lock, 2 workers; or $(varnishd -V 2>&1 | head -1 | cut -d' ' -f1-2) (malloc storage, 2 thread pools); each"
  echo "caches as stentor's Cache-Control says. Clients: \`stentor loadtest --transport hls\`, each a"
  echo "keep-alive connection from its own 127.x address doing what a low-latency player does: every"
  echo "part listed after the last it has, then a blocking playlist reload for the next (\`_HLS_msn\`,"
  echo "\`_HLS_part\`, \`_HLS_skip=YES\`). On time = every frame received, none later than a part and 1 s"
  echo "after its earliest delivery to any client. Requests/s = over the hold. CPU = % of one core over the"
  echo "hold, from /proc."
  echo
  echo "| path | clients | received audio | on time | first audio p50 / p99 ms | missed | gap p50 / p99 / max ms | failures | client requests/s | requests/s reaching stentor | stentor CPU % | stentor CPU % per 1 000 | cache CPU % | load generator CPU % |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} >"$file"

run() { # path-label url n
  local label=$1 url=$2 n=$3
  local join; join=$(python3 -c "print(int($n / $rate) + 3)")
  # A frame may wait a whole part for its part to be out: on time is within a part and a
  # second of its earliest delivery.
  "$bin" loadtest --url "$url" --space demo --transport hls --listeners "$n" --rate "$rate" \
    --hold "$hold" --allowance-ms $(( part_ms + 1000 )) --json "$work/run.json" \
    >"$work/run-$label-$n.txt" 2>&1 &
  local lt=$!
  sleep "$join"
  local workers=""
  case $label in
    nginx) workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ') ;;
    varnish) workers="$varnish_pid $(pgrep -P "$varnish_pid" | tr '\n' ' ')" ;;
  esac
  local gen; gen="$lt $(pgrep -P "$lt" | tr '\n' ' ')"
  local t0 s0 n0 g0 r0 c0
  t0=$(date +%s.%N); s0=$(ticks "$server"); n0=$(ticks $workers); g0=$(ticks $gen); r0=$(stentor_requests); c0=$(client_requests "$label")
  sleep $(( hold - 4 ))
  local t1 s1 n1 g1 r1 c1
  t1=$(date +%s.%N); s1=$(ticks "$server"); n1=$(ticks $workers); g1=$(ticks $gen); r1=$(stentor_requests); c1=$(client_requests "$label")
  wait "$lt" || true
  local line
  line=$(python3 - <<PY
dt = $t1 - $t0
s = ($s1 - $s0) / $hz / dt * 100
n = ($n1 - $n0) / $hz / dt * 100
g = ($g1 - $g0) / $hz / dt * 100
print(f"{($r1 - $r0) / dt:.0f} | {s:.1f} | {s / $n * 1000:.2f} | " + ("{:.1f}".format(n) if "$label" != "straight" else "–") + f" | {g:.1f}",
      f"{($c1 - $c0) / dt:.0f}")
PY
)
  local own=${line% *} client=${line##* }
  echo "| $label | $n | $(summary "$work/run.json") | $client | $own |" >>"$file"
}

for path in ${PATHS:-nginx varnish straight}; do
  case $path in
    nginx) url="http://127.0.0.1:$nport" ;;
    varnish) url="http://127.0.0.1:$vport" ;;
    straight) url="http://127.0.0.1:$sport" ;;
    *) echo "hls.sh: unknown path $path" >&2; exit 1 ;;
  esac
  for n in $counts; do run "$path" "$url" "$n"; sleep 3; done
done
echo >>"$file"
echo "Written $file"
cat "$file"
