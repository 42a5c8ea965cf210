"""Security by default: only the LBs are published, tiers are isolated, servers run unprivileged,
and the app's database role cannot change the schema."""

import json
import subprocess

from tests.stack import SERVICES, Stack


def inspect(stack: Stack, service: str) -> dict:
    container_id = stack.docker_compose("ps", "-q", service).stdout.strip()
    result = subprocess.run(
        ["docker", "inspect", container_id], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)[0]


def test_only_the_load_balancers_publish_ports_and_only_on_loopback(stack: Stack) -> None:
    for service in SERVICES:
        bindings = inspect(stack, service)["HostConfig"]["PortBindings"] or {}
        if service in ("lb1", "lb2"):
            host_ips = {b["HostIp"] for spec in bindings.values() for b in spec}
            assert set(bindings) == {"8080/tcp", "8404/tcp"}
            assert host_ips == {"127.0.0.1"}
        else:
            assert bindings == {}, f"{service} publishes {bindings}"


def test_each_tier_reaches_only_its_neighbours(stack: Stack) -> None:
    # `getent hosts NAME` succeeds only if NAME resolves, i.e. shares a network with the caller.
    reachable = {
        ("lb1", "web1"): True,
        ("lb1", "app1"): False,
        ("lb1", "db"): False,
        ("web1", "app1"): True,
        ("web1", "db"): False,
        ("app1", "db"): True,
    }
    for (source, target), expected in reachable.items():
        result = stack.exec(source, "getent", "hosts", target)
        assert (result.returncode == 0) is expected, f"{source} -> {target}"


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
        "db": "postgres",
    }
    for service, server in servers.items():
        users = process_users(stack, service)
        assert users.get(server), f"no {server} process in {service}: {users}"
        assert "0" not in users[server], f"{server} runs as root in {service}"
    # keepalived is the one process that needs root (it adds and removes the virtual IP).
    assert process_users(stack, "lb1").get("keepalived") == {"0"}


def test_app_role_cannot_create_tables_or_delete(stack: Stack) -> None:
    def as_app_role(sql: str) -> subprocess.CompletedProcess[str]:
        script = (
            'PGPASSWORD="$(cat /run/secrets/db_app_password)" '
            f'psql -h 127.0.0.1 -U guestbook_app -d guestbook -v ON_ERROR_STOP=1 -c "{sql}"'
        )
        return stack.exec("db", "bash", "-c", script)

    allowed = as_app_role("SELECT count(*) FROM messages")
    assert allowed.returncode == 0, allowed.stderr
    for sql in ("CREATE TABLE intruder (id int)", "DELETE FROM messages", "DROP TABLE messages"):
        refused = as_app_role(sql)
        assert refused.returncode != 0, sql
        assert "permission denied" in refused.stderr or "must be owner" in refused.stderr, sql


def test_no_secret_is_baked_into_an_image(stack: Stack) -> None:
    secret = (stack.compose.context / ".secrets" / "db_app_password").read_text().strip()
    for image in ("fourtier/lb", "fourtier/web", "fourtier/app", "fourtier/db"):
        history = subprocess.run(
            ["docker", "history", "--no-trunc", image], capture_output=True, text=True, check=True
        )
        config = subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
        )
        assert secret not in history.stdout + config.stdout, image
