"""The embedded local AWS: a moto server on loopback, for the laptop demo, the tests and
the benchmarks, with two knobs AWS has and moto lacks (latency per call, throttling).

Nothing else in the product knows it is talking to moto: workers reach it through
AWS_ENDPOINT_URL like any other endpoint.
"""

import json
import subprocess
import sys
import threading
import time
import urllib.request

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


class _QuietHandler(MotoRequestHandler):
    # Keep connections alive as AWS does; HTTP/1.0 would cost a TCP handshake per call.
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


class LocalAws:
    def __init__(self, latency_ms=0):
        self.faults = _Faults()
        self.faults.latency_s = latency_ms / 1000
        self._server = None
        self._thread = None

    def _app(self):
        inner = DomainDispatcherApplication(create_backend_app)
        faults = self.faults

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
            return inner(environ, start_response)

        return app

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
    """The same server in its own process, so that its CPU does not compete with the
    caller's (benchmarks): `python -m workers.localaws LATENCY_MS` prints its URL."""

    def __init__(self, latency_ms=0):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.localaws", str(latency_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.endpoint = self.proc.stdout.readline().strip()

    @property
    def calls(self):
        with urllib.request.urlopen(f"{self.endpoint}/_localaws/stats", timeout=10) as resp:
            return json.load(resp)["calls"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


if __name__ == "__main__":
    import sys

    server = LocalAws(latency_ms=float(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print(server.endpoint, flush=True)
    server._thread.join()
