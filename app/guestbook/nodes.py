"""Node identity: every response says which app node made it, in the header X-App.

Together with nginx's X-Web and HAProxy's X-LB, a client (or `curl -i`) sees the full path of each
request. after_request runs for error responses made by our error handlers too, so a 404 or 503
names its node as well.
"""

from flask import Flask, Response, current_app


def init_app(app: Flask) -> None:
    app.after_request(add_node_header)


def add_node_header(response: Response) -> Response:
    response.headers["X-App"] = current_app.config["NODE_NAME"]
    return response
