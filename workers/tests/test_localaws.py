"""The benchmarks' local AWS in its own process (workers/localaws.py): what bench/apply.py
relies on it for."""

import http.client
import time
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from workers.localaws import LocalAwsProcess


@pytest.fixture
def slow_aws():
    aws = LocalAwsProcess(latency_ms=80)
    yield aws
    aws.stop()


def test_it_answers_as_aws_after_its_latency_and_counts_the_calls(slow_aws):
    logs = boto3.client(
        "logs",
        endpoint_url=slow_aws.endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
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
