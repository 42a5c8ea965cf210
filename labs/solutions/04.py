"""Lab 04, a reference solution: `balance leastconn` in haproxy.cfg, both LBs rebuilt.

By hand: edit haproxy/haproxy.cfg (backend web: `balance leastconn`), then
    docker compose up -d --build --no-deps lb1 lb2
    docker compose exec -u haproxy lb1 \
        sh -c "echo 'show stat' | socat stdio /var/run/haproxy/admin.sock" \
        | cut -d, -f1,2,5,18,77      # pxname, svname, scur, status, algo
(Setting LB_BALANCE=leastconn in the LBs' environment works too: haproxy.cfg reads it.)
"""

from labs.lablib import Lab


def apply(lab: Lab) -> None:
    lab.edit("haproxy/haproxy.cfg", 'balance "${LB_BALANCE-roundrobin}"', "balance leastconn")
    lab.stack.rebuild("lb1", "lb2")
