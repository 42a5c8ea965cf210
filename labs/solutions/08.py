"""Lab 08, a reference solution: VRRP adverts every 0.1 s instead of 0.5 s.

The backup declares the master dead after 3 x advert_int + skew ((256 - priority) / 256 x
advert_int): 0.3 + 0.06 s instead of 1.5 + 0.3 s. The cost: five times the VRRP packets (10 a
second from the master), and a master that stalls for 0.4 s (a busy machine, a long garbage
collection, a loaded hypervisor) loses the VIP: a false failover, which costs the connections
open at that moment.

By hand: edit haproxy/keepalived.conf.template (`advert_int 0.1`), then
    docker compose up -d --build --no-deps lb1 lb2
"""

from labs.lablib import Lab


def apply(lab: Lab) -> None:
    lab.edit("haproxy/keepalived.conf.template", "advert_int 0.5", "advert_int 0.1")
    lab.stack.rebuild_tier_by_tier("lb1", "lb2")
