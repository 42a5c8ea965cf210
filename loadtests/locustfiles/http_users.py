"""HTTP scenarios: one User class per kind of request, pointed at any tier by the config's `host`.

The same class measures every hop: StaticUser against HAProxy and against nginx directly shows what
the load balancer costs; WhoamiUser against HAProxy, nginx and Gunicorn shows each hop on the way to
the app. Users send requests back to back (no wait time): each user is one client connection
asking for as much as the system gives, a closed loop. FastHttpUser (geventhttpclient) costs a
fraction of HttpUser's (requests) CPU per request, so one Locust process drives more load.

A scenario config picks its class with `tags`; see hooks.py. Over HTTPS (an https:// host) the
users do not check the certificate (FastHttpUser's `insecure`, its default): that is client CPU
only, and the load tests measure the servers.
"""

import hooks  # noqa: F401  (registers the tag filter, the thresholds and the run summary)
import targets
from locust import FastHttpUser, constant, tag, task


class StaticUser(FastHttpUser):
    """A static file: nginx answers from disk, no application server involved."""

    wait_time = constant(0)

    @tag("static")
    @task
    def stylesheet(self):
        self.client.get(targets.STATIC_PATH)


class NewConnectionUser(FastHttpUser):
    """The same static file, on a new connection for every request (`Connection: close`: the
    server closes after answering). Over HTTPS each request then pays a full TLS handshake, as a
    client that never comes back would; against StaticUser over the same scheme, the difference
    is what setting up a connection costs."""

    wait_time = constant(0)

    @tag("newconn")
    @task
    def stylesheet_on_a_new_connection(self):
        self.client.get(targets.STATIC_PATH, headers={"Connection": "close"})


class WhoamiUser(FastHttpUser):
    """A dynamic request without database: the app's /api/whoami."""

    wait_time = constant(0)

    @tag("whoami")
    @task
    def whoami(self):
        self.client.get(targets.WHOAMI_PATH)


class MessagesUser(FastHttpUser):
    """The guestbook's database-bound traffic: 4 reads of the newest messages per new message."""

    wait_time = constant(0)

    @tag("messages", "read")
    @task(targets.READ_WEIGHT)
    def list_messages(self):
        # `name` groups every `limit` value under one line of the statistics.
        self.client.get(targets.LIST_PATH, name="/api/messages?limit=[n]")

    @tag("messages", "write")
    @task(targets.WRITE_WEIGHT)
    def post_message(self):
        with self.client.post(
            targets.MESSAGES_PATH, json=targets.MESSAGE, catch_response=True
        ) as r:
            if r.status_code != 201:
                r.failure(f"expected 201, got {r.status_code}")


class CeilingUser(FastHttpUser):
    """The cheapest request there is (nginx's /healthz): what Locust itself can drive here."""

    wait_time = constant(0)

    @tag("ceiling")
    @task
    def healthz(self):
        self.client.get(targets.CEILING_PATH)
