#!/usr/bin/env bash
# entrypoint.sh - run HAProxy, its log shipper and keepalived side by side; if one exits, stop
# them all.
#
# They must live and die together: keepalived holds the virtual IP for this HAProxy, so a VIP
# without a running HAProxy (or a running keepalived that nobody checks) would be a trap. When one
# of them exits, this script stops the others and exits, the container stops, and its network
# namespace, VIP included, disappears with it; Docker's restart policy then starts a fresh set.
#
# Without VIP (the VIP variable empty), keepalived is not started.
set -euo pipefail

# HAProxy and the log shipper run as the unprivileged haproxy user; keepalived needs root and the
# NET_ADMIN capability to add and remove the VIP.
as_haproxy=(setpriv --reuid haproxy --regid haproxy --init-groups)
# -W: master-worker mode: a master process supervises the worker, and a `reload` on the master
#     CLI starts a new worker on the same listening sockets while the old one finishes its
#     connections (a hitless reload).
# -db: stay in the foreground.
# -S: the master CLI socket (`echo reload | socat stdio /var/run/haproxy/master.sock`).
haproxy_cmd=(haproxy -W -db -f /etc/haproxy/haproxy.cfg -S /var/run/haproxy/master.sock)

# The log shipper (log-shipper.pl) receives HAProxy's log lines and writes them to stdout in
# batches. Started first, so it is listening before HAProxy logs its first line.
"${as_haproxy[@]}" /usr/local/bin/log-shipper.pl &
shipper_pid=$!
"${as_haproxy[@]}" "${haproxy_cmd[@]}" &
haproxy_pid=$!
pids=("$shipper_pid" "$haproxy_pid")

keepalived_pid=
if [ -n "${VIP:-}" ]; then
  : "${SELF_IP:?}" "${PEER_IP:?}" "${VRRP_PRIORITY:?}"
  export NODE_NAME=${NODE_NAME:-$(hostname)}
  envsubst '${NODE_NAME} ${VRRP_PRIORITY} ${SELF_IP} ${PEER_IP} ${VIP}' \
    </etc/keepalived/keepalived.conf.template >/etc/keepalived/keepalived.conf
  keepalived --dont-fork --log-console --no-syslog --use-file /etc/keepalived/keepalived.conf &
  keepalived_pid=$!
  pids+=("$keepalived_pid")
fi

stop() {
  # keepalived first: it gives up the VIP at once (announcing priority 0), so new connections go
  # to the other node; then HAProxy finishes the connections it has (SIGUSR1: soft stop); last
  # the log shipper, once HAProxy has logged its last request.
  for pid_and_signal in "$keepalived_pid:TERM" "$haproxy_pid:USR1" "$shipper_pid:TERM"; do
    pid=${pid_and_signal%:*}
    [ -n "$pid" ] || continue
    kill "-${pid_and_signal#*:}" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  exit 0
}
trap stop TERM INT

# Wait until any of them exits (or a signal arrives, handled by `stop`).
set +e
wait -n "${pids[@]}"
status=$?
echo "entrypoint: haproxy, its log shipper or keepalived exited (status $status); stopping the others" >&2
kill -TERM "${pids[@]}" 2>/dev/null
wait
exit "$status"
