"""AWS::IAM::Role: trust policy, inline Policies, ManagedPolicyArns, boundary, tags.

The physical id is the role name (CloudFormation's `Ref`). Crash safety: a role is found by
its name (from the properties, or derived from the token) and adopted when it carries this
component's tag; everything after CreateRole (inline and managed policies) converges from
what IAM holds, so an adopted role gets whatever the crash left undone.
"""

import json
from urllib.parse import unquote

from botocore.exceptions import ClientError

from .base import (
    PORTAL_TAG,
    Observed,
    Provider,
    ProviderError,
    ResourceMissing,
    aws_message,
    error_code,
    register,
)
from .common import (
    aws_errors,
    aws_tags,
    created_or_ours,
    derived_name,
    drop_none,
    gone_is_success,
    reject_immutable,
    reject_unsupported,
    tag_changes,
    tag_value,
    until_visible,
    visible_tags,
)

ROLE_MISSING = ("NoSuchEntity",)
DEFAULT_SESSION = 3600


def _document(value):
    """A policy document as a dict, whether given as an object, JSON text or IAM's URL-encoded JSON."""
    if value is None or isinstance(value, dict):
        return value
    text = str(value)
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(unquote(text))


def _document_text(value):
    return value if isinstance(value, str) else json.dumps(value)


def _paginate(client, operation, key, **kwargs):
    with aws_errors(missing=ROLE_MISSING):
        return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]]


@register
class RoleProvider(Provider):
    type_name = "AWS::IAM::Role"
    create_only = ("Path", "RoleName")
    handled = (
        "AssumeRolePolicyDocument",
        "Description",
        "ManagedPolicyArns",
        "MaxSessionDuration",
        "Path",
        "PermissionsBoundary",
        "Policies",
        "RoleName",
        "Tags",
    )
    read_only = ("Arn", "RoleId")

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        iam = self.clients("iam")
        name = properties.get("RoleName") or derived_name(token, max_len=64)
        try:
            self._get(name)
            if not self._made_for(name, token):
                raise ProviderError(
                    f"Role {name} already exists and was not created for this component",
                    code="EntityAlreadyExists",
                )
        except ResourceMissing:
            kwargs = drop_none(
                {
                    "RoleName": name,
                    "Path": properties.get("Path"),
                    "AssumeRolePolicyDocument": _document_text(properties.get("AssumeRolePolicyDocument")),
                    "Description": properties.get("Description"),
                    "MaxSessionDuration": int(properties["MaxSessionDuration"])
                    if properties.get("MaxSessionDuration")
                    else None,
                    "PermissionsBoundary": properties.get("PermissionsBoundary"),
                    "Tags": aws_tags(properties.get("Tags"), token),
                }
            )
            created_or_ours(
                lambda: iam.create_role(**kwargs),
                exists=("EntityAlreadyExists",),
                ours=lambda: self._made_for(name, token),
            )
            # IAM is eventually consistent: wait until the new role can be read back.
            until_visible(lambda: iam.get_role(RoleName=name), ROLE_MISSING, what=f"role {name}")
        self._converge(name, properties)
        return self.read(name)

    def _made_for(self, name, token):
        tags = _paginate(self.clients("iam"), "list_role_tags", "Tags", RoleName=name)
        return tag_value(tags, PORTAL_TAG) == str(token)

    def _get(self, name):
        with aws_errors(missing=ROLE_MISSING):
            return self.clients("iam").get_role(RoleName=name)["Role"]

    def _inline(self, name):
        iam = self.clients("iam")
        names = _paginate(iam, "list_role_policies", "PolicyNames", RoleName=name)
        policies = []
        for policy_name in names:
            with aws_errors(missing=ROLE_MISSING):
                document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            policies.append({"PolicyName": policy_name, "PolicyDocument": _document(document)})
        return policies

    def _managed(self, name):
        attached = _paginate(
            self.clients("iam"), "list_attached_role_policies", "AttachedPolicies", RoleName=name
        )
        return [p["PolicyArn"] for p in attached]

    def _converge(self, name, desired):
        """Bring the role to `desired`, comparing with what IAM holds (not with the old
        properties), so a retried or adopted role converges too."""
        iam = self.clients("iam")
        role = self._get(name)
        with aws_errors(missing=ROLE_MISSING):
            trust = _document(desired.get("AssumeRolePolicyDocument"))
            if trust is not None and trust != _document(role.get("AssumeRolePolicyDocument")):
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))

            description = desired.get("Description") or ""
            session = int(desired.get("MaxSessionDuration") or DEFAULT_SESSION)
            if description != (role.get("Description") or "") or session != role.get(
                "MaxSessionDuration", DEFAULT_SESSION
            ):
                iam.update_role(RoleName=name, Description=description, MaxSessionDuration=session)

            boundary = desired.get("PermissionsBoundary")
            current_boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
            if boundary and boundary != current_boundary:
                iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)
            elif not boundary and current_boundary:
                iam.delete_role_permissions_boundary(RoleName=name)

            wanted = {p["PolicyName"]: _document(p["PolicyDocument"]) for p in desired.get("Policies") or []}
            present = {p["PolicyName"]: p["PolicyDocument"] for p in self._inline(name)}
            for policy_name, document in wanted.items():
                if present.get(policy_name) != document:
                    iam.put_role_policy(
                        RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
                    )
            for policy_name in present:
                if policy_name not in wanted:
                    iam.delete_role_policy(RoleName=name, PolicyName=policy_name)

            wanted_arns = list(dict.fromkeys(desired.get("ManagedPolicyArns") or []))
            present_arns = self._managed(name)
            for arn in wanted_arns:
                if arn not in present_arns:
                    self._attach(name, arn)
            for arn in present_arns:
                if arn not in wanted_arns:
                    iam.detach_role_policy(RoleName=name, PolicyArn=arn)

            tags = _paginate(iam, "list_role_tags", "Tags", RoleName=name)
            to_set, to_remove = tag_changes(visible_tags(tags), desired.get("Tags"))
            if to_set:
                iam.tag_role(RoleName=name, Tags=to_set)
            if to_remove:
                iam.untag_role(RoleName=name, TagKeys=to_remove)

    def _attach(self, name, arn):
        try:
            self.clients("iam").attach_role_policy(RoleName=name, PolicyArn=arn)
        except ClientError as exc:
            # NoSuchEntity names the policy ("Policy <arn> does not exist or is not
            # attachable") or the role; only the latter means the role is gone.
            if error_code(exc) == "NoSuchEntity" and arn in aws_message(exc):
                raise ProviderError(
                    f"The managed policy {arn} in ManagedPolicyArns does not exist or cannot be "
                    f"attached ({aws_message(exc)})",
                    code="NoSuchEntity",
                ) from exc
            raise

    def read(self, physical_id, properties=None):
        iam = self.clients("iam")
        role = self._get(physical_id)
        value = {
            "Arn": role["Arn"],
            "RoleId": role["RoleId"],
            "RoleName": role["RoleName"],
            "Path": role.get("Path"),
            "AssumeRolePolicyDocument": _document(role.get("AssumeRolePolicyDocument")),
            "Description": role.get("Description") or None,
            "MaxSessionDuration": role.get("MaxSessionDuration"),
            "PermissionsBoundary": (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            "Policies": self._inline(physical_id),
            "ManagedPolicyArns": self._managed(physical_id),
            "Tags": visible_tags(_paginate(iam, "list_role_tags", "Tags", RoleName=physical_id)),
        }
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        self._converge(physical_id, new)
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        iam = self.clients("iam")
        try:
            arns = self._managed(physical_id)
            inline = _paginate(iam, "list_role_policies", "PolicyNames", RoleName=physical_id)
        except ResourceMissing:
            return
        # IAM refuses to delete a role that still has policies (DeleteConflict).
        with gone_is_success(ROLE_MISSING):
            for arn in arns:
                iam.detach_role_policy(RoleName=physical_id, PolicyArn=arn)
            for policy_name in inline:
                iam.delete_role_policy(RoleName=physical_id, PolicyName=policy_name)
        with gone_is_success(ROLE_MISSING):
            iam.delete_role(RoleName=physical_id)
