"""boto3 sessions and clients for a workspace.

The standard credential chain, the workspace region, an optional role to assume, and
botocore's own retry modes (exponential backoff with jitter) for throttling and
transient errors. AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) are honoured by
boto3 itself, so the same code talks to moto server, LocalStack or AWS.
"""

import os
import threading
import time
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.retries.standard import RetryEventAdapter, ThrottlingErrorDetector
from django.conf import settings


@dataclass(frozen=True)
class AwsTarget:
    region: str = "us-east-1"
    role_arn: str = ""

    @classmethod
    def for_workspace(cls, workspace):
        return cls(region=workspace.region, role_arn=workspace.role_arn or "")


def botocore_config(max_attempts=None):
    return Config(
        retries={
            "mode": settings.PORTAL_AWS_RETRY_MODE,
            "max_attempts": max_attempts or settings.PORTAL_AWS_MAX_ATTEMPTS,
        },
        connect_timeout=10,
        read_timeout=60,
        # One client serves every thread of the worker, its local threads too: a smaller
        # pool would open (and throw away) a connection per call beyond it.
        max_pool_connections=max(
            10, settings.CELERY_WORKER_CONCURRENCY + settings.PORTAL_WORKER_LOCAL_THREADS
        ),
        user_agent_extra="changeset-portal",
    )


def session_for(target: AwsTarget) -> boto3.session.Session:
    if not target.role_arn:
        return boto3.session.Session(region_name=target.region)
    creds = boto3.client("sts", region_name=target.region, config=botocore_config()).assume_role(
        RoleArn=target.role_arn, RoleSessionName="changeset-portal"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=target.region,
    )


# Creating a boto3 client costs tens of milliseconds of CPU (it loads the service model);
# an apply makes hundreds. Clients are thread-safe, so one per target, service and
# process is shared; clients with assumed-role credentials are renewed before they expire.
_CACHE = {}
_CACHE_LOCK = threading.Lock()
ROLE_CLIENT_TTL = 45 * 60


def cached_client(target: AwsTarget, service: str, config: Config | None = None):
    # The endpoint is boto3's own reading of the environment when it makes a client, not a
    # setting of ours: the key follows what boto3 will see now (the demo and tests set it
    # after start-up).
    key = (target, service, id(config) if config else None, os.environ.get("AWS_ENDPOINT_URL", ""))
    now = time.monotonic()
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit and (not target.role_arn or now - hit[1] < ROLE_CLIENT_TTL):
            return hit[0]
        client = session_for(target).client(service, config=config or botocore_config())
        client.meta.events.register("needs-retry", _note_throttling)
        _CACHE[key] = (client, now)
        return client


# --- Throttling, for the apply's concurrency window -------------------------------------

_THROTTLING = ThrottlingErrorDetector(RetryEventAdapter())
_throttled = threading.local()


def _note_throttling(**kwargs):
    if kwargs.get("response") is not None and _THROTTLING.is_throttling_error(**kwargs):
        _throttled.count = getattr(_throttled, "count", 0) + 1


def take_throttled_count():
    """How many calls AWS throttled on this thread since the last time it was asked."""
    count, _throttled.count = getattr(_throttled, "count", 0), 0
    return count


def clear_client_cache():
    """Forget the shared clients (tests do, so that hooks one registers never leak)."""
    with _CACHE_LOCK:
        _CACHE.clear()


class Clients:
    """The clients of one target, shared by the providers of one action (and, through
    the cache, by every action of the process)."""

    def __init__(self, target: AwsTarget, config: Config | None = None):
        self.target = target
        self._config = config

    def __call__(self, service):
        return cached_client(self.target, service, self._config)
