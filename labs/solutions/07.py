"""Lab 07, a reference solution: fix both nginx files, rebuild the web tier, and give the app's
database role the password that is now in the secret file (a password rotation; putting the old
file back would do too, if you had kept it).

By hand:
    docker compose logs web1           # nginx: [emerg] invalid number of arguments ... site.conf:NN
    make check-configs                 # the same, from nginx -t on the image
    # fix the semicolon in nginx/conf.d/site.conf, the port (8000) in upstream-app.conf
    docker compose up -d --build --no-deps web1 web2
    curl -s http://127.0.0.1:8080/api/readyz  # 503: the database rejects the app's credentials
    primary=$(make -s db-status | awk '/Leader/ {print $2}')
    docker compose exec $primary sh -c 'psql -h 127.0.0.1 -U guestbook_owner -d guestbook \
        -c "ALTER ROLE guestbook_app PASSWORD '"'$(cat .secrets/db_app_password)'"'"'
    (with PGPASSWORD from /run/secrets/db_owner_password inside the container)
"""

from labs.lablib import Lab, poll


def apply(lab: Lab) -> None:
    lab.edit("nginx/conf.d/site.conf", "client_max_body_size 64k\n", "client_max_body_size 64k;\n")
    for app in ("app1", "app2"):
        lab.edit("nginx/conf.d/upstream-app.conf", f"server {app}:8001", f"server {app}:8000")
    lab.stack.rebuild("web1", "web2")
    password = lab.path(".secrets/db_app_password").read_text().strip()
    primary = lab.stack.db_primary()
    lab.stack.psql(primary, f"ALTER ROLE guestbook_app PASSWORD '{password}'")
    poll(lambda: lab.stack.get("/api/readyz").status == 200, timeout=20)
