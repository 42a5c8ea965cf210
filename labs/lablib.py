"""What every lab is made of: the running stack seen from outside, a lab's starting state, and the
checker's report.

A lab (labs/NN-name/lab.py) defines:

    TITLE, TIER, MINUTES   what `make labs` lists
    SERVICES               the services the lab may rebuild or recreate; `make lab-reset` rebuilds
                           these from your files once the lab's own changes are undone
    start(lab)             put the stack in the lab's starting state (`make lab LAB=NN`)
    check(lab, check)      look at the running stack and record each point (`make lab-check`)

A checker looks at behaviour only: answers through the load balancer, their headers, HAProxy's
runtime API, the servers' logs, timings under a small load it sends itself (bounded in count and
time). It never reads how you wrote your change, so every correct solution passes.

Everything runs against the stack named by the environment, as the Makefile and Compose use it:
COMPOSE_PROJECT_NAME (default fourtier: the stack of `make up`), LB_HTTP_PORT (8080),
LB_HTTPS_PORT (8443), LB_STATS_PORT (8404), LB2_HTTP_PORT (8081), LB2_STATS_PORT (8405),
LB_NET_PREFIX (10.213.240), IMAGE_TAG (latest). The tests point the same code at their own
stack by setting these.

Traffic goes only to 127.0.0.1 (the ports the load balancers publish) and, for the failover lab,
to the stack's own virtual IP.
"""

import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where a tree keeps the state of its current lab (ignored by git): which lab, what it changed.
STATE_DIR = ".labs-state"


# --- The stack, from outside -------------------------------------------------------------------


@dataclass
class Answer:
    """One HTTP answer: status 0 when nothing answered (`error` says why)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: str = ""
    error: str = ""
    seconds: float = 0.0

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Stack:
    """The running stack of one Compose project, and the files it is built from (`tree`)."""

    def __init__(self, tree: Path = ROOT, overlays: tuple[str, ...] = ()) -> None:
        env = os.environ
        self.tree = Path(tree)
        self.overlays = overlays
        self.project = env.get("COMPOSE_PROJECT_NAME", "fourtier")
        self.image_tag = env.get("IMAGE_TAG", "latest")
        self.url = f"http://127.0.0.1:{env.get('LB_HTTP_PORT', '8080')}"
        self.lb2_url = f"http://127.0.0.1:{env.get('LB2_HTTP_PORT', '8081')}"
        self.stats_url = f"http://127.0.0.1:{env.get('LB_STATS_PORT', '8404')}"
        self.vip = f"{env.get('LB_NET_PREFIX', '10.213.240')}.10"
        self.vip_url = f"http://{self.vip}:8080"
        # Pages and static files are served over HTTPS (plain HTTP redirects them there, as a
        # browser would follow); the certificate is signed by the stack's local CA.
        self.https_url = f"https://127.0.0.1:{env.get('LB_HTTPS_PORT', '8443')}"
        self.ca_file = self.tree / ".secrets" / "tls" / "ca.crt"

    # HTTP: a new connection per request, like a new client (nothing hidden by keep-alive).
    def request(
        self,
        method: str,
        path: str,
        *,
        base: str | None = None,
        body: str | bytes | None = None,
        headers: dict | None = None,
        timeout: float = 10,
    ) -> Answer:
        if base is None and not path.startswith("/api/"):
            base = self.https_url  # a page or a static file: where a browser ends up
        base = base or self.url
        host, _, port = base.split("://", 1)[1].partition(":")
        start = time.monotonic()
        if base.startswith("https://"):
            context = ssl.create_default_context(cafile=str(self.ca_file))
            connection = http.client.HTTPSConnection(
                host, int(port or 443), timeout=timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            names = {k.lower(): v for k, v in response.getheaders()}
            return Answer(response.status, names, text, seconds=time.monotonic() - start)
        except (OSError, http.client.HTTPException) as error:
            return Answer(0, error=f"{type(error).__name__}: {error}")
        finally:
            connection.close()

    def get(self, path: str, **kwargs) -> Answer:
        return self.request("GET", path, **kwargs)

    def post_json(self, path: str, payload: dict, **kwargs) -> Answer:
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return self.request("POST", path, body=json.dumps(payload), headers=headers, **kwargs)

    # Docker Compose, on this project and this tree.
    def compose(self, *args: str, check: bool = False, quiet: bool = True):
        files = ["-f", str(self.tree / "docker-compose.yml")]
        for overlay in self.overlays:
            files += ["-f", str(self.tree / overlay)]
        command = ["docker", "compose", "--project-directory", str(self.tree), *files, *args]
        env = {**os.environ, "COMPOSE_PROJECT_NAME": self.project, "IMAGE_TAG": self.image_tag}
        result = subprocess.run(command, capture_output=quiet, text=True, env=env, check=False)
        if check and result.returncode != 0:
            raise LabError(f"`docker compose {' '.join(args)}` failed:\n{result.stderr or ''}")
        return result

    def exec(self, service: str, *command: str, user: str | None = None):
        return self.compose("exec", "-T", *(["-u", user] if user else []), service, *command)

    def rebuild(self, *services: str, wait: bool = True) -> None:
        """Build the services' images from the tree and recreate them (nothing else); with
        `wait`, return once they are healthy."""
        args = ["up", "--detach", "--build", "--no-deps", *(["--wait"] if wait else [])]
        self.compose(*args, *services, check=True)

    def rebuild_tier_by_tier(self, *services: str) -> None:
        """Rebuild services from the tree, the tier behind first (app, then web, then lb): a web
        node starts only once the app nodes are healthy, so recreating both at once would make
        the web nodes wait on app nodes that are themselves starting. Containers of services no
        longer in the files (a node a lab added) are removed. Tried twice: on a busy machine a
        health check may time out once."""
        order = {"db": 0, "etcd": 0, "app": 1, "web": 2, "lb": 3}
        tiers: dict[int, list[str]] = {}
        for service in services:
            tiers.setdefault(order.get(service.rstrip("0123456789"), 1), []).append(service)
        for _, group in sorted(tiers.items()):
            args = ("up", "--detach", "--build", "--wait", "--no-deps", "--remove-orphans")
            if self.compose(*args, *group).returncode != 0:
                self.compose(*args, *group, check=True)

    def up_and_wait(self, *services: str) -> bool:
        """Start or recreate the services as the files say, and wait until they are healthy."""
        result = self.compose("up", "--detach", "--wait", "--no-deps", *services)
        return result.returncode == 0

    def container(self, service: str) -> dict:
        """`docker inspect` of the service's container ({} when there is none)."""
        ids = self.compose("ps", "--all", "-q", service).stdout.split()
        if not ids:
            return {}
        result = subprocess.run(["docker", "inspect", ids[0]], capture_output=True, text=True)
        return json.loads(result.stdout)[0] if result.returncode == 0 else {}

    def services_running(self) -> list[str]:
        return self.compose("ps", "--services", "--status", "running").stdout.split()

    def logs(self, *services: str, since: str | None = None) -> str:
        args = ["logs", "--no-color", "--no-log-prefix"]
        if since:
            args += ["--since", since]
        result = self.compose(*args, *services)
        return result.stdout + result.stderr

    # HAProxy's runtime API, on the admin socket inside an LB container, as the haproxy user: in
    # the hardened LB container root has no DAC_OVERRIDE to open another user's socket.
    def haproxy(self, lb: str, command: str) -> str:
        return self.exec(
            lb,
            "sh",
            "-c",
            f"echo '{command}' | socat stdio /var/run/haproxy/admin.sock",
            user="haproxy",
        ).stdout

    def show_stat(self, lb: str) -> list[dict[str, str]]:
        """`show stat` as rows of {column: value} (pxname, svname, status, scur, algo, ...)."""
        lines = self.haproxy(lb, "show stat").splitlines()
        if not lines:
            return []
        header = lines[0].lstrip("# ").split(",")
        return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]

    def web_servers(self, lb: str) -> dict[str, dict[str, str]]:
        """The web backend's servers as this LB sees them: {name: its `show stat` row}."""
        return {
            row["svname"]: row
            for row in self.show_stat(lb)
            if row.get("pxname") == "web" and row.get("svname") not in ("FRONTEND", "BACKEND")
        }

    def answered(self, lbs: tuple[str, ...] = ("lb1", "lb2")) -> int:
        """How many answers (any status) the web nodes have given through these LBs, by the LBs'
        own counters: it grows while a load runs through the stack."""
        return sum(
            int(row.get(f"hrsp_{kind}") or 0)
            for lb in lbs
            for row in self.web_servers(lb).values()
            for kind in ("1xx", "2xx", "3xx", "4xx", "5xx")
        )

    def wait_for_load(self, answers: int = 20, timeout: float = 30) -> None:
        """Return once `answers` more answers have gone through the LBs: someone's load (a
        checker's) is running. Raises if it does not come within `timeout` seconds."""
        before = self.answered()
        if not poll(lambda: self.answered() >= before + answers, timeout=timeout):
            raise LabError(f"no load through the LBs within {timeout:.0f} s")

    def out_of_rotation(self, lb: str) -> dict[str, bool]:
        """{web server: True if an operator took it out of rotation on this LB}: its admin state
        is forced maintenance (0x01) or forced drain (0x08), or its weight was set to 0, from
        `show servers state` (the ways the runtime API offers: state maint/drain, set weight 0,
        disable server)."""
        lines = self.haproxy(lb, "show servers state web").splitlines()
        header = next((line.lstrip("# ").split() for line in lines if line.startswith("#")), [])
        result = {}
        for line in lines:
            row = dict(zip(header, line.split(), strict=False))
            if row.get("be_name") == "web":
                admin, weight = int(row["srv_admin_state"]), int(row["srv_uweight"])
                result[row["srv_name"]] = bool(admin & 0x09) or weight == 0
        return result

    def put_web_nodes_in_rotation(self) -> None:
        """Every web node ready, at full weight, on both LBs (undoes a drain, maint, weight 0)."""
        for lb in ("lb1", "lb2"):
            for web in self.web_servers(lb):
                self.haproxy(lb, f"set server web/{web} state ready")
                self.haproxy(lb, f"set weight web/{web} 100%")

    def vip_holders(self) -> list[str]:
        holders = []
        for lb in ("lb1", "lb2"):
            if f" {self.vip}/" in self.exec(lb, "ip", "-4", "-o", "addr", "show").stdout:
                holders.append(lb)
        return holders

    # The database tier.
    def psql(self, node: str, sql: str) -> str:
        """One SQL command as the database owner on a db node (tuples only); '' on failure."""
        script = (
            'PGPASSWORD="$(cat /run/secrets/db_owner_password)" PGCONNECT_TIMEOUT=2 psql -h '
            f'127.0.0.1 -U guestbook_owner -d guestbook -tA -v ON_ERROR_STOP=1 -c "{sql}"'
        )
        return self.exec(node, "bash", "-c", script).stdout.strip()

    def db_primary(self) -> str | None:
        """The db node Patroni names Leader, asked of the first node that answers."""
        for node in ("db1", "db2", "db3"):
            out = self.exec(node, "patronictl", "-c", "/run/patroni", "list", "--format", "json")
            if out.returncode == 0 and out.stdout.strip().startswith("["):
                for member in json.loads(out.stdout):
                    if member["Role"] == "Leader" and member["State"] == "running":
                        return member["Member"]
                return None
        return None


def poll(condition: Callable[[], bool], timeout: float, interval: float = 0.3) -> bool:
    """Ask `condition` until it holds (True) or `timeout` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class LabError(Exception):
    """Something that stops a lab command, said in words the student can act on."""


# --- A checker's report ------------------------------------------------------------------------


class Check:
    """The points a checker looked at: each holds (PASS) or is still to do (TODO, with a hint).
    Printed as it goes, so a student sees progress during a check that sends load."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.points: list[tuple[bool, str]] = []
        self.out = out

    def point(self, ok: bool, passed: str, todo: str, hint: str = "") -> bool:
        self.points.append((ok, passed if ok else todo))
        if ok:
            self.out(f"  PASS  {passed}")
        else:
            self.out(f"  TODO  {todo}")
            if hint:
                self.out(f"        hint: {hint}")
        return ok

    def note(self, text: str) -> None:
        """A measurement or an observation, not a point."""
        self.out(f"        {text}")

    @property
    def passed(self) -> bool:
        return bool(self.points) and all(ok for ok, _ in self.points)

    def summary(self) -> str:
        done = sum(ok for ok, _ in self.points)
        return f"{done} of {len(self.points)} points hold"


# --- A lab's starting state, kept so that `make lab-reset` can undo exactly it -----------------


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Lab:
    """One lab, applied to one tree (your checkout, or a scratch copy in the tests).

    The starting state is made of: edits to files in the tree (each recorded with the file's
    content before and after), Compose overlay files (recorded, and added to every compose
    command), and values measured at the start (a baseline). All of it lives in
    <tree>/.labs-state/, which git ignores.
    """

    def __init__(self, number: str, module, folder: Path, tree: Path = ROOT) -> None:
        self.number = number
        self.module = module
        self.folder = folder  # the lab's own folder, in the code's checkout
        self.tree = Path(tree)
        self.state_dir = self.tree / STATE_DIR
        self.state = load_state(self.tree)
        overlays = tuple(self.state.get("overlays", [])) if self.is_current() else ()
        self.stack = Stack(self.tree, overlays)
        # How long a checker that watches for a procedure waits for it (set by `check`).
        self.wait = 180.0

    # What the lab's files call.
    def is_current(self) -> bool:
        return self.state.get("lab") == self.number

    def path(self, relative: str) -> Path:
        return self.tree / relative

    def lab_file(self, name: str) -> Path:
        """A file of this lab's folder, as it is in the tree (the student may edit it)."""
        return self.tree / self.folder.relative_to(ROOT) / name

    def edit(self, relative: str, old: str, new: str) -> None:
        """Change `old` to `new` in a file of the tree, once, and record it for the reset."""
        target = self.path(relative)
        before = target.read_text()
        if old not in before:
            raise LabError(
                f"{relative} does not contain the text this lab changes:\n    {old.strip()}\n"
                "It differs from the repository's version: `git diff` shows how; "
                f"`git checkout -- {relative}` (or `git stash`) brings the original back."
            )
        after = before.replace(old, new, 1)
        backup = self.state_dir / "backup" / relative
        backup.parent.mkdir(parents=True, exist_ok=True)
        if relative not in self.state.setdefault("edits", {}):
            shutil.copy2(target, backup)
        target.write_text(after)
        self.state["edits"][relative] = {"after": digest(after)}
        self.save()

    def use_overlay(self, relative: str) -> None:
        """Add a Compose file (relative to the tree) to every compose command of this lab."""
        overlays = self.state.setdefault("overlays", [])
        if relative not in overlays:
            overlays.append(relative)
        self.stack.overlays = tuple(overlays)
        self.save()

    def remember(self, key: str, value) -> None:
        self.state.setdefault("data", {})[key] = value
        self.save()

    def recall(self, key: str, default=None):
        return self.state.get("data", {}).get(key, default) if self.is_current() else default

    def save(self) -> None:
        self.state_dir.mkdir(exist_ok=True)
        (self.state_dir / "state.json").write_text(json.dumps(self.state, indent=2) + "\n")

    # What `make lab`, `make lab-reset` do around the lab's own functions.
    def begin(self) -> None:
        self.state = {
            "lab": self.number,
            "started": now_iso(),
            "edits": {},
            "overlays": [],
            "data": {},
            "results": self.state.get("results", {}),
        }
        self.stack.overlays = ()
        self.save()

    def undo(self) -> list[str]:
        """Undo the lab's edits; return what the student should know about them. A file the
        student changed after the lab's edit is restored too (the lab's tiers must come back to
        their default), but the student's version is kept beside the state first."""
        notes = []
        for relative, record in self.state.get("edits", {}).items():
            target, backup = self.path(relative), self.state_dir / "backup" / relative
            if not backup.exists():
                continue
            current = target.read_text() if target.exists() else ""
            original = backup.read_text()
            if current != original and digest(current) != record["after"]:
                saved = self.state_dir / "saved" / f"lab{self.number}-{int(time.time())}" / relative
                saved.parent.mkdir(parents=True, exist_ok=True)
                saved.write_text(current)
                notes.append(f"{relative}: your version is kept in {saved.relative_to(self.tree)}")
            target.write_text(original)
            backup.unlink()
        self.state.update(lab=None, edits={}, overlays=[], data={})
        self.save()
        return notes

    def record_result(self, passed: bool) -> None:
        self.state.setdefault("results", {})[self.number] = {"passed": passed, "at": now_iso()}
        self.save()


def load_state(tree: Path) -> dict:
    try:
        return json.loads((tree / STATE_DIR / "state.json").read_text())
    except (OSError, ValueError):
        return {}
