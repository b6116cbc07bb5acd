import boto3
from moto import mock_aws

from workers.aws import AwsTarget, Clients, session_for


def test_it_assumes_the_workspaces_role_for_its_clients():
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="portal-deployer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        session = session_for(AwsTarget(region="eu-west-1", role_arn=role))
        creds = session.get_credentials().get_frozen_credentials()
        assert creds.token  # temporary credentials from STS, not the caller's
        assert session.region_name == "eu-west-1"
        identity = session.client("sts").get_caller_identity()
        assert ":assumed-role/portal-deployer/changeset-portal" in identity["Arn"]


def test_it_shares_one_client_per_target_and_service():
    with mock_aws():
        target = AwsTarget(region="us-east-1")
        assert Clients(target)("logs") is Clients(target)("logs")
        assert Clients(target)("logs") is not Clients(AwsTarget(region="eu-west-1"))("logs")
