"""Loaded into the benchmark's worker processes (`--include=bench._worker_stats`): counts
what bench/apply.py reports and /proc cannot tell, the CPU spent inside botocore calls
(thread CPU time, so other threads' work and the wait on AWS are not counted) and the
time they took, the AWS calls and the database queries. A process writes its totals to $BENCH_STATS_DIR/<pid>.json
when it gets SIGUSR2 (Celery leaves that signal alone); it changes nothing the worker does.
"""

import json
import os
import signal
import threading
import time

import botocore.client
from django.db.backends.signals import connection_created

_lock = threading.Lock()
_totals = {"botocore_cpu_s": 0.0, "botocore_wall_s": 0.0, "aws_calls": 0, "queries": 0}
_make_api_call = botocore.client.BaseClient._make_api_call


def _timed_api_call(self, operation_name, api_params):
    start, start_wall = time.thread_time(), time.perf_counter()
    try:
        return _make_api_call(self, operation_name, api_params)
    finally:
        spent, spent_wall = time.thread_time() - start, time.perf_counter() - start_wall
        with _lock:
            _totals["botocore_cpu_s"] += spent
            _totals["botocore_wall_s"] += spent_wall
            _totals["aws_calls"] += 1


def _count_query(execute, sql, params, many, context):
    with _lock:
        _totals["queries"] += 1
    return execute(sql, params, many, context)


def _on_connection(sender, connection, **kwargs):
    if _count_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count_query)


def _write(path):
    with _lock:
        now = dict(_totals)
    with open(path + ".tmp", "w") as f:
        json.dump(now, f)
    os.replace(path + ".tmp", path)


if os.environ.get("BENCH_STATS_DIR"):
    botocore.client.BaseClient._make_api_call = _timed_api_call
    connection_created.connect(_on_connection, weak=False)
    _path = os.path.join(os.environ["BENCH_STATS_DIR"], f"{os.getpid()}.json")
    signal.signal(signal.SIGUSR2, lambda signum, frame: _write(_path))
