"""Security by default: only the LBs are published, tiers are isolated, servers run unprivileged,
and the app's database role cannot change the schema."""

import json
import subprocess

from tests.stack import (
    DB_NODES,
    ETCD_NODES,
    IMAGE_TAG,
    MONITOR_SERVICES,
    SERVICES,
    Stack,
    db_primary,
    psql,
)


def inspect(stack: Stack, service: str) -> dict:
    container_id = stack.docker_compose("ps", "-q", service).stdout.strip()
    result = subprocess.run(
        ["docker", "inspect", container_id], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)[0]


def test_only_the_load_balancers_and_prometheus_publish_ports_and_only_on_loopback(
    stack: Stack,
) -> None:
    published = {lb: {"8080/tcp", "8443/tcp", "8404/tcp"} for lb in ("lb1", "lb2")}
    published["prometheus"] = {"9090/tcp"}
    for service in (*SERVICES, *MONITOR_SERVICES):
        bindings = inspect(stack, service)["HostConfig"]["PortBindings"] or {}
        if service in published:
            host_ips = {b["HostIp"] for spec in bindings.values() for b in spec}
            assert set(bindings) == published[service], service
            assert host_ips == {"127.0.0.1"}, service
        else:
            assert bindings == {}, f"{service} publishes {bindings}"


def test_each_tier_reaches_only_its_neighbours(stack: Stack) -> None:
    # `getent hosts NAME` succeeds only if NAME resolves, i.e. shares a network with the caller.
    reachable = {
        ("lb1", "web1"): True,
        ("lb1", "app1"): False,
        ("lb1", "db1"): False,
        ("web1", "app1"): True,
        ("web1", "db1"): False,
        ("app1", "db1"): True,
        ("app1", "db3"): True,
        # The consensus store is the db nodes' business alone.
        ("app1", "etcd1"): False,
        ("web1", "etcd1"): False,
        ("db1", "etcd1"): True,
        ("db2", "db3"): True,
        # Prometheus reaches every tier; the tiers reach no exporter of another tier.
        ("prometheus", "lb1"): True,
        ("prometheus", "app2"): True,
        ("prometheus", "etcd3"): True,
        ("lb1", "web1-exporter"): False,
        ("lb1", "db1-exporter"): False,
        ("web1", "db1-exporter"): False,
    }
    for (source, target), expected in reachable.items():
        result = stack.exec(source, "getent", "hosts", target)
        assert (result.returncode == 0) is expected, f"{source} -> {target}"


# The networks of every container of the four tiers: each pair of neighbouring tiers shares one.
# Monitoring adds none of them to a tier's node (Prometheus joins the tiers' networks instead), so
# no node can reach a tier it could not reach before monitoring came.
TIER_NETWORKS = {
    "lb1": {"lb_web"},
    "lb2": {"lb_web"},
    "web1": {"lb_web", "web_app"},
    "web2": {"lb_web", "web_app"},
    "app1": {"web_app", "app_db"},
    "app2": {"web_app", "app_db"},
    **{node: {"app_db", "db_cluster"} for node in DB_NODES},
    **{node: {"db_cluster"} for node in ETCD_NODES},
    # The exporters sit on their node's network only.
    "web1-exporter": {"web_app"},
    "web2-exporter": {"web_app"},
    **{f"{node}-exporter": {"app_db"} for node in DB_NODES},
}


def networks(stack: Stack, service: str) -> set[str]:
    """The Compose networks a service's container is attached to, without the project prefix."""
    attached = inspect(stack, service)["NetworkSettings"]["Networks"]
    return {name.removeprefix(f"{stack.project}_") for name in attached}


def test_no_container_but_prometheus_gained_a_network(stack: Stack) -> None:
    for service, expected in TIER_NETWORKS.items():
        assert networks(stack, service) == expected, service
    # Prometheus is on every tier's network(s), and must not forward packets between them: IP
    # forwarding is off in its network namespace (no node has a route through it anyway).
    assert networks(stack, "prometheus") == {"lb_web", "web_app", "app_db", "db_cluster"}
    forwarding = stack.exec("prometheus", "cat", "/proc/sys/net/ipv4/ip_forward")
    assert forwarding.stdout.strip() == "0"


def test_monitoring_containers_are_unprivileged_and_read_only(stack: Stack) -> None:
    for service in MONITOR_SERVICES:
        config = inspect(stack, service)
        assert config["HostConfig"]["ReadonlyRootfs"] is True, service
        assert config["HostConfig"]["CapDrop"] == ["ALL"], service
        assert config["Config"]["User"] not in ("", "root", "0"), service


def process_users(stack: Stack, service: str) -> dict[str, set[str]]:
    """Command name -> the user ids it runs as, for every process in a service's container."""
    script = 'for s in /proc/[0-9]*/status; do grep -E "^(Name|Uid):" "$s" | paste -s; done'
    result = stack.exec(service, "sh", "-c", script)
    users: dict[str, set[str]] = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4:  # Name: <name> Uid: <real> <effective> ...
            users.setdefault(fields[1], set()).add(fields[4])
    return users


def test_servers_run_as_non_root(stack: Stack) -> None:
    servers = {
        "lb1": "haproxy",
        "lb2": "haproxy",
        "web1": "nginx",
        "web2": "nginx",
        "app1": "gunicorn",
        "app2": "gunicorn",
        **{node: "postgres" for node in DB_NODES},
        **{node: "etcd" for node in ETCD_NODES},
    }
    for node in DB_NODES:
        assert "0" not in process_users(stack, node).get("patroni", {"0"}), f"patroni in {node}"
    for service, server in servers.items():
        users = process_users(stack, service)
        assert users.get(server), f"no {server} process in {service}: {users}"
        assert "0" not in users[server], f"{server} runs as root in {service}"
    # keepalived is the one process that needs root (it adds and removes the virtual IP).
    assert process_users(stack, "lb1").get("keepalived") == {"0"}


def test_app_role_cannot_create_tables_or_delete(stack: Stack) -> None:
    # On the primary: a standby would refuse every write for another reason (read-only).
    primary = db_primary(stack)
    assert primary, "no database primary"
    allowed = psql(stack, primary, "SELECT count(*) FROM messages", user="app")
    assert allowed.returncode == 0, allowed.stderr
    for sql in ("CREATE TABLE intruder (id int)", "DELETE FROM messages", "DROP TABLE messages"):
        refused = psql(stack, primary, sql, user="app")
        assert refused.returncode != 0, sql
        assert "permission denied" in refused.stderr or "must be owner" in refused.stderr, sql


def test_the_app_role_and_schema_exist_on_every_db_node(stack: Stack) -> None:
    # Made once by the bootstrap primary (Patroni's post_bootstrap); the standbys got them by
    # replication, so whichever node becomes primary serves the app the same way.
    for node in DB_NODES:
        result = psql(stack, node, "SELECT count(*) >= 0 FROM messages", user="app")
        assert result.returncode == 0 and result.stdout.strip() == "t", (node, result.stderr)


def test_no_secret_is_baked_into_an_image(stack: Stack) -> None:
    secrets = [
        path.read_text().strip() for path in (stack.compose.context / ".secrets").glob("db_*")
    ]
    assert len(secrets) == 6
    for tier in ("lb", "web", "app", "db", "monitor"):
        image = f"fourtier/{tier}:{IMAGE_TAG}"
        history = subprocess.run(
            ["docker", "history", "--no-trunc", image], capture_output=True, text=True, check=True
        )
        config = subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
        )
        for secret in secrets:
            assert secret not in history.stdout + config.stdout, image


def test_no_password_in_a_db_container_environment(stack: Stack) -> None:
    # Patroni gets its passwords from a file the entrypoint writes, readable by postgres only.
    secrets = [
        path.read_text().strip() for path in (stack.compose.context / ".secrets").glob("db_*")
    ]
    for service in (*DB_NODES, *ETCD_NODES):
        environment = "\n".join(inspect(stack, service)["Config"]["Env"])
        assert not any(secret in environment for secret in secrets), service
    listing = stack.exec("db1", "stat", "-c", "%a %U", "/run/patroni/90-secrets.yml")
    assert listing.stdout.split() == ["600", "postgres"]
