"""The embedded local AWS: a moto server on loopback, for the laptop demo, the tests and
the benchmarks, with two knobs AWS has and moto lacks (latency per call, throttling).

Nothing else in the product knows it is talking to moto: workers reach it through
AWS_ENDPOINT_URL like any other endpoint.
"""

import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import moto.backends
import moto.core.responses
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


class _QuietHandler(MotoRequestHandler):
    # HTTP/1.1, though Werkzeug's server still closes each connection after one call
    # (LocalAwsProcess keeps them alive, as AWS does, for the benchmarks).
    protocol_version = "HTTP/1.1"

    def log(self, *args, **kwargs):
        pass

    def log_request(self, *args, **kwargs):
        pass


class _Faults:
    def __init__(self):
        self.latency_s = 0.0
        self.throttle = {}  # X-Amz-Target or Action substring -> remaining throttled calls
        self.throttled = 0
        self.calls = 0
        self.lock = threading.Lock()


def _remember_what_moto_looks_up_per_call():
    """moto's server lists its own package directory (to tell a service from a host) and
    the methods of a response class at every call: a third of its CPU per call, which in
    the benchmarks competes with the workers for the same cores. Both answers are fixed
    for a process; they are looked up once. What moto answers does not change."""
    if not hasattr(moto.backends.list_of_moto_modules, "cache_info"):  # not done yet
        moto.backends.list_of_moto_modules = functools.cache(lambda: tuple(_list_of_moto_modules()))
    if not hasattr(moto.core.responses.method_names_from_class, "cache_info"):
        moto.core.responses.method_names_from_class = functools.cache(
            moto.core.responses.method_names_from_class
        )


_list_of_moto_modules = moto.backends.list_of_moto_modules


_moto_lock = threading.Lock()  # moto keeps its backends per process


def faulty_app(faults):
    """moto's WSGI app behind the two knobs: latency per call, throttling."""
    _remember_what_moto_looks_up_per_call()
    inner = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/_localaws/stats":
            body = json.dumps({"calls": faults.calls, "throttled": faults.throttled}).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        with faults.lock:
            faults.calls += 1
        if faults.latency_s:
            time.sleep(faults.latency_s)
        target = environ.get("HTTP_X_AMZ_TARGET", "") + "?" + environ.get("QUERY_STRING", "")
        with faults.lock:
            hit = next((k for k, n in faults.throttle.items() if n > 0 and k in target), None)
            if hit:
                faults.throttle[hit] -= 1
                faults.throttled += 1
        if hit:
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
            )
            return [body]
        # moto's backends are not thread-safe: a DescribeLogGroups beside a CreateLogGroup
        # raised "dictionary changed size during iteration", and uWSGI held that call's
        # connection until its 4 s timeout. AWS answers both: moto serves one call at a
        # time (the latency above still overlaps).
        with _moto_lock:
            return inner(environ, start_response)

    return app


_served = []
_served_lock = threading.Lock()


def served_app(environ, start_response):
    """For LocalAwsProcess's uWSGI (`--module workers.localaws:served_app`): the app, with
    the latency per call in $LOCALAWS_LATENCY_MS, made at the first call."""
    if not _served:
        with _served_lock:
            if not _served:
                faults = _Faults()
                faults.latency_s = float(os.environ.get("LOCALAWS_LATENCY_MS", "0")) / 1000
                _served.append(faulty_app(faults))
    return _served[0](environ, start_response)


class LocalAws:
    def __init__(self, latency_ms=0):
        self.faults = _Faults()
        self.faults.latency_s = latency_ms / 1000
        self._server = None
        self._thread = None

    def _app(self):
        return faulty_app(self.faults)

    def start(self, port=0):
        self._server = make_server(
            "127.0.0.1", port, self._app(), threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.reset()
        return self

    def reset(self):
        """Forget every resource (moto keeps them per process, across servers)."""
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=30
        )

    @property
    def endpoint(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def throttle(self, target, times):
        """Answer the next `times` calls whose X-Amz-Target contains `target` with ThrottlingException."""
        with self.faults.lock:
            self.faults.throttle[target] = times

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._thread.join(timeout=5)


class LocalAwsProcess:
    """The same app in its own process, so that its CPU does not compete with the caller's
    (benchmarks), served by uWSGI's threads: it keeps connections alive as AWS does
    (Werkzeug's server closes each after one call, so every call would cost a TCP
    handshake and a server thread), and parses HTTP in C (gunicorn's gthread worker spent
    half again as much CPU per call, on the cores the workers measured run on)."""

    def __init__(self, latency_ms=0):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (its output, read if it does not start)
        self.proc = subprocess.Popen(
            [
                os.path.join(os.path.dirname(sys.executable), "uwsgi"),
                "--http11-socket",
                f"127.0.0.1:{port}",
                "--http-keepalive",
                "--processes",
                "1",  # moto's state and the call counts live in one process
                "--threads",
                "128",
                "--enable-threads",
                "--listen",
                "256",
                "--die-on-term",
                "--disable-logging",
                "--module",
                "workers.localaws:served_app",
            ],
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "LOCALAWS_LATENCY_MS": str(latency_ms)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.calls  # noqa: B018 (answers once the server is up)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self._log.seek(0)
                    said = self._log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"the local AWS did not start:\n{said}") from None
                time.sleep(0.1)

    @property
    def calls(self):
        with urllib.request.urlopen(f"{self.endpoint}/_localaws/stats", timeout=10) as resp:
            return json.load(resp)["calls"]

    @property
    def pids(self):
        """uWSGI's process (it serves the calls itself) and any child it has."""
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return [self.proc.pid, *(int(pid) for pid in f.read().split())]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


if __name__ == "__main__":
    server = LocalAws(latency_ms=float(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print(server.endpoint, flush=True)
    server._thread.join()
