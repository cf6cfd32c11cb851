"""A Slack-compatible incoming webhook on loopback that records what is posted to it."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class WebhookReceiver:
    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                receiver.posts.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
                )
                self.send_response(receiver.status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/services/T000/B000/secretpart123"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def texts(self) -> list[str]:
        return [post["json"]["text"] for post in self.posts]


@pytest.fixture
def webhook(settings):
    """The receiver, with its host:port allowed by the URL guard (and the fake provider's
    loopback host too, when a test uses both, through the fake_upstream fixture)."""
    receiver = WebhookReceiver()
    receiver.thread.start()
    allowed = list(settings.TABLERO_ALLOWED_UPSTREAM_HOSTS or [])
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = [*allowed, f"127.0.0.1:{receiver.port}"]
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
