"""Fixtures for the deployments tests: the Tony's Chips workspace applied to moto through
the engine, an AWS call recorder (botocore `before-call` hooks on every client the
workers make), and running a pipeline inline (eager Celery)."""

from pathlib import Path

import pytest
from django.conf import settings

from portal import approvals, changesets
from portal.spec import load_spec

EXAMPLE = Path(settings.BASE_DIR) / "examples" / "tonys-chips"
PIPELINE = "sandbox-tonys-chips-deploy-pipeline"
SEED_FILES = [
    "01-update-smoke-test-to-use-e2e.yaml",
    "02-migrate-to-service-discovery.yaml",
    "03-recreate-api-service-with-service-discovery.yaml",
    "04-fix-smoke-test-urls.yaml",
    "05-scale-up-api-and-update-web-service.yaml",
    "06-fix-health-checks-use-nodejs.yaml",
    "07-fix-step-functions-graceful-deployment.yaml",
]


@pytest.fixture
def alice(users):
    return users["approver"]


@pytest.fixture
def bob(users):
    return users["editor"]


@pytest.fixture
def mallory(users):
    return users["outsider"]


@pytest.fixture(autouse=True)
def _fast_polls(settings):
    settings.PORTAL_AWS_POLL_SECONDS = 0.0
    settings.PORTAL_STAGE_BEAT_SECONDS = 0.0


@pytest.fixture
def services_running(monkeypatch):
    """moto reports a service's running count and rollout state from this variable, read
    when the service is created (LOCAL-AWS.md); the sandbox's services run 2 tasks."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")


class AwsCalls:
    """Every AWS request the workers make, as botocore serialised it, plus injected faults."""

    def __init__(self):
        self.calls = []  # (service, operation, params)
        self.faults = []  # (service, operation, predicate(params), code, message)
        self.after = []  # (service, operation, fn(parsed))

    def of(self, service, operation):
        return [p for s, o, p in self.calls if s == service and o == operation]

    def fail(self, service, operation, code, message, when=lambda params: True):
        self.faults.append((service, operation, when, code, message))

    def on_response(self, service, operation, fn):
        self.after.append((service, operation, fn))

    def install(self, session):
        def before(model, params, **_):
            service = model.service_model.service_name
            body = _decoded(params.get("body") if isinstance(params, dict) else None)
            self.calls.append((service, model.name, body))
            for s, o, when, code, message in self.faults:
                if s == service and o == model.name and when(body):
                    return _Refusal(), {
                        "Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    }
            return None

        def after(model, parsed, **_):
            for s, o, fn in self.after:
                if s == model.service_model.service_name and o == model.name:
                    fn(parsed)

        session.events.register("before-call", before)
        session.events.register("after-call", after)
        return session


class _Refusal:
    status_code = 400
    headers = {}
    content = b""


def _decoded(body):
    import json

    if isinstance(body, bytes | str):
        try:
            return json.loads(body)
        except ValueError:
            return {}
    return body or {}


@pytest.fixture
def aws_calls(monkeypatch):
    from workers import aws as aws_module

    recorder = AwsCalls()
    original = aws_module.session_for
    monkeypatch.setattr(aws_module, "session_for", lambda target: recorder.install(original(target)))
    cache = getattr(aws_module, "_CACHE", None)  # clients shared by the process, if any
    if cache is not None:
        cache.clear()  # new clients, made through the recording session
    yield recorder
    if cache is not None:
        cache.clear()  # and none of them outlives the test


def propose(workspace, bob, alice, filename, edit=None):
    spec = load_spec(EXAMPLE / filename)
    if edit:
        edit(spec)
    info = spec.change_set or {}
    cs = changesets.create_change_set(
        workspace, bob, info.get("name", filename), info.get("problem", ""), info.get("solution", "")
    )
    changesets.apply_spec(cs, bob, spec)
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice, "ok")
    return cs


@pytest.fixture
def managed_policies(monkeypatch):
    """AWS managed policies (AmazonECSTaskExecutionRolePolicy) exist on AWS; moto loads them
    only when asked, when its IAM backend starts."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


@pytest.fixture
def tonys_chips(managed_policies, workspace, bob, alice, applier, aws_calls, services_running):
    """The Tony's Chips sandbox (workspace.yaml) applied to moto through the engine."""
    cs = changesets.create_change_set(
        workspace,
        bob,
        "bootstrap-tonys-chips",
        problem="The sandbox has no infrastructure in the portal yet.",
        solution="Model the VPC, ALB, ECS services, database and pipeline as components.",
    )
    changesets.apply_spec(cs, bob, load_spec(EXAMPLE / "workspace.yaml"))
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice)
    run = applier(cs, alice)
    assert run.status == "succeeded", [(a.key, a.error) for a in run.actions.all() if a.error]
    return workspace


@pytest.fixture
def run_pipeline(django_capture_on_commit_callbacks, eager_celery):
    """run_pipeline(workspace, name, user) runs a whole deployment inline; returns the run."""
    from deployments import runs

    def run(workspace, name, user, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            result = runs.request_run(workspace, name, user, **kwargs)
        result.refresh_from_db()
        return result

    return run


@pytest.fixture
def inline(django_capture_on_commit_callbacks, eager_celery):
    """inline(fn, *args) calls fn with its on-commit work (the Celery tasks) run inline."""

    def call(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return call


@pytest.fixture
def http_server():
    """A local HTTP server: 200 on /health, 301 from /moved to /health, 302 from
    /to-metadata to the instance metadata address, 503 anywhere else. Yields its base URL;
    `http_server.requests` hears (path, Host header) of each request."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    requests = []
    redirects = {"/moved": "/health", "/to-metadata": "http://169.254.169.254/latest/meta-data/"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            requests.append((self.path, self.headers.get("Host")))
            if self.path in redirects:
                self.send_response(301 if self.path == "/moved" else 302)
                self.send_header("Location", redirects[self.path])
            else:
                self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()
            self.wfile.write(b"ok" if self.path == "/health" else b"down")

        def log_message(self, *args):
            pass

    class Url(str):
        pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = Url(f"http://127.0.0.1:{server.server_address[1]}")
    url.requests = requests
    yield url
    server.shutdown()
    thread.join(timeout=5)
