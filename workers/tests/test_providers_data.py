"""Step Functions, RDS and ECR providers against moto (in process)."""

import copy
import json

import pytest

from workers.providers import common, ecr, rds, stepfunctions  # noqa: F401  (importing registers them)
from workers.providers.base import PORTAL_TAG, ProviderError, ResourceMissing, provider_for
from workers.tests.recording import record

TOKEN = "cmp-0002"
ROLE = "arn:aws:iam::123456789012:role/sandbox-step-functions"


@pytest.fixture
def aws(mocked_clients):
    return mocked_clients


# --- Step Functions ---------------------------------------------------------------------------

PIPELINE = {
    "Comment": "Deploy Tony's Chips",
    "StartAt": "DeployServices",
    "States": {
        "DeployServices": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:ecs:updateService",
            "Parameters": {
                "Cluster": "tonys-chips-sandbox",
                "Service": "sandbox-tonys-chips-api",
                "ForceNewDeployment": True,
            },
            "End": True,
        }
    },
}


def sfn_props(**extra):
    props = {
        "StateMachineName": "sandbox-tonys-chips-deploy",
        "StateMachineType": "STANDARD",
        "RoleArn": ROLE,
        "DefinitionString": json.dumps(PIPELINE),
        "LoggingConfiguration": {"Level": "OFF", "IncludeExecutionData": False},
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
    }
    props.update(extra)
    return props


def test_state_machine_lifecycle(aws):
    p = provider_for("AWS::StepFunctions::StateMachine", aws)
    sfn = aws("stepfunctions")
    props = sfn_props()
    created = p.create(props, TOKEN)
    assert created.physical_id.endswith(":stateMachine:sandbox-tonys-chips-deploy")
    value = p.read(created.physical_id, props).resource_value
    assert value["Arn"] == created.physical_id
    assert value["Name"] == "sandbox-tonys-chips-deploy"
    assert json.loads(value["DefinitionString"]) == PIPELINE
    assert value["RoleArn"] == ROLE
    assert value["LoggingConfiguration"]["Level"] == "OFF"
    assert value["Tags"] == [{"Key": "app", "Value": "tonys-chips"}]
    assert {"key": PORTAL_TAG, "value": TOKEN} in sfn.list_tags_for_resource(resourceArn=created.physical_id)[
        "tags"
    ]

    changed_pipeline = copy.deepcopy(PIPELINE)
    changed_pipeline["States"]["DeployServices"]["Parameters"].pop("ForceNewDeployment")
    new = sfn_props(DefinitionString=json.dumps(changed_pipeline), Tags=[{"Key": "app", "Value": "chips"}])
    calls = record(sfn, "UpdateStateMachine")
    updated = p.update(created.physical_id, props, new)
    assert calls == [{"stateMachineArn": created.physical_id, "definition": json.dumps(changed_pipeline)}]
    assert updated.physical_id == created.physical_id
    read = p.read(created.physical_id, new).resource_value
    assert json.loads(read["DefinitionString"]) == changed_pipeline
    assert read["Tags"] == [{"Key": "app", "Value": "chips"}]

    p.delete(created.physical_id, new)
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id, new)
    p.delete(created.physical_id, new)


def test_state_machine_definition_object_and_substitutions(aws):
    p = provider_for("AWS::StepFunctions::StateMachine", aws)
    definition = copy.deepcopy(PIPELINE)
    definition["States"]["DeployServices"]["Parameters"]["Cluster"] = "${ClusterName}"
    props = sfn_props(
        DefinitionString=None, Definition=definition, DefinitionSubstitutions={"ClusterName": "prod"}
    )
    created = p.create(props, TOKEN)
    stored = json.loads(created.resource_value["DefinitionString"])
    assert stored["States"]["DeployServices"]["Parameters"]["Cluster"] == "prod"


def test_state_machine_create_is_idempotent_per_token(aws):
    p = provider_for("AWS::StepFunctions::StateMachine", aws)
    sfn = aws("stepfunctions")
    calls = record(sfn, "CreateStateMachine")
    first = p.create(sfn_props(), TOKEN)
    second = p.create(sfn_props(), TOKEN)
    assert first.physical_id == second.physical_id
    assert len(calls) == 1
    assert len(sfn.list_state_machines()["stateMachines"]) == 1
    with pytest.raises(ProviderError) as err:
        p.create(sfn_props(), "another-component")
    assert err.value.code == "AlreadyExists"


def test_state_machine_name_change_is_a_replacement(aws):
    p = provider_for("AWS::StepFunctions::StateMachine", aws)
    props = sfn_props()
    created = p.create(props, TOKEN)
    with pytest.raises(ProviderError) as err:
        p.update(created.physical_id, props, sfn_props(StateMachineName="renamed"))
    assert err.value.immutable_property == "StateMachineName"


# --- RDS ----------------------------------------------------------------------------------------

PASSWORD = "s3cret-Passw0rd-xyz"


@pytest.fixture
def network(aws):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
        for i, az in enumerate(["us-east-1a", "us-east-1b"])
    ]
    sg = ec2.create_security_group(GroupName="db-sg", Description="db", VpcId=vpc)["GroupId"]
    aws("rds").create_db_subnet_group(
        DBSubnetGroupName="tonys-chips-db-subnets", DBSubnetGroupDescription="db", SubnetIds=subnets
    )
    return {"sg": sg}


def db_props(network, **extra):
    props = {
        "DBInstanceIdentifier": "Sandbox-Tonys-Chips-DB",
        "Engine": "postgres",
        "EngineVersion": "16.3",
        "DBInstanceClass": "db.t4g.micro",
        "AllocatedStorage": "20",
        "Port": "5432",
        "MasterUsername": "tonys",
        "MasterUserPassword": PASSWORD,
        "DBName": "shop",
        "EnableIAMDatabaseAuthentication": True,
        "VPCSecurityGroups": [network["sg"]],
        "DBSubnetGroupName": "tonys-chips-db-subnets",
        "PubliclyAccessible": False,
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
    }
    props.update(extra)
    return props


def test_db_instance_lifecycle(aws, network):
    p = provider_for("AWS::RDS::DBInstance", aws)
    client = aws("rds")
    create_calls = record(client, "CreateDBInstance")
    props = db_props(network)
    created = p.create(props, TOKEN)

    sent = create_calls[0]
    assert sent["DBInstanceIdentifier"] == "sandbox-tonys-chips-db"
    assert sent["AllocatedStorage"] == 20 and sent["Port"] == 5432  # CloudFormation strings -> API integers
    assert sent["VpcSecurityGroupIds"] == [network["sg"]]
    assert sent["EnableIAMDatabaseAuthentication"] is True
    assert {"Key": PORTAL_TAG, "Value": TOKEN} in sent["Tags"]

    assert created.physical_id == "sandbox-tonys-chips-db"
    value = p.read(created.physical_id, props).resource_value
    assert value["Endpoint"]["Address"]
    assert value["Endpoint"]["Port"] == "5432"
    assert value["DBInstanceArn"].endswith(":db:sandbox-tonys-chips-db")
    assert value["DbiResourceId"]
    assert value["EnableIAMDatabaseAuthentication"] is True
    assert value["VPCSecurityGroups"] == [network["sg"]]
    assert value["DBSubnetGroupName"] == "tonys-chips-db-subnets"
    assert value["AllocatedStorage"] == "20"
    assert value["Tags"] == [{"Key": "app", "Value": "tonys-chips"}]
    assert "MasterUserPassword" not in value
    assert PASSWORD not in json.dumps(value)

    new = db_props(
        network,
        AllocatedStorage="30",
        EnableIAMDatabaseAuthentication=False,
        MasterUserPassword="an0ther-Passw0rd",
        Tags=[{"Key": "app", "Value": "chips"}],
    )
    modify_calls = record(client, "ModifyDBInstance")
    updated = p.update(created.physical_id, props, new)
    assert modify_calls == [
        {
            "DBInstanceIdentifier": "sandbox-tonys-chips-db",
            "ApplyImmediately": True,
            "AllocatedStorage": 30,
            "EnableIAMDatabaseAuthentication": False,
            "MasterUserPassword": "an0ther-Passw0rd",
        }
    ]
    assert updated.resource_value["AllocatedStorage"] == "30"
    assert updated.resource_value["EnableIAMDatabaseAuthentication"] is False
    assert "an0ther-Passw0rd" not in json.dumps(updated.resource_value)
    assert p.read(created.physical_id, new).resource_value["Tags"] == [{"Key": "app", "Value": "chips"}]

    delete_calls = record(client, "DeleteDBInstance")
    p.delete(created.physical_id, new)
    # Never without a final snapshot unless the component says DeletionPolicy: Delete.
    [call] = delete_calls
    assert call["SkipFinalSnapshot"] is False
    assert call["FinalDBSnapshotIdentifier"].startswith("sandbox-tonys-chips-db-final-")
    [snapshot] = client.describe_db_snapshots(DBInstanceIdentifier="sandbox-tonys-chips-db")["DBSnapshots"]
    assert snapshot["DBSnapshotIdentifier"] == call["FinalDBSnapshotIdentifier"]
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id, new)
    p.delete(created.physical_id, new)


def test_db_instance_create_is_idempotent_per_token(aws, network):
    p = provider_for("AWS::RDS::DBInstance", aws)
    calls = record(aws("rds"), "CreateDBInstance")
    first = p.create(db_props(network), TOKEN)
    second = p.create(db_props(network), TOKEN)
    assert first.physical_id == second.physical_id
    assert len(calls) == 1
    assert len(aws("rds").describe_db_instances()["DBInstances"]) == 1
    with pytest.raises(ProviderError) as err:
        p.create(db_props(network), "another-component")
    assert err.value.code == "AlreadyExists"


def test_db_instance_create_only_change_is_a_replacement(aws, network):
    p = provider_for("AWS::RDS::DBInstance", aws)
    props = db_props(network)
    created = p.create(props, TOKEN)
    calls = record(aws("rds"), "ModifyDBInstance")
    with pytest.raises(ProviderError) as err:
        p.update(created.physical_id, props, db_props(network, DBName="other"))
    assert err.value.immutable_property == "DBName"
    assert calls == []


def test_db_instance_refuses_restore_properties(aws, network):
    p = provider_for("AWS::RDS::DBInstance", aws)
    with pytest.raises(ProviderError) as err:
        p.create(db_props(network, DBSnapshotIdentifier="snap-1"), TOKEN)
    assert err.value.code == "Unsupported"


# --- ECR ----------------------------------------------------------------------------------------

LIFECYCLE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "pull",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        }
    ],
}


def repo_props(**extra):
    props = {
        "RepositoryName": "tonys-chips-api",
        "ImageTagMutability": "IMMUTABLE",
        "ImageScanningConfiguration": {"ScanOnPush": True},
        "LifecyclePolicy": {"LifecyclePolicyText": LIFECYCLE},
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
    }
    props.update(extra)
    return props


def test_repository_lifecycle(aws):
    p = provider_for("AWS::ECR::Repository", aws)
    client = aws("ecr")
    props = repo_props()
    created = p.create(props, TOKEN)
    assert created.physical_id == "tonys-chips-api"
    value = p.read(created.physical_id, props).resource_value
    assert value["Arn"].endswith(":repository/tonys-chips-api")
    assert value["RepositoryUri"].endswith(".amazonaws.com/tonys-chips-api")
    assert value["ImageTagMutability"] == "IMMUTABLE"
    assert value["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert json.loads(value["LifecyclePolicy"]["LifecyclePolicyText"]) == json.loads(LIFECYCLE)
    assert value["Tags"] == [{"Key": "app", "Value": "tonys-chips"}]
    assert {"Key": PORTAL_TAG, "Value": TOKEN} in client.list_tags_for_resource(resourceArn=value["Arn"])[
        "tags"
    ]

    new = repo_props(
        ImageTagMutability="MUTABLE",
        ImageScanningConfiguration={"ScanOnPush": False},
        LifecyclePolicy=None,
        RepositoryPolicyText=POLICY,
        Tags=[{"Key": "team", "Value": "chips"}],
    )
    updated = p.update(created.physical_id, props, new)
    v = updated.resource_value
    assert v["ImageTagMutability"] == "MUTABLE"
    assert v["ImageScanningConfiguration"] == {"ScanOnPush": False}
    assert "LifecyclePolicy" not in v
    assert v["RepositoryPolicyText"]["Statement"][0]["Sid"] == "pull"
    assert v["Tags"] == [{"Key": "team", "Value": "chips"}]

    p.delete(created.physical_id, {**new, "EmptyOnDelete": True})
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id, new)
    p.delete(created.physical_id, new)


def test_repository_create_is_idempotent_per_token(aws):
    p = provider_for("AWS::ECR::Repository", aws)
    calls = record(aws("ecr"), "CreateRepository")
    first = p.create(repo_props(), TOKEN)
    second = p.create(repo_props(), TOKEN)
    assert first.physical_id == second.physical_id
    assert len(calls) == 1
    assert len(aws("ecr").describe_repositories()["repositories"]) == 1
    with pytest.raises(ProviderError) as err:
        p.create(repo_props(), "another-component")
    assert err.value.code == "AlreadyExists"


def test_repository_encryption_change_is_a_replacement(aws):
    p = provider_for("AWS::ECR::Repository", aws)
    props = repo_props()
    created = p.create(props, TOKEN)
    with pytest.raises(ProviderError) as err:
        p.update(created.physical_id, props, repo_props(EncryptionConfiguration={"EncryptionType": "KMS"}))
    assert err.value.immutable_property == "EncryptionConfiguration"


def test_db_instance_delete_skips_the_final_snapshot_only_when_the_component_says_delete(aws, network):
    p = provider_for("AWS::RDS::DBInstance", aws)
    props = {**db_props(network), "DeletionPolicy": "Delete"}
    created = p.create(props, TOKEN)
    delete_calls = record(aws("rds"), "DeleteDBInstance")
    p.delete(created.physical_id, props)
    assert delete_calls == [{"DBInstanceIdentifier": "sandbox-tonys-chips-db", "SkipFinalSnapshot": True}]
    assert aws("rds").describe_db_snapshots()["DBSnapshots"] == []
