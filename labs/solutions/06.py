"""Lab 06, a reference solution: app3 in docker-compose.yml and in nginx's upstream; then, while
the checker's load runs, app3 started first, and each web node drained, rebuilt and put back.

By hand, after editing the two files:
    docker compose up -d --wait --no-deps app3
    api() { docker compose exec -T -u haproxy "$1" sh -c \\
              "echo '$2' | socat stdio /var/run/haproxy/admin.sock"; }
    for web in web1 web2; do
      for lb in lb1 lb2; do api $lb "set server web/$web state drain"; done
      # wait for scur 0 on both LBs (api lb1 "show stat"), then:
      docker compose up -d --build --wait --no-deps $web
      for lb in lb1 lb2; do api $lb "set server web/$web state ready"; done
    done
"""

from labs.lablib import Lab, poll

LBS = ("lb1", "lb2")

SERVICE = """  app2:
    <<: *app
    hostname: app2
  app3:
    <<: *app
    hostname: app3
"""


def apply(lab: Lab) -> None:
    lab.edit("docker-compose.yml", "  app2:\n    <<: *app\n    hostname: app2\n", SERVICE)
    server = "    server app2:8000 max_fails=2 fail_timeout=5s;\n"
    lab.edit(
        "nginx/conf.d/upstream-app.conf",
        server,
        server + server.replace("app2", "app3"),
    )


def during_check(lab: Lab) -> None:
    lab.stack.wait_for_load()  # the checker's load has begun: answers go through the LBs
    lab.stack.compose("up", "--detach", "--wait", "--no-deps", "app3", check=True)
    for web in ("web1", "web2"):
        for lb in LBS:
            lab.stack.haproxy(lb, f"set server web/{web} state drain")
        poll(lambda web=web: all(lab.stack.web_servers(lb)[web]["scur"] == "0" for lb in LBS), 30)
        lab.stack.rebuild(web)
        for lb in LBS:
            lab.stack.haproxy(lb, f"set server web/{web} state ready")
        poll(
            lambda web=web: all(lab.stack.web_servers(lb)[web]["status"] == "UP" for lb in LBS), 30
        )
