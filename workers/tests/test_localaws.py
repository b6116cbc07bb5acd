"""The benchmarks' local AWS in its own process (workers/localaws.py): what bench/apply.py
relies on it for."""

import http.client
import threading
import time
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from workers.localaws import LocalAwsProcess


@pytest.fixture
def slow_aws():
    aws = LocalAwsProcess(latency_ms=80)
    yield aws
    aws.stop()


def logs_client(aws, **config):
    return boto3.client(
        "logs",
        endpoint_url=aws.endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(**config),
    )


def test_it_answers_as_aws_after_its_latency_and_counts_the_calls(slow_aws):
    logs = logs_client(slow_aws)
    started = time.monotonic()
    logs.create_log_group(logGroupName="/bench/one")
    assert time.monotonic() - started >= 0.08
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["/bench/one"]
    with pytest.raises(ClientError) as err:
        logs.create_log_group(logGroupName="/bench/one")
    assert err.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert slow_aws.calls == 3


def test_it_keeps_a_connection_open_between_calls(slow_aws):
    url = urlsplit(slow_aws.endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    sockets = []
    for _ in range(3):
        connection.request("GET", "/_localaws/stats")
        response = connection.getresponse()
        assert response.status == 200 and response.read()
        sockets.append(connection.sock)  # None once the server closed it (http.client reopens)
    connection.close()
    assert sockets[0] is not None and sockets == [sockets[0]] * 3


def test_it_answers_every_call_when_creates_and_describes_run_at_once():
    """moto's backends are not thread-safe (a describe beside a create raised "dictionary
    changed size during iteration", and uWSGI held the connection until its 4 s timeout):
    AWS answers both, and so must the stand-in, with no retry."""
    aws = LocalAwsProcess()
    try:
        logs = logs_client(
            aws, retries={"mode": "standard", "max_attempts": 1}, read_timeout=3, max_pool_connections=16
        )
        for i in range(3000):  # a describe walks them all: long enough for a create to land in it
            logs.create_log_group(logGroupName=f"/quiet/{i}")
        failures = []

        def create(k):
            for i in range(60):
                logs.create_log_group(logGroupName=f"/race/{k}/{i}")

        def describe():
            for _ in range(60):
                logs.describe_log_groups(logGroupNamePrefix="/race/")

        def guarded(work, *args):
            try:
                work(*args)
            except Exception as exc:  # noqa: BLE001 (what the test reports)
                failures.append(repr(exc))

        threads = [threading.Thread(target=guarded, args=(create, k)) for k in range(8)]
        threads += [threading.Thread(target=guarded, args=(describe,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert len(logs.describe_log_groups(logGroupNamePrefix="/race/", limit=50)["logGroups"]) == 50
        assert aws.calls == 3000 + 8 * 60 + 8 * 60 + 1  # each call served once: none sent again
    finally:
        aws.stop()
