#!/usr/bin/env bash
# rolling-restart.sh - restart every replicated tier one node at a time, with no client-visible
# error (`make rolling-restart`; the failover tests run it under load).
#
#   load balancers  the backup first (it carries no traffic), then the VIP holder: its entrypoint
#                   hands the VIP to the other node before HAProxy stops, and waits for open
#                   connections to finish;
#   web servers     drained in HAProxy first (no new requests), restarted once idle, then put back;
#   app servers     restarted gracefully: Gunicorn finishes in-flight requests, and nginx sends new
#                   ones to the other node meanwhile (connection refused = try the next upstream).
# The database tier is not restarted here: its nodes are restarted one at a time with a switchover
# away from the primary first (`make db-switchover`), see README "The database tier".
#
# Usage: rolling-restart.sh [lb] [web] [app]   (default: all three, in that order)
set -euo pipefail
cd "$(dirname "$0")/.."
compose=(docker compose)

say() { printf '%(%H:%M:%S)T rolling-restart: %s\n' -1 "$*"; }

# Poll (every 0.2 s, at most 30 s) until a command succeeds.
poll() {
  for _ in $(seq 1 150); do "$@" && return 0; sleep 0.2; done
  say "gave up waiting for: $*"; return 1
}

# Run a command on an LB node's HAProxy runtime API, as the haproxy user who owns its socket.
haproxy_api() { "${compose[@]}" exec -T --user haproxy "$1" sh -c "echo '$2' | socat stdio /var/run/haproxy/admin.sock"; }

# Restart one service and return once Docker reports it healthy again.
restart_and_wait() {
  say "restarting $1"
  "${compose[@]}" restart "$1" >/dev/null
  "${compose[@]}" up --detach --wait --no-deps --no-recreate "$1" >/dev/null 2>&1
  say "$1 is healthy"
}

vip_holder() {
  local addresses
  for lb in lb1 lb2; do
    addresses=$("${compose[@]}" exec -T "$lb" ip -4 -o addr show dev eth0)
    if grep -q " ${VIP:-}/" <<<"$addresses"; then echo "$lb"; fi
  done
}

# Wait until both web nodes send requests to app node $1 again. nginx leaves a node that refused
# connections out for `fail_timeout` (5 s), and open-source nginx has no API to ask: so we ask
# through the traffic itself, until a few /api/whoami calls through each web node reach $1.
reaches_app() {
  local answers
  answers=$("${compose[@]}" exec -T "$1" sh -c \
    'for i in 1 2 3 4; do curl -s http://127.0.0.1:8080/api/whoami; echo; done')
  grep -q "\"app\":\"$2\"" <<<"$answers"
}
wait_in_rotation() {
  for web in web1 web2; do poll reaches_app "$web" "$1"; done
  say "$1 is back in rotation on web1 and web2"
}

restart_lbs() {
  VIP=$("${compose[@]}" exec -T lb1 printenv VIP)
  holder=$(vip_holder | head -n 1)
  backup=$([ "$holder" = lb1 ] && echo lb2 || echo lb1)
  say "VIP $VIP is on ${holder:-nobody}; restarting the backup $backup first"
  restart_and_wait "$backup"
  restart_and_wait "${holder:-lb1}"
}

# A web server's column in `show stat` on both LBs, one value per line: column 5 is scur (the
# requests in progress on it), column 18 its status (UP, DOWN, DRAIN, ...).
web_stat_on_both_lbs() {
  for lb in lb1 lb2; do
    haproxy_api "$lb" "show stat" | awk -F, -v s="$1" -v c="$2" '$1=="web" && $2==s {print $c}'
  done
}

idle_on_both_lbs() { [ "$(web_stat_on_both_lbs "$1" 5 | sort -u)" = 0 ]; }
up_on_both_lbs() { [ "$(web_stat_on_both_lbs "$1" 18 | sort -u)" = UP ]; }

restart_webs() {
  for web in web1 web2; do
    say "draining $web on both load balancers"
    for lb in lb1 lb2; do haproxy_api "$lb" "set server web/$web state drain" >/dev/null; done
    poll idle_on_both_lbs "$web"
    restart_and_wait "$web"
    for lb in lb1 lb2; do haproxy_api "$lb" "set server web/$web state ready" >/dev/null; done
    # Back in rotation once both LBs' health checks see it UP (rise 2 x inter 0.5 s).
    poll up_on_both_lbs "$web"
    say "$web is back in rotation"
  done
}

restart_apps() {
  for app in app1 app2; do
    restart_and_wait "$app"
    wait_in_rotation "$app"
  done
}

tiers=("$@")
[ ${#tiers[@]} -gt 0 ] || tiers=(lb web app)
for tier in "${tiers[@]}"; do
  case "$tier" in
    lb) restart_lbs ;;
    web) restart_webs ;;
    app) restart_apps ;;
    *) echo "usage: $0 [lb] [web] [app]" >&2; exit 2 ;;
  esac
done
say "done"
