"""RDS DB subnet groups (AWS::RDS::DBSubnetGroup).

The physical id is the group's name as RDS stores it: in lower case (`Tonys-DB` is stored
and referred to as `tonys-db`). Without DBSubnetGroupName the name is derived from the
component's token, so a retried create finds the group it made. The group is tagged
`portal:component-id` in the create call; a group of that name without the tag was not
made by this component and is not adopted.

`resource_value`: DBSubnetGroupName, DBSubnetGroupDescription, SubnetIds, Tags,
DBSubnetGroupArn (read-only) and VpcId (what RDS reports; not a CloudFormation attribute).
SubnetIds are a set to RDS: they are reported in the order the properties give them when
the sets agree, so that an unchanged group shows no drift.
"""

from .base import Observed, Provider, ProviderError, ResourceMissing, register
from .common import (
    aws_errors,
    aws_tags,
    delete_retrying,
    derived_name,
    drop_none,
    tag_changes,
    tag_value,
    tags_from_aws,
)

NOT_FOUND = ("DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound")
# Still used by a DB instance (one being deleted lets go of it only when it is gone).
IN_USE = ("InvalidDBSubnetGroupStateFault", "InvalidDBSubnetGroupState")


def _name(properties, token):
    name = (properties or {}).get("DBSubnetGroupName")
    if not name:
        name = derived_name(token, "portal", max_len=255, lower=True, allowed="a-z0-9-")
    return str(name).strip().lower()


def _subnet_ids(group):
    return [s["SubnetIdentifier"] for s in group.get("Subnets") or [] if s.get("SubnetIdentifier")]


@register
class DBSubnetGroupProvider(Provider):
    type_name = "AWS::RDS::DBSubnetGroup"

    @property
    def rds(self):
        return self.clients("rds")

    def _describe(self, name):
        with aws_errors(missing=NOT_FOUND):
            found = self.rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"]
        if not found:
            raise ResourceMissing(f"DB subnet group {name} does not exist")
        return found[0]

    def _tags(self, group):
        arn = group.get("DBSubnetGroupArn")
        if not arn:
            return []
        with aws_errors(missing=NOT_FOUND):
            return self.rds.list_tags_for_resource(ResourceName=arn).get("TagList") or []

    def _observed(self, group, properties=None):
        subnets = _subnet_ids(group)
        wanted = [str(s) for s in (properties or {}).get("SubnetIds") or []]
        if wanted and sorted(wanted) == sorted(subnets):
            subnets = wanted
        value = {
            "DBSubnetGroupName": group["DBSubnetGroupName"],
            "DBSubnetGroupDescription": group.get("DBSubnetGroupDescription"),
            "SubnetIds": subnets,
            "DBSubnetGroupArn": group.get("DBSubnetGroupArn"),
            "VpcId": group.get("VpcId"),
            "Tags": tags_from_aws(self._tags(group)),
        }
        return Observed(group["DBSubnetGroupName"], drop_none(value))

    def create(self, properties, token):
        name = _name(properties, token)
        try:
            existing = self._describe(name)
        except ResourceMissing:
            existing = None
        if existing is not None:
            if tag_value(self._tags(existing)) != str(token):
                raise ProviderError(
                    f"A DB subnet group named {name} already exists and was not created by this component",
                    code="AlreadyExists",
                )
            # Made by an earlier attempt of this create: bring it to the properties.
            return self._converge(existing, properties)
        with aws_errors():
            group = self.rds.create_db_subnet_group(
                DBSubnetGroupName=name,
                DBSubnetGroupDescription=str(properties.get("DBSubnetGroupDescription") or ""),
                SubnetIds=[str(s) for s in properties.get("SubnetIds") or []],
                Tags=aws_tags(properties.get("Tags"), token),
            )["DBSubnetGroup"]
        return self._observed(group, properties)

    def read(self, physical_id, properties=None):
        return self._observed(self._describe(physical_id), properties)

    def update(self, physical_id, old, new):
        old_name = (old or {}).get("DBSubnetGroupName")
        new_name = (new or {}).get("DBSubnetGroupName")
        # RDS stores the name in lower case: a change of case only is no change.
        if str(old_name or "").lower() != str(new_name or "").lower():
            raise ProviderError(
                "DBSubnetGroupName cannot be changed on an existing DB subnet group; it must be replaced",
                code="NotUpdatable",
                immutable_property="DBSubnetGroupName",
            )
        return self._converge(self._describe(physical_id), new)

    def _converge(self, group, properties):
        """Bring description, subnets and tags of an existing group to `properties`."""
        name = group["DBSubnetGroupName"]
        description = properties.get("DBSubnetGroupDescription")
        subnets = [str(s) for s in properties.get("SubnetIds") or []]
        params = {}
        if description is not None and str(description) != group.get("DBSubnetGroupDescription"):
            params["DBSubnetGroupDescription"] = str(description)
        if subnets and sorted(subnets) != sorted(_subnet_ids(group)):
            params["SubnetIds"] = subnets
        if params:
            # SubnetIds is a required parameter of ModifyDBSubnetGroup.
            params["SubnetIds"] = subnets or _subnet_ids(group)
            with aws_errors(missing=NOT_FOUND):
                self.rds.modify_db_subnet_group(DBSubnetGroupName=name, **params)
        arn = group.get("DBSubnetGroupArn")
        if arn:
            to_set, to_remove = tag_changes(tags_from_aws(self._tags(group)), properties.get("Tags"))
            with aws_errors(missing=NOT_FOUND):
                if to_remove:
                    self.rds.remove_tags_from_resource(ResourceName=arn, TagKeys=to_remove)
                if to_set:
                    self.rds.add_tags_to_resource(ResourceName=arn, Tags=to_set)
        return self.read(name, properties)

    def delete(self, physical_id, properties):
        delete_retrying(
            lambda: self.rds.delete_db_subnet_group(DBSubnetGroupName=physical_id),
            missing=NOT_FOUND,
            busy=IN_USE,
            what=f"DB subnet group {physical_id}",
        )
