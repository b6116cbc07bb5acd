"""The laptop broker: a Redis server of this checkout's own, on a unix socket under var/.

`./dev` starts it (`python -m portal.localbroker` starts it unless it runs and prints
its URL) and the test suite does the same when REDIS_URL is not set. It keeps nothing on
disk (no RDB, no AOF); it runs on until `python -m portal.localbroker stop`.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def url(var_dir):
    return f"redis+socket://{Path(var_dir) / 'redis.sock'}"


def running(var_dir):
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(Path(var_dir) / "redis.sock"))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def ensure_running(var_dir, timeout=10):
    """Start the server unless it answers; return its URL."""
    var_dir = Path(var_dir)
    if running(var_dir):
        return url(var_dir)
    (var_dir / "logs").mkdir(parents=True, exist_ok=True)
    (var_dir / "redis.sock").unlink(missing_ok=True)
    try:
        subprocess.run(
            [
                "redis-server",
                "--port", "0",  # no TCP: only this checkout's socket
                "--unixsocket", str(var_dir / "redis.sock"),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "yes",
                "--pidfile", str(var_dir / "redis.pid"),
                "--logfile", str(var_dir / "logs" / "redis.log"),
            ],
            check=True,
        )  # fmt: skip
    except FileNotFoundError:
        raise SystemExit(
            "The laptop broker needs redis-server (Debian: apt-get install redis-server; ./dev installs it)."
        ) from None
    deadline = time.monotonic() + timeout
    while not running(var_dir):
        if time.monotonic() > deadline:
            raise SystemExit(f"redis-server did not answer in {var_dir}; see its logs/redis.log")
        time.sleep(0.05)
    return url(var_dir)


def stop(var_dir):
    pid_file = Path(var_dir) / "redis.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.conf import settings  # the settings name this broker's URL, so read them lazily

    if sys.argv[1:] == ["stop"]:
        stop(settings.VAR_DIR)
    else:
        print(ensure_running(settings.VAR_DIR))
