#!/usr/bin/env bash
# The social layer under load, on PostgreSQL and on SQLite (BACKENDS="postgres sqlite"):
#
#   likes     a like burst on one post from 50 000 distinct accounts at RATES (open-loop,
#             latency from the moment each like was due), sessions cold (each account's
#             first request) and warm (the account loaded a page in the minute before);
#             the final count against the rows
#   timeline  GET /timeline p50/p99 for an account following 1 000 accounts (10 of them large,
#             merged at read time) with 1 000 000 posts in the table
#   alerts    an account with 1 000 000 subscribers goes live: the time to list them, the
#             pace held to --alerts-per-sec, a kill -9 of the server mid-campaign, and after
#             the restart every subscriber alerted exactly once
#   follows   10 000 000 follow rows: a profile's counts and the "live now" bar stay fast
#
# Loopback only; the server, PostgreSQL and the load generator share this machine's cores.
# Results: bench/results/social-DATE.md (the raw JSON beside the run in $WORK).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${BACKENDS:-"postgres sqlite"}
PARTS=${PARTS:-"likes timeline alerts follows"}
RATES=${RATES:-"5000 6000"}
ALERT_RATE=${ALERT_RATE:-10000}
SUBSCRIBERS=${SUBSCRIBERS:-1000000}
FOLLOW_USERS=${FOLLOW_USERS:-1000000}
ADMIN=${ADMIN:-postgres://postgres@127.0.0.1:5432/test}
PORT=${PORT:-18700}
WORK=${WORK:-$(mktemp -d /tmp/stentor-social-XXXX)}
mkdir -p "$WORK"
OUT=${OUT:-bench/results/social-$(date +%F).md}
BIN=./target/release/stentor
ADDR=127.0.0.1:$PORT
API=http://$ADDR/api/v1
SOURCES=127.20.0.1-127.20.255.254

cargo build --release -q -p stentor
command -v psql >/dev/null || { echo "FAIL: psql is needed" >&2; exit 1; }

server_pid=""
start_server() { # backend db extra-flags...
  local backend=$1 db=$2; shift 2
  local flags=(--bind "$ADDR" --data-dir "$WORK/data-$backend")
  [ "$backend" = postgres ] && flags+=(--database-url "$db")
  "$BIN" serve "${flags[@]}" "$@" >>"$WORK/server-$backend.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do curl -sf "http://$ADDR/healthz" >/dev/null && return; sleep 0.1; done
  echo "FAIL: the server did not start" >&2; exit 1
}
stop_server() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; server_pid=""; }
trap 'stop_server' EXIT

sql() { # backend db statement
  if [ "$1" = postgres ]; then psql -qtA "$2" -c "$3"; else python3 - "$2" "$3" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1].removeprefix("sqlite://"))
for row in c.execute(sys.argv[2]):
    print("|".join(str(v) for v in row))
PY
  fi
}

timed_count() { # backend db query → "MS ms (COUNT)", timed inside the database client
  if [ "$1" = postgres ]; then
    psql -qtA "$2" -c '\timing on' -c "$3" | python3 -c 'import sys; l = [x.strip() for x in sys.stdin if x.strip()]; print(f"{float(l[-1].split()[1]):.1f} ms ({l[0]})")'
  else python3 - "$2" "$3" <<'PY'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1].removeprefix("sqlite://"))
t = time.time(); n = c.execute(sys.argv[2]).fetchone()[0]
print(f"{(time.time() - t) * 1000:.1f} ms ({n})")
PY
  fi
}

post() { # token text → id
  curl -sf -X POST "$API/posts" -H "authorization: Bearer $1" -H 'content-type: application/json' \
    -d "{\"text\":\"$2\"}" | python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])'
}

field() { python3 -c "import json, sys; d = json.load(open('$1')); print($2)"; }

cpu_of() { ps -o cputimes= -p "$1" 2>/dev/null | tr -d ' ' || echo 0; }

{
  echo "# The social layer under load — $(date +%F)"
  echo
  echo "Command: \`BACKENDS=\"$BACKENDS\" PARTS=\"$PARTS\" RATES=\"$RATES\" bench/social.sh\`"
  echo "Machine: $(nproc) cores; the server, the database and the load generator share them."
} >"$OUT.head"
: >"$OUT.body"
say() { echo "$*" | tee -a "$OUT.body"; }

for backend in $BACKENDS; do
  if [ "$backend" = postgres ]; then
    psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS stentor_bench_social WITH (FORCE)" -c "CREATE DATABASE stentor_bench_social"
    db=${ADMIN%/*}/stentor_bench_social
  else
    mkdir -p "$WORK/data-sqlite"; rm -f "$WORK/data-sqlite"/stentor.db*
    db=sqlite://$WORK/data-sqlite/stentor.db
  fi
  say ""
  say "## $backend"
  start_server "$backend" "$db"; stop_server   # the schema
  python3 bench/social_seed.py "$db" accounts 100001 50000 2>>"$WORK/seed.log"

  if [[ " $PARTS " == *" likes "* ]]; then
    start_server "$backend" "$db"
    say ""
    say "### A like burst on one post from 50 000 accounts"
    say ""
    say "| sessions | offered /s | answered /s | p50 ms | p90 ms | p99 ms | max ms | 429/503 | failed | count = rows = 50 000 | server CPU s |"
    say "|---|---|---|---|---|---|---|---|---|---|---|"
    for rate in $RATES; do
      for warmth in cold warm; do
        if [ "$warmth" = warm ]; then
          # Each account loads a page first (its session is then known to the server).
          "$BIN" loadtest-requests --addr "$ADDR" --method GET --path /api/v1/me --first 100001 --count 50000 \
            --rate 20000 --connections 512 --sources "$SOURCES" >"$WORK/warm.json"
        else
          stop_server; start_server "$backend" "$db"
        fi
        id=$(post bench-100001 "hot $rate $warmth")
        before=$(cpu_of "$server_pid")
        "$BIN" loadtest-requests --addr "$ADDR" --path "/api/v1/posts/$id/like" --first 100001 --count 50000 \
          --rate "$rate" --connections 512 --sources "$SOURCES" --json "$WORK/likes-$backend-$rate-$warmth.json" >/dev/null
        after=$(cpu_of "$server_pid")
        sleep 1
        counted=$(sql "$backend" "$db" "SELECT (SELECT likes FROM post_stats WHERE post_id = $id) || ' = ' || (SELECT count(*) FROM likes WHERE post_id = $id)")
        j=$WORK/likes-$backend-$rate-$warmth.json
        say "| $warmth | $rate | $(field "$j" "round(d['per_sec'])") | $(field "$j" "round(d['latency_ms'][0], 1)") | $(field "$j" "round(d['latency_ms'][1], 1)") | $(field "$j" "round(d['latency_ms'][2], 1)") | $(field "$j" "round(d['latency_ms'][4], 1)") | $(field "$j" "d['retry_later']") | $(field "$j" "d['failed']") | $counted | $(python3 -c "print(round($after - $before, 1))" 2>/dev/null || echo ?) |"
      done
    done
    stop_server
  fi

  if [[ " $PARTS " == *" timeline "* ]]; then
    python3 bench/social_seed.py "$db" timeline 100001 200001 10000 100 1000 10 2>>"$WORK/seed.log"
    start_server "$backend" "$db"
    posts=$(sql "$backend" "$db" "SELECT count(*) FROM posts")
    rows=$(sql "$backend" "$db" "SELECT count(*) FROM timeline WHERE user_id = 100001")
    oldest=$(sql "$backend" "$db" "SELECT min(post_id) + (max(post_id) - min(post_id)) / 2 FROM timeline WHERE user_id = 100001")
    say ""
    say "### Home timeline: 1 000 accounts followed (10 merged at read time), $posts posts in the table, $rows fanned out to the reader"
    say ""
    say "| page | reads | /s | p50 ms | p90 ms | p99 ms | max ms |"
    say "|---|---|---|---|---|---|---|"
    for page in first deep; do
      path=/api/v1/timeline
      [ "$page" = deep ] && path="/api/v1/timeline?before=$oldest"
      "$BIN" loadtest-requests --addr "$ADDR" --method GET --path "$path" --token bench-100001 --count 3000 \
        --rate 200 --connections 16 --sources "$SOURCES" --json "$WORK/timeline-$backend-$page.json" >/dev/null
      j=$WORK/timeline-$backend-$page.json
      say "| $page | $(field "$j" "d['ok']") | $(field "$j" "round(d['per_sec'])") | $(field "$j" "round(d['latency_ms'][0], 1)") | $(field "$j" "round(d['latency_ms'][1], 1)") | $(field "$j" "round(d['latency_ms'][2], 1)") | $(field "$j" "round(d['latency_ms'][4], 1)") |"
    done
    stop_server
  fi

  if [[ " $PARTS " == *" alerts "* ]]; then
    host=100002
    python3 bench/social_seed.py "$db" followers $host 1000001 "$SUBSCRIBERS" $((SUBSCRIBERS / 10)) 2>>"$WORK/seed.log"
    start_server "$backend" "$db" --alerts-per-sec "$ALERT_RATE" --lobby-joins-per-sec $((ALERT_RATE * 2))
    space=$(curl -sf -X POST "$API/spaces" -H "authorization: Bearer bench-$host" -H 'content-type: application/json' \
      -d '{"title":"The big one"}' | python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])')
    t0=$(date +%s.%N)
    curl -sf -X POST "$API/spaces/$space/commands" -H "authorization: Bearer bench-$host" -H 'content-type: application/json' -d '{"cmd":"start"}'
    count_sent() { sql "$backend" "$db" "SELECT count(*) FROM alerts WHERE space_id = '$space' AND sent_at IS NOT NULL"; }
    until [ "$(sql "$backend" "$db" "SELECT count(*) FROM campaigns WHERE space_id = '$space'")" = 1 ]; do sleep 0.05; done
    listed=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
    # The pace over each second of 20, by the clock of each sample; then kill -9.
    : >"$WORK/pace-$backend.txt"
    prev=$(count_sent); prev_t=$(date +%s.%N)
    for s in $(seq 20); do
      sleep 1; now=$(count_sent); now_t=$(date +%s.%N)
      python3 -c "print(round(($now - $prev) / ($now_t - $prev_t)))" >>"$WORK/pace-$backend.txt"
      prev=$now; prev_t=$now_t
    done
    kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
    at_kill=$(count_sent)
    start_server "$backend" "$db" --alerts-per-sec "$ALERT_RATE" --lobby-joins-per-sec $((ALERT_RATE * 2))
    t1=$(date +%s.%N)
    until [ "$(count_sent)" = "$SUBSCRIBERS" ]; do sleep 1; [ "$(python3 -c "print(int($(date +%s) - $t1))")" -gt 900 ] && break; done
    resumed=$(python3 -c "import time; print(round(time.time() - $t1, 1))")
    sent=$(count_sent)
    notes=$(sql "$backend" "$db" "SELECT count(*) FROM notifications WHERE group_key = 'live:$space'")
    twice=$(sql "$backend" "$db" "SELECT count(*) FROM notifications n JOIN alerts a ON a.user_id = n.user_id AND a.space_id = '$space' AND a.kind = 'live' WHERE n.group_key = 'live:$space' AND n.at_ms <> a.sent_at")
    order=$(sql "$backend" "$db" "SELECT CASE WHEN (SELECT max(sent_at) FROM alerts WHERE space_id = '$space' AND user_id < $((1000001 + SUBSCRIBERS / 10))) <= (SELECT min(sent_at) FROM alerts WHERE space_id = '$space' AND user_id >= $((1000001 + SUBSCRIBERS / 10))) THEN 'yes' ELSE 'no' END")
    pace=$(python3 -c "v = [int(x) for x in open('$WORK/pace-$backend.txt')][2:]; v.sort(); print(f'{v[len(v)//2]} (min {v[0]}, max {v[-1]})')")
    say ""
    say "### Live alerts to $SUBSCRIBERS subscribers (--alerts-per-sec $ALERT_RATE, the waiting room admits $((ALERT_RATE * 2)) a second)"
    say ""
    say "- listed (from the start command to the campaign's recipients written): $listed s"
    say "- sent a second (each sample's count over its own interval), seconds 3 to 20: median $pace (each: $(tr '\n' ' ' <"$WORK/pace-$backend.txt"))"
    say "- kill -9 after 20 s with $at_kill sent; after the restart the rest took $resumed s (the lease of 30 s runs out first)"
    say "- at the end: $sent sent, $notes inbox entries, $twice written at another moment than their alert's one send (0: none sent twice); the 10 % who listened lately all before the others: $order"
    stop_server
  fi

  if [[ " $PARTS " == *" follows "* ]]; then
    python3 bench/social_seed.py "$db" follows 3000001 "$FOLLOW_USERS" 300001 1000 10 2>>"$WORK/seed.log"
    rows=$(sql "$backend" "$db" "SELECT count(*) FROM follows")
    start_server "$backend" "$db"
    # A Space live for one of the hosts the users follow: it is in their live bar.
    space=$(curl -sf -X POST "$API/spaces" -H "authorization: Bearer bench-300001" -H 'content-type: application/json' \
      -d '{"title":"Live now"}' | python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])' || echo "")
    [ -n "$space" ] && curl -sf -X POST "$API/spaces/$space/commands" -H "authorization: Bearer bench-300001" -H 'content-type: application/json' -d '{"cmd":"start"}'
    say ""
    say "### $rows follow rows"
    say ""
    say "| read | reads | p50 ms | p99 ms | max ms |"
    say "|---|---|---|---|---|"
    # The largest account: the alerts' host when that part ran.
    big=$(sql "$backend" "$db" "SELECT user_id FROM user_stats ORDER BY followers DESC LIMIT 1")
    "$BIN" loadtest-requests --addr "$ADDR" --method GET --path "/api/v1/users/b$big" --token bench-100001 --count 2000 \
      --rate 200 --connections 16 --sources "$SOURCES" --json "$WORK/profile-$backend.json" >/dev/null
    j=$WORK/profile-$backend.json
    say "| a profile with $(sql "$backend" "$db" "SELECT followers FROM user_stats WHERE user_id = $big") followers (counts from user_stats) | $(field "$j" "d['ok']") | $(field "$j" "round(d['latency_ms'][0], 1)") | $(field "$j" "round(d['latency_ms'][2], 1)") | $(field "$j" "round(d['latency_ms'][4], 1)") |"
    "$BIN" loadtest-requests --addr "$ADDR" --method GET --path "/api/v1/timeline?limit=1" --token bench-3000001 --count 2000 \
      --rate 200 --connections 16 --sources "$SOURCES" --json "$WORK/livebar-$backend.json" >/dev/null
    j=$WORK/livebar-$backend.json
    say "| the live bar of an account following 10 (timeline, first page) | $(field "$j" "d['ok']") | $(field "$j" "round(d['latency_ms'][0], 1)") | $(field "$j" "round(d['latency_ms'][2], 1)") | $(field "$j" "round(d['latency_ms'][4], 1)") |"
    counted=$(timed_count "$backend" "$db" "SELECT count(*) FROM follows WHERE followee_id = $big")
    say "| the same count by counting the rows (what user_stats saves), once | 1 | $counted | | |"
    stop_server
  fi
done

cat "$OUT.head" "$OUT.body" >"$OUT"; rm -f "$OUT.head" "$OUT.body"
echo "results in $OUT (raw in $WORK)"
