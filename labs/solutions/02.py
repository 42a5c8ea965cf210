"""Lab 02, a reference solution: a page and its stylesheet in nginx/site/, then only the web tier
rebuilt (`docker compose up -d --build --no-deps web1 web2`)."""

from labs.lablib import Lab

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>About fourtier</title>
<link rel="stylesheet" href="/static/css/about.css"></head>
<body><h1>About</h1><p>Served by nginx alone: no X-App header.</p></body>
</html>
"""


def apply(lab: Lab) -> None:
    (lab.path("nginx/site/about.html")).write_text(PAGE)
    (lab.path("nginx/site/static/css/about.css")).write_text("h1 { color: #264653; }\n")
    lab.stack.rebuild("web1", "web2")
