"""boto3 sessions and clients for a workspace.

The standard credential chain, the workspace region, an optional role to assume, and
botocore's own retry modes (exponential backoff with jitter) for throttling and
transient errors. AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) are honoured by
boto3 itself, so the same code talks to moto server, LocalStack or AWS.
"""

import os
from dataclasses import dataclass

import boto3
from botocore.config import Config

RETRY_MODE = os.environ.get("PORTAL_AWS_RETRY_MODE", "standard")
MAX_ATTEMPTS = int(os.environ.get("PORTAL_AWS_MAX_ATTEMPTS", "8"))


@dataclass(frozen=True)
class AwsTarget:
    region: str = "us-east-1"
    role_arn: str = ""

    @classmethod
    def for_workspace(cls, workspace):
        return cls(region=workspace.region, role_arn=workspace.role_arn or "")


def botocore_config(max_attempts=None):
    return Config(
        retries={"mode": RETRY_MODE, "max_attempts": max_attempts or MAX_ATTEMPTS},
        connect_timeout=10,
        read_timeout=60,
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


class Clients:
    """Lazily created clients for one target, shared by the providers of one action."""

    def __init__(self, target: AwsTarget, config: Config | None = None):
        self.target = target
        self._session = None
        self._config = config or botocore_config()
        self._clients = {}

    def __call__(self, service):
        if service not in self._clients:
            if self._session is None:
                self._session = session_for(self.target)
            self._clients[service] = self._session.client(service, config=self._config)
        return self._clients[service]
