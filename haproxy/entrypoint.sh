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
# -S: the master CLI socket (`echo reload | socat stdio /var/run/haproxy/master.sock`, run as
#     the haproxy user: `docker compose exec -u haproxy lb1 ...`).
haproxy_cmd=(haproxy -W -db -f /etc/haproxy/haproxy.cfg -S /var/run/haproxy/master.sock)

# The sockets' directory, made by the haproxy user itself: /run is a fresh tmpfs in a hardened
# container (read-only root filesystem), and root here has no CHOWN capability to hand it over.
"${as_haproxy[@]}" mkdir -p -m 0750 /var/run/haproxy

# The TLS certificate and its key (scripts/make-certs.sh, or the user's own), a Compose secret:
# bind-mounted from the host as it is there (.secrets/tls/ is 0700 on the host). Copied, by the
# haproxy user itself, into a directory only that user can read: nothing else in the container
# (keepalived, the log shipper) can read the key, and root needs no CHOWN capability to give it
# away. HAProxy reads it again from there on a reload.
tls_dir=/run/haproxy-tls
"${as_haproxy[@]}" mkdir -p -m 0700 "$tls_dir"
"${as_haproxy[@]}" install -m 0400 /run/secrets/lb_tls_pem "$tls_dir/site.pem"

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
    </etc/keepalived/keepalived.conf.template >/run/keepalived.conf
  keepalived --dont-fork --log-console --no-syslog --use-file /run/keepalived.conf &
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
