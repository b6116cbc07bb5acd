"""RDS DB instances (AWS::RDS::DBInstance).

The physical id is the DB instance identifier (RDS stores it in lower case). Create and
update wait until the instance is `available`, as CloudFormation does, so that
subscribers get a real `Endpoint`. `MasterUserPassword` is write-only: it is sent to AWS
and never appears in `resource_value`.

Restoring from snapshots, point-in-time restores, read replicas and associated IAM roles
use other RDS APIs and are refused with a clear error instead of being ignored.
"""

from botocore.exceptions import ClientError
from django.conf import settings

from .base import Observed, Provider, ProviderError, ResourceMissing, error_code, register
from .common import (
    aws_errors,
    aws_tags,
    changed,
    created_or_ours,
    derived_name,
    drop_none,
    input_shape,
    json_safe,
    retry_while_role_propagates,
    tag_changes,
    tag_value,
    tags_from_aws,
    to_api,
    wait_until,
)

NOT_FOUND = ("DBInstanceNotFound", "DBInstanceNotFoundFault")
RENAMES = {"VPCSecurityGroups": "VpcSecurityGroupIds"}
MODIFY_RENAMES = {"VPCSecurityGroups": "VpcSecurityGroupIds", "Port": "DBPortNumber"}
# createOnlyProperties of the CloudFormation schema: a change means a replacement.
CREATE_ONLY = (
    "DBInstanceIdentifier",
    "DBName",
    "MasterUsername",
    "DBSubnetGroupName",
    "StorageEncrypted",
    "KmsKeyId",
    "CharacterSetName",
    "NcharCharacterSetName",
    "DBClusterIdentifier",
    "Timezone",
    "CustomIAMInstanceProfile",
    "BackupTarget",
    "DBSystemId",
)
READ_ONLY = (
    "Endpoint",
    "DBInstanceArn",
    "DbiResourceId",
    "DBInstanceStatus",
    "CertificateDetails",
    "InstanceCreateTime",
    "IsStorageConfigUpgradeAvailable",
    "LatestRestorableTime",
    "ListenerEndpoint",
    "PercentProgress",
    "ReadReplicaDBClusterIdentifiers",
    "ReadReplicaDBInstanceIdentifiers",
    "ResumeFullAutomationModeTime",
    "AutomaticRestartTime",
    "SecondaryAvailabilityZone",
    "StatusInfos",
    "StorageOperationStatus",
    "StorageOperationPercentProgress",
)
# Properties that tune an update or a delete rather than describe the instance.
CONTROL = (
    "Tags",
    "ApplyImmediately",
    "AllowMajorVersionUpgrade",
    "CertificateRotationRestart",
    "DeleteAutomatedBackups",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "UseDefaultProcessorFeatures",
    "MasterUserSecret",
)
UNSUPPORTED = (
    "DBSnapshotIdentifier",
    "DBClusterSnapshotIdentifier",
    "SourceDBInstanceIdentifier",
    "SourceDBClusterIdentifier",
    "SourceDbiResourceId",
    "SourceDBInstanceAutomatedBackupsArn",
    "SourceRegion",
    "RestoreTime",
    "UseLatestRestorableTime",
    "AssociatedRoles",
    "AutomaticBackupReplicationRegion",
    "AutomaticBackupReplicationKmsKeyId",
    "AutomaticBackupReplicationRetentionPeriod",
    "ReplicaMode",
)
FAILED_STATES = (
    "failed",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "inaccessible-encryption-credentials",
    "restore-error",
    "storage-full",
)


def rds_wait_timeout():
    """DB instances take longer than most resources to settle: at least an hour."""
    return max(settings.PORTAL_AWS_WAIT_TIMEOUT, 3600)


def final_snapshot_id(db):
    """`<instance>-final-<creation time>`: the same on a retried delete, another one for an
    instance of the same name created later."""
    created = db.get("InstanceCreateTime")
    stamp = created.strftime("%Y%m%d%H%M%S") if hasattr(created, "strftime") else "0"
    return f"{db['DBInstanceIdentifier'][:230]}-final-{stamp}"


@register
class DBInstance(Provider):
    type_name = "AWS::RDS::DBInstance"

    @property
    def rds(self):
        return self.clients("rds")

    def _describe(self, ident):
        try:
            return self.rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise ResourceMissing(f"DB instance {ident} not found") from exc
            raise

    def _wait_available(self, ident, no_pending=False):
        def ready():
            db = self._describe(ident)
            status = db.get("DBInstanceStatus")
            if status in FAILED_STATES:
                raise ProviderError(f"DB instance {ident} is {status}", code=f"DBInstanceStatus:{status}")
            if status != "available" or (no_pending and db.get("PendingModifiedValues")):
                return None
            return db

        return wait_until(ready, what=f"DB instance {ident} to be available", timeout=rds_wait_timeout())

    def _observed(self, db):
        endpoint = db.get("Endpoint") or {}
        port = endpoint.get("Port") or db.get("DbInstancePort")
        value = {
            "DBInstanceIdentifier": db["DBInstanceIdentifier"],
            "DBInstanceArn": db.get("DBInstanceArn"),
            "DbiResourceId": db.get("DbiResourceId"),
            "DBInstanceStatus": db.get("DBInstanceStatus"),
            "Engine": db.get("Engine"),
            "EngineVersion": db.get("EngineVersion"),
            "DBInstanceClass": db.get("DBInstanceClass"),
            # CloudFormation types these as strings.
            "AllocatedStorage": None if db.get("AllocatedStorage") is None else str(db["AllocatedStorage"]),
            "Port": None if not port else str(port),
            "Endpoint": drop_none(
                {
                    "Address": endpoint.get("Address"),
                    "Port": None if not endpoint.get("Port") else str(endpoint["Port"]),
                    "HostedZoneId": endpoint.get("HostedZoneId"),
                }
            )
            or None,
            "MasterUsername": db.get("MasterUsername"),
            "DBName": db.get("DBName"),
            "EnableIAMDatabaseAuthentication": db.get("IAMDatabaseAuthenticationEnabled"),
            "VPCSecurityGroups": [g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups") or []],
            "DBSubnetGroupName": (db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
            "DBParameterGroupName": next(
                (g.get("DBParameterGroupName") for g in db.get("DBParameterGroups") or []), None
            ),
            "OptionGroupName": next(
                (g.get("OptionGroupName") for g in db.get("OptionGroupMemberships") or []), None
            ),
            "PubliclyAccessible": db.get("PubliclyAccessible"),
            "MultiAZ": db.get("MultiAZ"),
            "AvailabilityZone": db.get("AvailabilityZone"),
            "StorageType": db.get("StorageType"),
            "StorageEncrypted": db.get("StorageEncrypted"),
            "KmsKeyId": db.get("KmsKeyId"),
            "Iops": db.get("Iops"),
            "StorageThroughput": db.get("StorageThroughput"),
            "MaxAllocatedStorage": db.get("MaxAllocatedStorage"),
            "BackupRetentionPeriod": db.get("BackupRetentionPeriod"),
            "PreferredBackupWindow": db.get("PreferredBackupWindow"),
            "PreferredMaintenanceWindow": db.get("PreferredMaintenanceWindow"),
            "AutoMinorVersionUpgrade": db.get("AutoMinorVersionUpgrade"),
            "CopyTagsToSnapshot": db.get("CopyTagsToSnapshot"),
            "DeletionProtection": db.get("DeletionProtection"),
            "CACertificateIdentifier": db.get("CACertificateIdentifier"),
            "EnablePerformanceInsights": db.get("PerformanceInsightsEnabled"),
            "EnableCloudwatchLogsExports": db.get("EnabledCloudwatchLogsExports"),
            "MasterUserSecret": drop_none(
                {
                    "SecretArn": (db.get("MasterUserSecret") or {}).get("SecretArn"),
                    "KmsKeyId": (db.get("MasterUserSecret") or {}).get("KmsKeyId"),
                }
            )
            or None,
            "InstanceCreateTime": db.get("InstanceCreateTime"),
            "Tags": tags_from_aws(db.get("TagList")),
        }
        return Observed(db["DBInstanceIdentifier"], json_safe(drop_none(value)))

    def _check_supported(self, props):
        used = [k for k in UNSUPPORTED if props.get(k) not in (None, "", [], {})]
        if used:
            raise ProviderError(
                f"The portal cannot create a DB instance with {', '.join(used)} (restore, replica or "
                "role association); create it without them",
                code="Unsupported",
            )

    def create(self, properties, token):
        self._check_supported(properties)
        ident = (
            properties.get("DBInstanceIdentifier")
            or derived_name(token, "portal", max_len=63, lower=True, allowed="a-z0-9-")
        ).lower()
        with aws_errors():
            try:
                existing = self._describe(ident)
            except ResourceMissing:
                existing = None
            if existing is not None and existing.get("DBInstanceStatus") == "deleting":
                # The instance this one replaces, still going away: its name is free only after.
                self._wait_gone(ident)
                existing = None
            if existing is not None:
                if tag_value(existing.get("TagList")) != str(token):
                    raise ProviderError(
                        f"A DB instance named {ident} already exists and was not created by this component",
                        code="AlreadyExists",
                    )
            else:
                body = {
                    k: v
                    for k, v in properties.items()
                    if k not in CONTROL and k not in READ_ONLY and v is not None
                }
                request = to_api(body, input_shape(self.rds, "CreateDBInstance"), RENAMES)
                request["DBInstanceIdentifier"] = ident
                secret_kms = (properties.get("MasterUserSecret") or {}).get("KmsKeyId")
                if secret_kms:
                    request["MasterUserSecretKmsKeyId"] = secret_kms
                request["Tags"] = aws_tags(properties.get("Tags"), token)
                created_or_ours(
                    lambda: retry_while_role_propagates(lambda: self.rds.create_db_instance(**request)),
                    exists=("DBInstanceAlreadyExists",),
                    ours=lambda: tag_value(self._describe(ident).get("TagList")) == str(token),
                )
            return self._observed(self._wait_available(ident))

    def read(self, physical_id, properties=None):
        with aws_errors(missing=NOT_FOUND):
            return self._observed(self._describe(physical_id))

    def modify_params(self, old, new):
        """The ModifyDBInstance parameters for going from `old` to `new` (only changes)."""
        for key in CREATE_ONLY + UNSUPPORTED:
            if changed(old, new, key):
                raise ProviderError(
                    f"{key} cannot be changed on an existing DB instance; it must be replaced",
                    code="ImmutableProperty",
                    immutable_property=key,
                )
        shape = input_shape(self.rds, "ModifyDBInstance")
        members = {m.lower(): m for m in shape.members}
        params = {}
        for key in sorted(set(old) | set(new)):
            if key in CONTROL or key in READ_ONLY or not changed(old, new, key):
                continue
            if key == "EnableCloudwatchLogsExports":
                before, after = set(old.get(key) or []), set(new.get(key) or [])
                params["CloudwatchLogsExportConfiguration"] = drop_none(
                    {
                        "EnableLogTypes": sorted(after - before) or None,
                        "DisableLogTypes": sorted(before - after) or None,
                    }
                )
                continue
            if new.get(key) is None:
                continue  # removing a property leaves AWS's current value alone
            api = MODIFY_RENAMES.get(key) or members.get(key.lower())
            if api is None:
                raise ProviderError(
                    f"{key} cannot be changed on an existing DB instance; it must be replaced",
                    code="ImmutableProperty",
                    immutable_property=key,
                )
            params[api] = to_api(new[key], shape.members[api], MODIFY_RENAMES, f"/{key}")
        old_kms = (old.get("MasterUserSecret") or {}).get("KmsKeyId")
        new_kms = (new.get("MasterUserSecret") or {}).get("KmsKeyId")
        if new_kms and new_kms != old_kms:
            params["MasterUserSecretKmsKeyId"] = new_kms
        if params:
            for key in (
                "AllowMajorVersionUpgrade",
                "CertificateRotationRestart",
                "UseDefaultProcessorFeatures",
            ):
                if new.get(key) is not None:
                    params[key] = to_api(new[key], shape.members[key], None, f"/{key}")
        return params

    def update(self, physical_id, old, new):
        params = self.modify_params(old, new)
        apply_now = str(new.get("ApplyImmediately", True)).lower() != "false"
        with aws_errors(missing=NOT_FOUND):
            db = self._describe(physical_id)
            if params:
                self.rds.modify_db_instance(
                    DBInstanceIdentifier=physical_id, ApplyImmediately=apply_now, **params
                )
            if changed(old, new, "Tags"):
                to_set, to_remove = tag_changes(old.get("Tags"), new.get("Tags"))
                if to_remove:
                    self.rds.remove_tags_from_resource(ResourceName=db["DBInstanceArn"], TagKeys=to_remove)
                if to_set:
                    self.rds.add_tags_to_resource(ResourceName=db["DBInstanceArn"], Tags=aws_tags(to_set))
            if params:
                db = self._wait_available(physical_id, no_pending=apply_now)
            return self._observed(self._describe(physical_id) if not params else db)

    def delete(self, physical_id, properties):
        """A final snapshot first (`final_snapshot_id`) unless DeletionPolicy is Delete."""
        request = {"DBInstanceIdentifier": physical_id, "SkipFinalSnapshot": True}
        if (properties or {}).get("DeleteAutomatedBackups") is not None:
            request["DeleteAutomatedBackups"] = str(properties["DeleteAutomatedBackups"]).lower() == "true"
        with aws_errors():
            try:
                db = self._describe(physical_id)
            except ResourceMissing:
                return
            if str((properties or {}).get("DeletionPolicy") or "Snapshot").lower() != "delete":
                request["SkipFinalSnapshot"] = False
                request["FinalDBSnapshotIdentifier"] = final_snapshot_id(db)
            try:
                self.rds.delete_db_instance(**request)
            except ClientError as exc:
                code = error_code(exc)
                if code in NOT_FOUND:
                    return
                # Already being deleted (a retry after a crash): wait for it below.
                if not (code == "InvalidDBInstanceState" and "delet" in str(exc).lower()):
                    raise
            self._wait_gone(physical_id)

    def _wait_gone(self, ident):
        def gone():
            try:
                self._describe(ident)
            except ResourceMissing:
                return True
            return False

        wait_until(gone, what=f"DB instance {ident} to be deleted", timeout=rds_wait_timeout())
