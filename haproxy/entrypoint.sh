#!/usr/bin/env bash
# entrypoint.sh - run HAProxy and keepalived side by side; if either exits, stop both.
#
# The two must live and die together: keepalived holds the virtual IP for this HAProxy, so a VIP
# without a running HAProxy (or a running keepalived that nobody checks) would be a trap. When one
# of them exits, this script stops the other and exits, the container stops, and its network
# namespace, VIP included, disappears with it; Docker's restart policy then starts a fresh pair.
#
# Without VIP (the VIP variable empty), only HAProxy runs.
set -euo pipefail

# -W: master-worker mode: a master process supervises the worker, and a `reload` on the master
#     CLI starts a new worker on the same listening sockets while the old one finishes its
#     connections (a hitless reload).
# -db: stay in the foreground, logs to stdout.
# -S: the master CLI socket (`echo reload | socat stdio /var/run/haproxy/master.sock`).
haproxy_cmd=(haproxy -W -db -f /etc/haproxy/haproxy.cfg -S /var/run/haproxy/master.sock)

if [ -z "${VIP:-}" ]; then
  exec setpriv --reuid haproxy --regid haproxy --init-groups "${haproxy_cmd[@]}"
fi

: "${SELF_IP:?}" "${PEER_IP:?}" "${VRRP_PRIORITY:?}"
export NODE_NAME=${NODE_NAME:-$(hostname)}
envsubst '${NODE_NAME} ${VRRP_PRIORITY} ${SELF_IP} ${PEER_IP} ${VIP}' \
  </etc/keepalived/keepalived.conf.template >/etc/keepalived/keepalived.conf

# HAProxy runs as the unprivileged haproxy user (master and workers); keepalived needs root and
# the NET_ADMIN capability to add and remove the VIP.
setpriv --reuid haproxy --regid haproxy --init-groups "${haproxy_cmd[@]}" &
haproxy_pid=$!
keepalived --dont-fork --log-console --no-syslog --use-file /etc/keepalived/keepalived.conf &
keepalived_pid=$!

stop() {
  # keepalived first: it gives up the VIP at once (announcing priority 0), so new connections go
  # to the other node; then HAProxy finishes the connections it has (SIGUSR1: soft stop).
  kill -TERM "$keepalived_pid" 2>/dev/null || true
  wait "$keepalived_pid" 2>/dev/null || true
  kill -USR1 "$haproxy_pid" 2>/dev/null || true
  wait "$haproxy_pid" 2>/dev/null || true
  exit 0
}
trap stop TERM INT

# Wait until either process exits (or a signal arrives, handled by `stop`).
set +e
wait -n "$haproxy_pid" "$keepalived_pid"
status=$?
echo "entrypoint: haproxy or keepalived exited (status $status); stopping the other" >&2
kill -TERM "$keepalived_pid" "$haproxy_pid" 2>/dev/null
wait
exit "$status"
