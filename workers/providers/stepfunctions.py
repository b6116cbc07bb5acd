"""Step Functions state machines (AWS::StepFunctions::StateMachine).

The definition comes from `DefinitionString` (a string), `Definition` (an object) or
`DefinitionS3Location`, with `DefinitionSubstitutions` applied to `${name}` placeholders
as CloudFormation does. The physical id is the state machine's ARN.
"""

import json

from botocore.exceptions import ClientError

from .base import Observed, Provider, ProviderError, ResourceMissing, error_code, register
from .common import (
    aws_errors,
    aws_tags,
    changed,
    derived_name,
    from_api,
    input_shape,
    output_shape,
    retry_while_role_propagates,
    tag_changes,
    tag_value,
    tags_from_aws,
    to_api,
    wait_until,
)

NOT_FOUND = ("StateMachineDoesNotExist",)
DEFINITION_KEYS = ("DefinitionString", "Definition", "DefinitionS3Location", "DefinitionSubstitutions")
# Optional configuration blocks, and what "removed from the properties" resets them to.
CONFIG_KEYS = {
    "LoggingConfiguration": {"level": "OFF"},
    "TracingConfiguration": {"enabled": False},
    "EncryptionConfiguration": {"type": "AWS_OWNED_KEY"},
}


def _sfn_tags(tags, token=None):
    return aws_tags(tags, token, key="key", value="value")


@register
class StateMachine(Provider):
    type_name = "AWS::StepFunctions::StateMachine"

    @property
    def sfn(self):
        return self.clients("stepfunctions")

    def definition(self, props):
        """The definition string AWS should hold for these properties."""
        if props.get("DefinitionString") is not None:
            text = props["DefinitionString"]
            if not isinstance(text, str):
                text = json.dumps(text, indent=2)
        elif props.get("Definition") is not None:
            text = props["Definition"]
            if not isinstance(text, str):
                text = json.dumps(text, indent=2)
        elif props.get("DefinitionS3Location"):
            loc = props["DefinitionS3Location"]
            kwargs = {"Bucket": loc["Bucket"], "Key": loc["Key"]}
            if loc.get("Version"):
                kwargs["VersionId"] = loc["Version"]
            text = self.clients("s3").get_object(**kwargs)["Body"].read().decode("utf-8")
        else:
            raise ProviderError(
                "A state machine needs DefinitionString, Definition or DefinitionS3Location",
                code="InvalidProperty",
            )
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            if not isinstance(value, str):
                value = json.dumps(value)
            text = text.replace("${" + key + "}", value)
        return text

    def _config(self, operation, props, key):
        shape = input_shape(self.sfn, operation)
        api = key[:1].lower() + key[1:]
        return to_api(props[key], shape.members[api], None, f"/{key}")

    def _find_by_name(self, name):
        for page in self.sfn.get_paginator("list_state_machines").paginate():
            for item in page.get("stateMachines", []):
                if item["name"] == name:
                    return item["stateMachineArn"]
        return None

    def _describe(self, arn):
        try:
            sm = self.sfn.describe_state_machine(stateMachineArn=arn)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise ResourceMissing(f"State machine {arn} not found") from exc
            raise
        if sm.get("status") == "DELETING":
            raise ResourceMissing(f"State machine {arn} is being deleted")
        return sm

    def _observed(self, sm):
        arn = sm["stateMachineArn"]
        tags = self.sfn.list_tags_for_resource(resourceArn=arn).get("tags", [])
        converted = from_api(sm, output_shape(self.sfn, "DescribeStateMachine"))
        value = {
            "Arn": arn,
            "Name": sm["name"],
            "StateMachineName": sm["name"],
            "StateMachineType": sm.get("type"),
            "RoleArn": sm.get("roleArn"),
            "DefinitionString": sm.get("definition"),
            "Status": sm.get("status"),
            "Tags": tags_from_aws(tags),
        }
        for key in CONFIG_KEYS:
            if converted.get(key):
                value[key] = converted[key]
        if sm.get("revisionId"):
            value["StateMachineRevisionId"] = sm["revisionId"]
        return Observed(arn, {k: v for k, v in value.items() if v is not None})

    def create(self, properties, token):
        name = properties.get("StateMachineName") or derived_name(
            token, "portal", max_len=80, allowed="A-Za-z0-9_-"
        )
        with aws_errors():
            arn = self._find_by_name(name)
            if arn:
                try:
                    sm = self._describe(arn)
                except ResourceMissing:
                    sm = None
                    # A state machine of that name is being deleted (a replacement):
                    # its name is free again only once it is gone.
                    wait_until(
                        lambda: self._gone(arn), what=f"the state machine {name} being deleted to disappear"
                    )
                if sm is not None:
                    tags = self.sfn.list_tags_for_resource(resourceArn=arn).get("tags", [])
                    if tag_value(tags) == str(token):
                        return self._observed(sm)
                    raise ProviderError(
                        f"A state machine named {name} already exists and was not created by this component",
                        code="AlreadyExists",
                    )
            request = {
                "name": name,
                "definition": self.definition(properties),
                "roleArn": properties.get("RoleArn"),
                "type": properties.get("StateMachineType") or "STANDARD",
                "tags": _sfn_tags(properties.get("Tags"), token),
            }
            for key in CONFIG_KEYS:
                if properties.get(key) is not None:
                    request[key[:1].lower() + key[1:]] = self._config("CreateStateMachine", properties, key)
            request = {k: v for k, v in request.items() if v is not None}
            arn = retry_while_role_propagates(lambda: self.sfn.create_state_machine(**request))[
                "stateMachineArn"
            ]
            return self._observed(self._describe(arn))

    def read(self, physical_id, properties=None):
        with aws_errors(missing=NOT_FOUND):
            return self._observed(self._describe(physical_id))

    def update(self, physical_id, old, new):
        for key in ("StateMachineName", "StateMachineType"):
            if changed(old, new, key):
                raise ProviderError(
                    f"{key} cannot be changed on an existing state machine; it must be replaced",
                    code="ImmutableProperty",
                    immutable_property=key,
                )
        with aws_errors(missing=NOT_FOUND):
            self._describe(physical_id)
            params = {}
            if any(changed(old, new, k) for k in DEFINITION_KEYS):
                params["definition"] = self.definition(new)
            if changed(old, new, "RoleArn") and new.get("RoleArn"):
                params["roleArn"] = new["RoleArn"]
            for key, reset in CONFIG_KEYS.items():
                if changed(old, new, key):
                    api = key[:1].lower() + key[1:]
                    params[api] = self._config("UpdateStateMachine", new, key) if new.get(key) else reset
            if params:
                self.sfn.update_state_machine(stateMachineArn=physical_id, **params)
            if changed(old, new, "Tags"):
                to_set, to_remove = tag_changes(old.get("Tags"), new.get("Tags"))
                if to_remove:
                    self.sfn.untag_resource(resourceArn=physical_id, tagKeys=to_remove)
                if to_set:
                    self.sfn.tag_resource(resourceArn=physical_id, tags=_sfn_tags(to_set))
            return self._observed(self._describe(physical_id))

    def _gone(self, arn):
        try:
            self.sfn.describe_state_machine(stateMachineArn=arn)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return True
            raise
        return False

    def delete(self, physical_id, properties):
        with aws_errors():
            try:
                self.sfn.delete_state_machine(stateMachineArn=physical_id)
            except ClientError as exc:
                if error_code(exc) in NOT_FOUND:
                    return
                raise

            # Deletion is asynchronous (running executions are stopped first). DELETING is
            # final, so it counts as deleted; a create reusing the name waits it out.
            def deleted():
                try:
                    self._describe(physical_id)
                except ResourceMissing:
                    return True
                return False

            wait_until(deleted, what=f"state machine {physical_id} to be deleted")
