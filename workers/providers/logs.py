"""AWS::Logs::LogGroup: name, retention, KMS key, class, tags.

The physical id is the log group name (CloudFormation's `Ref`); `Arn` is the ARN
CloudFormation's GetAtt returns (ending in `:*`). Crash safety: when CreateLogGroup finds
the name (from the properties, or derived from the token) taken, the group is adopted if
it carries this component's tag; the retention policy after CreateLogGroup converges from
what AWS holds.
"""

from botocore.exceptions import ClientError

from .base import PORTAL_TAG, Observed, Provider, ProviderError, ResourceMissing, error_code, register
from .common import (
    aws_errors,
    aws_tags,
    derived_name,
    drop_none,
    gone_is_success,
    provider_error,
    reject_immutable,
    reject_unsupported,
    tag_changes,
    tag_value,
    visible_tags,
)

GROUP_MISSING = ("ResourceNotFoundException",)


def _tag_arn(group):
    # Tagging APIs want the ARN without the trailing ":*".
    arn = group.get("logGroupArn") or group.get("arn", "")
    return arn[:-2] if arn.endswith(":*") else arn


@register
class LogGroupProvider(Provider):
    type_name = "AWS::Logs::LogGroup"
    create_only = ("LogGroupName", "LogGroupClass")
    handled = ("LogGroupName", "RetentionInDays", "KmsKeyId", "LogGroupClass", "Tags")
    read_only = ("Arn",)

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        logs = self.clients("logs")
        name = properties.get("LogGroupName") or derived_name(token, max_len=512, allowed=r"A-Za-z0-9_./#-")
        tags = {t["Key"]: t["Value"] for t in aws_tags(properties.get("Tags"), token)}
        kwargs = drop_none(
            {
                "logGroupName": name,
                "kmsKeyId": properties.get("KmsKeyId"),
                "logGroupClass": properties.get("LogGroupClass"),
                "tags": tags,
            }
        )
        # Create first, read only when AWS says the name is taken: a group that carries this
        # component's tag is an earlier attempt's (a worker died, a response was lost).
        group = None
        try:
            logs.create_log_group(**kwargs)
        except ClientError as exc:
            if error_code(exc) not in ("ResourceAlreadyExistsException",):
                raise provider_error(exc) from exc
            group = self._find(name)
            if not self._made_for(group, token):
                raise ProviderError(
                    f"Log group {name} already exists and was not created for this component",
                    code="ResourceAlreadyExistsException",
                ) from exc
        self._sync_retention(name, group, properties)
        if group is None:  # the tags are the ones just sent: no need to list them
            return self._observed(self._describe(name), [{"Key": k, "Value": v} for k, v in tags.items()])
        return self.read(name)

    def _made_for(self, group, token):
        return group is not None and tag_value(self._tags(group), PORTAL_TAG) == str(token)

    def _find(self, name):
        paginator = self.clients("logs").get_paginator("describe_log_groups")
        with aws_errors():
            for page in paginator.paginate(logGroupNamePrefix=name):
                for group in page["logGroups"]:
                    if group["logGroupName"] == name:
                        return group
        return None

    def _describe(self, name):
        group = self._find(name)
        if group is None:
            raise ResourceMissing(f"Log group {name} does not exist")
        return group

    def _tags(self, group):
        with aws_errors(missing=GROUP_MISSING):
            tags = self.clients("logs").list_tags_for_resource(resourceArn=_tag_arn(group)).get("tags", {})
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    def _sync_retention(self, name, group, desired):
        logs = self.clients("logs")
        want = desired.get("RetentionInDays")
        have = (group or {}).get("retentionInDays")
        with aws_errors(missing=GROUP_MISSING):
            if want is not None and int(want) != have:
                logs.put_retention_policy(logGroupName=name, retentionInDays=int(want))
            elif want is None and have is not None:
                logs.delete_retention_policy(logGroupName=name)

    def read(self, physical_id, properties=None):
        group = self._describe(physical_id)
        return self._observed(group, self._tags(group))

    @staticmethod
    def _observed(group, tags):
        value = {
            "LogGroupName": group["logGroupName"],
            "Arn": group.get("arn"),
            "RetentionInDays": group.get("retentionInDays"),
            "KmsKeyId": group.get("kmsKeyId"),
            "LogGroupClass": group.get("logGroupClass"),
            "Tags": visible_tags(tags),
        }
        return Observed(group["logGroupName"], drop_none(value))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        logs = self.clients("logs")
        group = self._describe(physical_id)
        self._sync_retention(physical_id, group, new)
        with aws_errors(missing=GROUP_MISSING):
            if new.get("KmsKeyId") and new["KmsKeyId"] != group.get("kmsKeyId"):
                logs.associate_kms_key(logGroupName=physical_id, kmsKeyId=new["KmsKeyId"])
            elif not new.get("KmsKeyId") and group.get("kmsKeyId"):
                logs.disassociate_kms_key(logGroupName=physical_id)
            to_set, to_remove = tag_changes(visible_tags(self._tags(group)), new.get("Tags"))
            if to_set:
                logs.tag_resource(resourceArn=_tag_arn(group), tags={t["Key"]: t["Value"] for t in to_set})
            if to_remove:
                logs.untag_resource(resourceArn=_tag_arn(group), tagKeys=to_remove)
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        with gone_is_success(GROUP_MISSING):
            self.clients("logs").delete_log_group(logGroupName=physical_id)
