"""A small, bounded load client for the failover scenarios.

It sends requests at a fixed rate (open loop: a slow answer does not slow the schedule, as with
real clients) to one base URL, for at most `duration` seconds and `max_requests` requests, then
stops by itself. Three requests in four are GETs of the guestbook; every fourth is a POST with a
unique `Idempotency-Key` and a unique text, so afterwards each acknowledged message can be looked
up and duplicates counted.

Each request uses a new connection, the strictest client: it never hides an error behind a
keep-alive connection opened before the failure, and by default it retries nothing. With
`post_retries`, a POST that got no 2xx is sent again with the same Idempotency-Key, after
`retry_delay` seconds, up to that many times: what a careful client does, and safe because the app
stores a key once. Every attempt is an outcome of its own (`attempt` 0, 1, ...); a POST's fate is
its last attempt's.

Outcomes:
- ok:      a 2xx answer;
- failed:  an answer with another status, or a connection refused/reset before an answer;
- unknown: (POST only) no answer at all (timeout, reset after sending): the message may or may
           not have been stored. Acknowledged = 201: such a message must be readable afterwards.
"""

import http.client
import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Outcome:
    start: float  # seconds since the load started
    end: float
    method: str
    status: int | None  # None: no HTTP answer
    error: str = ""  # the exception, when there was no answer
    content_type: str = ""
    key: str = ""  # Idempotency-Key of a POST
    message_id: int | None = None  # id of an acknowledged (201) message
    lb: str = ""  # X-LB of the answer: which LB node served it
    web: str = ""
    app: str = ""
    request_id: str = ""  # X-Request-ID: find this request in every tier's log
    attempt: int = 0  # 0 for the first try of a request, 1.. for a POST's retries
    retried: bool = False  # this attempt failed and the POST was sent again

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class LoadClient:
    base_url: str
    rate: float = 40.0  # requests per second
    duration: float = 30.0  # hard bound on the load's length, in seconds
    max_requests: int = 2000  # hard bound on the number of requests
    timeout: float = 5.0  # per request
    post_retries: int = 0  # times a failed POST is sent again, same key (0: never)
    retry_delay: float = 0.5  # seconds before each retry
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        url = urlsplit(self.base_url)
        self._host, self._port = url.hostname, url.port or 80
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = 0.0

    # --- running -------------------------------------------------------------------------------

    def __enter__(self) -> "LoadClient":
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def now(self) -> float:
        """Seconds since the load started: the time axis of every outcome and event."""
        return time.monotonic() - self._t0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.duration + self.timeout + 5)

    def _run(self) -> None:
        interval = 1.0 / self.rate
        with ThreadPoolExecutor(max_workers=64) as pool:
            for n in range(self.max_requests):
                due = n * interval
                if due > self.duration or self._stop.wait(max(0.0, due - self.now())):
                    break
                pool.submit(self._post if n % 4 == 3 else self._get, n)

    def _get(self, n: int) -> None:
        self._send("GET", "/api/messages?limit=5", None, {})

    def _post(self, n: int) -> None:
        key = f"{self.run_id}-{n}"
        body = json.dumps({"author": "failover", "text": f"load {key}"})
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        for attempt in range(self.post_retries + 1):
            outcome = self._send("POST", "/api/messages", body, headers, key, attempt)
            if outcome.ok or attempt == self.post_retries or self._stop.is_set():
                break
            outcome.retried = True
            time.sleep(self.retry_delay)

    def _send(
        self, method: str, path: str, body, headers: dict, key: str = "", attempt: int = 0
    ) -> Outcome:
        start = self.now()
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            outcome = Outcome(
                start,
                self.now(),
                method,
                response.status,
                content_type=response.getheader("Content-Type", ""),
                key=key,
                lb=response.getheader("X-LB", ""),
                web=response.getheader("X-Web", ""),
                app=response.getheader("X-App", ""),
                request_id=response.getheader("X-Request-ID", ""),
            )
            if method == "POST" and response.status == 201:
                outcome.message_id = json.loads(payload)["id"]
        except (OSError, http.client.HTTPException) as error:
            outcome = Outcome(start, self.now(), method, None, error=type(error).__name__, key=key)
        finally:
            connection.close()
        outcome.attempt = attempt
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    # --- results -------------------------------------------------------------------------------

    def results(self) -> list[Outcome]:
        with self._lock:
            return sorted(self.outcomes, key=lambda o: o.start)

    def failed(
        self, method: str | None = None, after: float = 0.0, final: bool = False
    ) -> list[Outcome]:
        """Attempts that got no 2xx, optionally only one method and those started after `after`;
        with `final`, only the last attempt of each request (a failure that a retry made good is
        left out)."""
        return [
            o
            for o in self.results()
            if not o.ok
            and (method is None or o.method == method)
            and o.start >= after
            and not (final and o.retried)
        ]

    def acknowledged(self) -> dict[str, int]:
        """Idempotency-Key -> message id, for every POST answered 201."""
        return {o.key: o.message_id for o in self.results() if o.message_id is not None}

    def longest_gap(self, method: str | None = None) -> float:
        """The longest time with no successful answer (to `method` requests only, if given), in
        seconds. For POSTs (10 a second at 40 req/s), that is how long writes were unavailable."""
        ends = [0.0] + sorted(
            o.end for o in self.results() if o.ok and (method is None or o.method == method)
        )
        return max(b - a for a, b in zip(ends, ends[1:], strict=False)) if len(ends) > 1 else 0.0

    def first_success_after(self, at: float, method: str = "POST") -> float | None:
        """When the first successful `method` request that started after the first failure
        following `at` was answered: when service came back after an event at `at`. None if
        nothing failed after `at` (then it never went away) or nothing succeeded after."""
        results = self.results()
        failures = [o.start for o in results if not o.ok and o.method == method and o.start >= at]
        if not failures:
            return None
        ends = [o.end for o in results if o.ok and o.method == method and o.start > failures[0]]
        return min(ends) if ends else None

    def summary(self, title: str) -> str:
        """What the client saw, as printed by each scenario: totals, failures, the longest gap,
        and a per-second timeline of answers (ok/failed) and of which LB served them."""
        results = self.results()
        failed = [o for o in results if not o.ok]
        kinds = Counter(o.error or str(o.status) for o in failed)
        lines = [
            f"== {title}",
            f"requests {len(results)}  ok {len(results) - len(failed)}  failed {len(failed)} "
            f"{dict(kinds) if kinds else ''}",
            f"POSTs acknowledged {len(self.acknowledged())}  longest gap without a success "
            f"{self.longest_gap():.2f}s (POSTs {self.longest_gap('POST'):.2f}s)",
            "second  ok  failed  served by",
        ]
        by_second: dict[int, list[Outcome]] = {}
        for o in results:
            by_second.setdefault(int(o.start), []).append(o)
        for second, outcomes in sorted(by_second.items()):
            ok = sum(o.ok for o in outcomes)
            nodes = Counter(f"{o.lb}/{o.web}/{o.app}" for o in outcomes if o.ok)
            lines.append(f"{second:6d}  {ok:2d}  {len(outcomes) - ok:6d}  {dict(nodes)}")
        if failed:
            lines.append("failures (first 20): start  method  status/error  lb/web/app  request id")
            lines += [
                f"  {o.start:7.2f}s {o.method:4} {o.status or o.error} "
                f"{o.lb}/{o.web}/{o.app} {o.request_id}{' (retried)' if o.retried else ''}"
                for o in failed[:20]
            ]
        return "\n".join(lines)
