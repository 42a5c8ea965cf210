#!/usr/bin/env bash
# wait-ready.sh - wait until a request through the load balancer reaches the database (`make up`).
#
# `docker compose up --wait` returns once every container is healthy, and each healthcheck looks
# at its own server only: an app node is "healthy" while the database refuses its password, a db
# node while it is a standby. This asks the whole path instead: GET /api/readyz through lb1's
# published port (HAProxy -> nginx -> Gunicorn -> the primary) must answer 200, several times in a
# row so both web and both app nodes are asked. Bounded: READY_TIMEOUT seconds (default 90).
# On failure it says what the app answered, and the cause and the fix where it knows them.
set -euo pipefail

url="http://127.0.0.1:${LB_HTTP_PORT:-8080}/api/readyz"
timeout=${READY_TIMEOUT:-90}

say() { printf 'ready: %s\n' "$*" >&2; }

# One GET: prints "<status> <body>" (status 000 if nothing answered).
ask() {
  python3 - "$url" <<'PY'
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status, r.read().decode(errors="replace").strip())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode(errors="replace").strip())
except OSError as e:
    print("000", e)
PY
}

deadline=$((SECONDS + timeout))
in_a_row=0
answer=""
while [ "$SECONDS" -lt "$deadline" ]; do
  answer=$(ask)
  if [ "${answer%% *}" = 200 ]; then
    in_a_row=$((in_a_row + 1))
    if [ "$in_a_row" -ge 4 ]; then
      say "$url answers 200: the load balancer reaches the database"
      exit 0
    fi
  else
    in_a_row=0
    # A wrong password will not fix itself: say so at once instead of waiting out the timeout.
    if [[ "$answer" == *credentials* ]]; then
      break
    fi
  fi
  sleep 0.5
done

say "the stack is up but not ready: $url answered: $answer"
if [[ "$answer" == *credentials* ]]; then
  say "cause: the database rejects the app's password. Its roles were made with the passwords in"
  say "       .secrets/ when its volumes were first created; .secrets/ has changed since (deleted"
  say "       and made again, or this is another checkout beside an old volume)."
  say "fix:   put back the .secrets/ that made the volumes, or start the database afresh, which"
  say "       DELETES ITS DATA:  make clean && make up"
else
  say "look:  make ps; make db-status (is there a primary?); make logs"
fi
exit 1
