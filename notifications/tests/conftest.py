"""Fixtures of the notifications tests: an admin seat, a real HTTP receiver on loopback
that records each request and checks its signature, and running the workers' tasks
inline (eager Celery, on-commit work run)."""

import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.models import Membership, Role


@pytest.fixture
def admin(workspace, django_user_model):
    carol = django_user_model.objects.create_user("carol", password="pw-carol-123")
    Membership.objects.create(workspace=workspace, user=carol, role=Role.ADMIN)
    return carol


@pytest.fixture
def private_ok(workspace):
    """The receiver listens on loopback: a private address the workspace must allow."""
    workspace.allow_private_http_checks = True
    workspace.save()
    return workspace


@pytest.fixture
def inline(eager_celery, django_capture_on_commit_callbacks):
    """inline(fn, *args): call fn, then run its on-commit work (notifications, the
    workers' tasks) here, as the workers would after the commit."""

    def call(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return call


@pytest.fixture(autouse=True)
def _short_retries(settings):
    settings.PORTAL_NOTIFY_RETRY_SECONDS = 0.01
    settings.PORTAL_NOTIFY_TIMEOUT_SECONDS = 5


class Receiver:
    """POSTs are recorded as (path, headers, body) and answered from `answers` (then 200);
    GET /health answers 200 and any other GET 503 (for pipeline HTTP checks)."""

    def __init__(self):
        self.requests = []
        self.answers = []
        self.url = ""

    def posts(self, path=None):
        return [r for r in self.requests if path is None or r[0] == path]

    def json(self, i=0):
        return json.loads(self.requests[i][2])


def verified(request, secret):
    """True when the request's X-Portal-Signature is the HMAC of its timestamp and body."""
    _, headers, body = request
    fields = dict(part.split("=", 1) for part in headers["X-Portal-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append((self.path, dict(self.headers), body))
            code = state.answers.pop(0) if state.answers else 200
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code < 300 else b"try later")

        def do_GET(self):  # noqa: N802
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on: connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
