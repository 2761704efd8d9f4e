#!/usr/bin/env bash
# The budget of password hashing: 80 concurrent wrong sign-ins, once from one address for
# one account, then three rounds from 80 addresses for 80 accounts; the server's resident
# memory before and after, and what every request was answered.
# Usage: bench/signin.sh   (loopback only; writes bench/results/signin-DATE.md)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q --bin stentor
bin=target/release/stentor
file="bench/results/signin-$(date +%F).md"
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
$bin serve --bind "127.0.0.1:$port" --data-dir "$data" >"$data/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
rss() { awk "/$1/ { print \$2 }" "/proc/$pid/status"; }
sign_in() { # address handle password
  curl -s --interface "$1" -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/api/v1/sessions" \
    -H 'content-type: application/json' -d "{\"handle\":\"$2\",\"password\":\"$3\"}"
}
export -f sign_in; export port
curl -s -o /dev/null "http://127.0.0.1:$port/api/v1/accounts" -H 'content-type: application/json' \
  -d '{"handle":"victim","password":"password-1"}'
{
  echo "# Sign-in budget, $(date +%F)"
  echo
  echo "Command: \`bench/signin.sh\` ($(nproc) cores; release build; hashing threads: 2 × cores)."
  echo
  echo "| round | answers | RSS before (kB) | RSS after (kB) | peak RSS (kB) |"
  echo "|---|---|---|---|---|"
  before=$(rss VmRSS)
  answers=$(seq 80 | xargs -P 80 -I{} bash -c 'sign_in 127.0.50.1 victim wrong-{}-pw' | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}')
  echo "| one address, one account | $answers | $before | $(rss VmRSS) | $(rss VmHWM) |"
  for round in 1 2 3; do
    before=$(rss VmRSS)
    answers=$(seq 80 | xargs -P 80 -I{} bash -c "sign_in 127.0.$((50 + round)).{} user{} wrong-pw-{}" | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}')
    echo "| 80 addresses, 80 accounts, round $round | $answers | $before | $(rss VmRSS) | $(rss VmHWM) |"
  done
} | tee "$file"
