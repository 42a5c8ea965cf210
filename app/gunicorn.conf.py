# gunicorn.conf.py - how Gunicorn 23 serves the guestbook app on an app node.
#
# Gunicorn reads this file as Python at start-up (see the CMD in app/Dockerfile):
#     gunicorn --config /app/gunicorn.conf.py "guestbook:create_app()"
# Each setting below says what it does, why it has this value, and Gunicorn's default.
# Settings a benchmark may want to vary are read from environment variables (GUNICORN_*), so a
# different setup needs no new image:  docker compose run -e GUNICORN_WORKERS=4 ...
# Full reference: https://docs.gunicorn.org/en/stable/settings.html

import os
import shutil
import sys

# --- Server socket ---------------------------------------------------------------------------

# Listen on every interface of the container, port 8000 (default 127.0.0.1:8000, which nginx in
# another container could not reach). Which containers can reach it is decided by the Docker
# network: only the web tier shares the web_app network.
bind = "0.0.0.0:8000"

# --- Worker processes ------------------------------------------------------------------------

# Worker processes (default 1). Each is a separate Python process with its own interpreter lock,
# its own app and its own database pool, so processes are what use several CPU cores. The usual
# advice is 2-4 per core; 2 suits the small teaching machine, where two app nodes share 2 cores.
workers = int(os.environ.get("GUNICORN_WORKERS", 2))

# The kind of worker (default "sync"). Most of a request's time is spent waiting for PostgreSQL.
# - "sync": one request at a time per worker; while it waits on the database, the worker idles
#   and every other request queues behind it.
# - "gthread": each worker runs `threads` requests at once in a thread pool; while one thread
#   waits on the database (the interpreter lock is released during I/O), another runs. That
#   overlaps the waits, with ordinary blocking code and no changes to the app.
# - "gevent" would be the alternative for many more concurrent, mostly idle connections
#   (green threads, monkey-patched I/O), at the price of an extra package and patching psycopg.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")

# Threads per gthread worker (default 1). 4 threads x 2 workers = 8 requests in progress per node.
# Keep the database pool (DB_POOL_SIZE, 4 by default) at least this large, or threads queue for a
# connection instead of for the CPU.
# Note for benchmarks: Gunicorn quietly turns a "sync" worker with threads > 1 into "gthread", so
# to measure real sync workers set GUNICORN_WORKER_CLASS=sync *and* GUNICORN_THREADS=1.
threads = int(os.environ.get("GUNICORN_THREADS", 4))

# One listening socket per worker process, so that the kernel shares new connections out evenly
# (default False). Without it, the master opens one socket and every worker accepts from it: the
# kernel wakes them all and the first to call accept() wins. A gthread worker accepts whether or not
# a thread is free, and keeps each connection for as long as it stays open; nginx (and a load tool)
# keep theirs open and send many requests on each. So how the connections were shared out when they
# opened decides which worker does the work for as long as they last. Opened in a burst, they can
# all go to one worker: the node then runs on one core while the other worker idles. Measured on
# app1 (wrk, 32 connections, a 3 s warm-up then 12 s): with the shared socket, 6 of 40 runs at half
# speed (3,580-3,900 req/s against 6,400-7,800), all 32 connections on one worker at 98% of a
# core; with a socket per worker, none in 30 (docs/load-testing.md). With SO_REUSEPORT each
# worker binds its own socket to the same port, and the kernel picks one for each new connection
# by a hash of its addresses and ports. Gunicorn 24 does that itself when reuse_port is set (its
# pull request #2938); Gunicorn 23, Debian trixie's, only sets the flag on the master's one shared
# socket, so the hooks post_fork and when_ready below do what 24 does.
# The price: a connection that the kernel queued for a worker that then dies is reset (on a shared
# socket a sibling would take it); nginx then tries the other app node.
# Sync workers keep the shared socket: one serves one request at a time and closes the connection
# after it, and only a free worker calls accept(), so the shared socket already hands each request
# to a free worker, where a hash could queue it behind a busy one. GUNICORN_REUSE_PORT=0 or 1
# overrides (loadtests/configs/gunicorn-shared-socket.yml compares the two).
runs_gthread = worker_class == "gthread" or (worker_class == "sync" and threads > 1)  # see above
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "1" if runs_gthread else "0") == "1"

# Seconds an idle keep-alive connection stays open (default 2). nginx keeps idle connections to
# the app open for up to 60 s (keepalive_timeout in nginx/conf.d/upstream-app.conf) and reuses
# them. If Gunicorn closed first, nginx could send a request on a connection Gunicorn is closing
# at that very moment, and get an error. 75 > 60, so it is always nginx that closes an idle one.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 75))

# Seconds a worker may be silent before the master kills and replaces it (default 30). A worker
# stuck this long is broken; requests themselves are bounded much earlier by the database's
# statement_timeout (5 s) and nginx's proxy_read_timeout (35 s, slightly above this).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))

# Seconds workers get to finish in-flight requests after SIGTERM (`docker stop`) before being
# killed (default 30). No new connections are accepted meanwhile. 20 s is well above any normal
# request, and below Compose's stop_grace_period (25 s), after which Docker sends SIGKILL.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))

# Where workers touch their heartbeat file for the master (default: the system temp directory).
# /dev/shm is a memory filesystem: on a container's overlay disk a slow write could stall a worker
# until the master thinks it is dead.
worker_tmp_dir = "/dev/shm"

# Load the app in the master before forking the workers (default False)? No: the app opens a
# database pool in create_app. Built before the fork, every worker would inherit the same open
# sockets, and two processes talking over one PostgreSQL connection corrupt each other's traffic.
# Loading in each worker gives each its own engine and pool (see guestbook/db.py).
preload_app = False

# --- Logging ---------------------------------------------------------------------------------

# Access log to stdout and error log to stderr ("-"), where Docker collects them (defaults: no
# access log; error log to stderr).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")

# One access log line per request (default: Apache's combined format). Besides the usual fields:
#   rid=      the request id HAProxy made (X-Request-ID request header): the same id is in the
#             HAProxy and nginx logs, so one request can be followed through every tier
#   app=      this node's name (the X-App response header)
#   %(s)s     the status this node answered
#   %(M)s ms  how long the app took, in milliseconds (compare with nginx's upstream_response_time)
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s rid=%({x-request-id}i)s app=%({x-app}o)s %(M)sms'

# The class that writes Gunicorn's log lines (default gunicorn.glogging.Logger). Ours is Gunicorn's,
# except that an access line works out only the fields the format above prints (Gunicorn's builds
# every one it could print, ~60 on a request, for 16% of a small request's CPU), and that the
# container healthcheck's requests are not logged. Same lines, any format: access_log.py, beside
# this file (Gunicorn puts its working directory, /app, on the import path).
logger_class = "access_log.AccessLogger"

# Access log lines are written in batches, at most a second late, not one write per request:
# each write to stdout costs Docker's log path CPU (see guestbook/logs.py, BatchedStreamHandler).
# Error-log lines still go out at once. Hooks run in each worker process, after the fork.
ACCESS_LOG_BATCHED = os.environ.get("GUNICORN_ACCESS_LOG_BATCHED", "1") == "1"


def post_worker_init(worker):
    from guestbook.logs import batch_stream_handlers

    if ACCESS_LOG_BATCHED:
        batch_stream_handlers(worker.log.access_log)


def worker_exit(server, worker):
    # Write out what is still batched before the worker goes (a graceful stop or a restart): the
    # access log's lines, and the requests tallied since the last write into the metric files.
    for handler in worker.log.access_log.handlers:
        handler.flush()
    metrics = sys.modules.get("guestbook.metrics")  # loaded by the app, if the worker loaded it
    if metrics is not None:
        metrics.flush()


# --- Metrics (guestbook/metrics.py) ----------------------------------------------------------

# The port Prometheus scrapes (job `app` in monitor/prometheus.yml): a small HTTP server in the
# master process, apart from the app's port 8000, so a scrape never takes a worker's thread and
# never appears in the access log. Not published; only the monitoring network's Prometheus and
# the app's neighbours on its networks can reach it.
METRICS_PORT = int(os.environ.get("METRICS_PORT", 9102))
# Where every worker's metric files live (prometheus_client's multiprocess mode reads the variable
# itself, and is on whenever it is set, even to ""). /dev/shm is a memory filesystem: a counter's
# increment is never a write to disk.
METRICS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
# METRICS_ENABLED=0 (guestbook/config.py): no counting and no metrics server, for the load tests'
# no-monitoring configuration.
METRICS_SERVED = bool(METRICS_DIR) and os.environ.get("METRICS_ENABLED", "1") == "1"


def on_starting(server):
    # An empty directory at each start of Gunicorn (in the master, before any worker exists):
    # files left by an earlier run (a container that Docker restarts may keep its /dev/shm) would
    # otherwise be added to this run's figures.
    if METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
        os.makedirs(METRICS_DIR, exist_ok=True)


def post_fork(server, worker):
    # In the new worker, before it loads the app: its own listening socket (reuse_port above).
    if reuse_port:
        from gunicorn import sock

        worker.sockets = sock.create_sockets(server.cfg, server.log)


def when_ready(server):
    # The master's own socket is closed before any worker is forked: with reuse_port, a socket
    # that nobody accepts from would still get its share of new connections, and they would hang.
    # Binding it first still makes a port that is already in use fail at start, in the master.
    if reuse_port:
        for listener in server.LISTENERS:
            listener.close()
        server.LISTENERS = []
        server.log.info("each worker listens on a socket of its own (reuse_port)")
    # The master is about to fork the workers: start the metrics server in it. It
    # adds up the files of every worker, live and dead (MultiProcessCollector).
    if not METRICS_SERVED:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(METRICS_PORT, registry=registry)
    server.log.info("metrics for Prometheus on :%d/metrics", METRICS_PORT)


def child_exit(server, worker):
    # A worker exited (crash, timeout, max_requests or a graceful stop): its gauges no longer
    # count in the live sums; its counters stay in the totals.
    if METRICS_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
