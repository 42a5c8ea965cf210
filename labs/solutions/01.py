"""Lab 01, a reference solution: send a POST, read the nodes from its answer's headers (the logs
agree, as the checker verifies) and the primary from Patroni, write the answers file.

By hand:
    curl -si -H 'Content-Type: application/json' -d '{"author":"me","text":"hi"}' \
         http://127.0.0.1:8080/api/messages | grep -i '^x-'
    docker compose logs lb1 lb2 web1 web2 app1 app2 | grep <the X-Request-ID>
    make db-status
"""

from labs.lablib import Lab


def apply(lab: Lab) -> None:
    answer = lab.stack.post_json("/api/messages", {"author": "teacher", "text": "follow me"})
    assert answer.status == 201, answer
    values = {
        "request_id": answer.header("X-Request-ID"),
        "lb": answer.header("X-LB"),
        "web": answer.header("X-Web"),
        "app": answer.header("X-App"),
        "db": lab.stack.db_primary(),
    }
    path = lab.lab_file("answers.txt")
    lines = []
    for line in path.read_text().splitlines():
        name = line.partition("=")[0].strip()
        lines.append(f"{name} = {values[name]}" if name in values else line)
    path.write_text("\n".join(lines) + "\n")
