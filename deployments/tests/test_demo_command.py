"""`./dev demo` as a user runs it: started, then stopped with SIGTERM as a process manager
would stop it; nothing it started outlives it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running either.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def _children(pid):
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that ended since the listing
            continue
        found.extend(int(c) for c in children)
    return found


@pytest.mark.worker
def test_the_demo_warns_of_nothing_and_sigterm_stops_it_with_its_worker_and_beat(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["PORTAL_VAR_DIR"] = str(tmp_path / "var")
    demo = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "demo",
            "--no-apply",
            "--port",
            str(_free_port()),
            "--aws-port",
            str(_free_port()),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines, deadline = [], time.monotonic() + 180
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            lines.append(line)
            if "Stop with Ctrl-C" in line or demo.poll() is not None:
                break
        assert "Stop with Ctrl-C" in "".join(lines), "".join(lines)
        started = _children(demo.pid)
        assert len(started) >= 2, "the demo runs a Celery worker and beat as children"

        time.sleep(3)  # the web server's banner comes after the demo's own lines
        demo.send_signal(signal.SIGTERM)
        rest, _ = demo.communicate(timeout=60)
        printed = "".join(lines) + rest
        assert "Starting development server" in printed, printed
        # Nothing a user of the demo cannot act on: Django's development-server warning,
        # Celery's superuser warning (in the worker's log), kombu's "No hostname".
        worker_log = (tmp_path / "var" / "logs" / "worker.log").read_text()
        for said in (printed, worker_log):
            assert "WARNING" not in said.upper().replace("WARNINGS", ""), said
            assert "No hostname was supplied" not in said, said
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in started if _alive(pid)] == []
    finally:
        if demo.poll() is None:
            demo.kill()
