"""Lab 09, a reference solution: gthread workers, 2 processes x 6 threads per node.

While one thread waits 100 ms for the database, the others run: 12 requests in progress per node
instead of 1. (6 threads per process fit the database pool exactly: DB_POOL_SIZE 4 +
DB_MAX_OVERFLOW 2.
More sync workers (say 8) work too, at the price of a process, an interpreter and a pool each.)

By hand: in labs/09-worker-models/gunicorn.env set
    GUNICORN_WORKER_CLASS=gthread  GUNICORN_WORKERS=2  GUNICORN_THREADS=6
then  make lab-up SERVICES="app1 app2"  and  make lab-check LAB=09
"""

from labs.lablib import Lab

SETTINGS = "GUNICORN_WORKER_CLASS=gthread\nGUNICORN_WORKERS=2\nGUNICORN_THREADS=6\n"


def apply(lab: Lab) -> None:
    path = lab.lab_file("gunicorn.env")
    kept = [line for line in path.read_text().splitlines() if line.startswith("#")]
    path.write_text("\n".join(kept) + "\n" + SETTINGS)
    lab.stack.up_and_wait("app1", "app2")
    lab.stack.get("/api/readyz")
