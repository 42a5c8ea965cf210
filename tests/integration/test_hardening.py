"""Hardened containers: every service of the stack runs with a read-only root filesystem, every
capability dropped but the few its server needs, no way to gain privileges, memory and process
limits, and a non-root user wherever the server allows (docs/security.md, "Hardened containers").

Each point is read twice: from `docker inspect` (what Docker was told) and from inside the running
container (what the kernel enforces), so a setting that Docker accepted but did not apply fails
too. The failover tests then run on this same hardened stack (`make test-stack`)."""

import json
import subprocess

import pytest

from tests.stack import MONITOR_SERVICES, SERVICES, Stack

# Every container of the stack: the tiers and their monitoring.
EVERY_SERVICE = (*SERVICES, *MONITOR_SERVICES)

# The capabilities each service may add back after `cap_drop: [ALL]` (docker-compose.yml).
# Only the LBs need any, for keepalived and for starting HAProxy as its own user.
ALLOWED_CAPABILITIES = {service: set() for service in EVERY_SERVICE}
for lb in ("lb1", "lb2"):
    ALLOWED_CAPABILITIES[lb] = {"NET_ADMIN", "NET_RAW", "SETUID", "SETGID"}

# The containers that start as root, and why: keepalived must add and remove the virtual IP (an
# address on the container's interface), which needs NET_ADMIN in a root process; Docker 20.10
# gives a non-root user no capabilities (no ambient set), and no-new-privileges forbids file
# capabilities. HAProxy and its log shipper are started as `haproxy` (test_isolation.py checks).
ROOT_CONTAINERS = {"lb1", "lb2"}

# Linux capability numbers (include/uapi/linux/capability.h), to read /proc/<pid>/status.
CAPABILITY_BITS = {"SETGID": 6, "SETUID": 7, "NET_ADMIN": 12, "NET_RAW": 13}


def inspect(stack: Stack, service: str) -> dict:
    container_id = stack.docker_compose("ps", "-q", service).stdout.strip()
    assert container_id, f"{service} is not running"
    result = subprocess.run(
        ["docker", "inspect", container_id], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)[0]


def capability_mask(names: set[str]) -> int:
    return sum(1 << CAPABILITY_BITS[name] for name in names)


@pytest.mark.parametrize("service", EVERY_SERVICE)
def test_docker_runs_the_service_hardened(stack: Stack, service: str) -> None:
    host = inspect(stack, service)["HostConfig"]
    assert host["ReadonlyRootfs"] is True, f"{service}: root filesystem is writable"
    assert [c.removeprefix("CAP_") for c in host["CapDrop"] or []] == ["ALL"], service
    added = {c.removeprefix("CAP_") for c in host["CapAdd"] or []}
    assert added == ALLOWED_CAPABILITIES[service], f"{service} adds {added}"
    assert any(o.startswith("no-new-privileges") for o in host["SecurityOpt"] or []), service
    assert "no-new-privileges:false" not in (host["SecurityOpt"] or []), service
    assert host["Privileged"] is False, service
    assert host["Memory"] > 0, f"{service} has no memory limit"
    assert (host["PidsLimit"] or 0) > 0, f"{service} has no pids limit"


@pytest.mark.parametrize("service", EVERY_SERVICE)
def test_the_kernel_enforces_it_inside_the_container(stack: Stack, service: str) -> None:
    # PID 1's bounding set (no process in the container can ever hold a capability outside it),
    # its no_new_privs flag, its user, and an attempt to write to the root filesystem.
    script = (
        'grep -E "^(CapBnd|NoNewPrivs):" /proc/1/status; echo "Uid: $(id -u)"; '
        'touch /hardening-probe 2>/dev/null && echo "write: ok" || echo "write: refused"'
    )
    result = stack.exec(service, "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    status = dict(line.split(":", 1) for line in result.stdout.splitlines())
    status = {key: value.strip() for key, value in status.items()}
    assert int(status["CapBnd"], 16) == capability_mask(ALLOWED_CAPABILITIES[service]), status
    assert status["NoNewPrivs"] == "1", status
    assert status["write"] == "refused", f"{service} could write to its root filesystem"
    # `docker compose exec` runs as the container's user: the one its server starts as.
    assert (status["Uid"] == "0") is (service in ROOT_CONTAINERS), f"{service} user {status}"


@pytest.fixture(scope="module")
def usage(stack: Stack) -> dict[str, dict]:
    """`docker stats` of every service (one sample, all containers at once: ~2 s)."""
    ids = {inspect(stack, service)["Id"]: service for service in EVERY_SERVICE}
    result = subprocess.run(
        ["docker", "stats", "--no-stream", "--no-trunc", "--format", "{{json .}}", *ids],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {ids[row["ID"]]: row for row in rows}


@pytest.mark.parametrize("service", EVERY_SERVICE)
def test_limits_leave_room_above_what_the_service_uses(
    stack: Stack, usage: dict[str, dict], service: str
) -> None:
    # The limits are measured peaks plus headroom (docs/security.md): at rest every service must
    # be well below them, or the next burst of load would hit the limit.
    host = inspect(stack, service)
    memory_percent = float(usage[service]["MemPerc"].rstrip("%"))
    pids = int(usage[service]["PIDs"])
    assert memory_percent < 60, f"{service} uses {memory_percent}% of its memory limit"
    assert pids <= host["HostConfig"]["PidsLimit"] // 2, f"{service} runs {pids} processes"
    assert host["State"]["OOMKilled"] is False, f"{service} was killed for memory"
