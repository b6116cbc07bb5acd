"""AWS::CloudFormation::Stack as the portal extends it: the template travels inline.

Properties: StackName (optional: derived from the token when absent), TemplateBody (a JSON
object, sent json.dumps'ed; a string is sent as is) or TemplateURL, Parameters (an object
name -> value), Capabilities, NotificationARNs, Tags, TimeoutInMinutes.

resource_value: StackId, StackName, StackStatus, Outputs (the `[{OutputKey, OutputValue,
...}]` list DescribeStacks returns), Parameters (name -> value), Capabilities, Tags,
TimeoutInMinutes and TemplateBody (the stack's JSON template, so an imported stack carries it). The physical id is the stack id, which is what `Ref` returns.

Create and update wait until the stack settles. A stack that ends rolled back or failed is a
ProviderError carrying the failed resources' reasons from the stack events.
"""

import json

from botocore.exceptions import ClientError
from django.conf import settings

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
    aws_tags,
    derived_name,
    drop_none,
    json_safe,
    provider_error,
    reject_unsupported,
    request_token,
    short_hash,
    tag_value,
    visible_tags,
    wait_until,
)

SETTLED_OK = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
# Stack statuses that open an operation: events older than these belong to earlier ones.
OPERATION_STARTS = ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "IMPORT_IN_PROGRESS")
# How long to wait for a stack to settle when TimeoutInMinutes does not say.
NAME_MAX = 128


def _is_missing(exc: ClientError) -> bool:
    # CloudFormation has no NotFound code: a missing stack is a ValidationError.
    return error_code(exc) == "ValidationError" and "does not exist" in aws_message(exc)


def _is_no_op(exc: ClientError) -> bool:
    return error_code(exc) == "ValidationError" and "No updates are to be performed" in aws_message(exc)


def _parameter_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)  # CommaDelimitedList / List<...> parameters
    return str(value)


def _stack_arguments(properties):
    """The arguments CreateStack and UpdateStack share."""
    args = {}
    template = properties.get("TemplateBody")
    if template is not None:
        args["TemplateBody"] = template if isinstance(template, str) else json.dumps(template)
    elif properties.get("TemplateURL"):
        args["TemplateURL"] = properties["TemplateURL"]
    parameters = properties.get("Parameters")
    if isinstance(parameters, dict):
        args["Parameters"] = [
            {"ParameterKey": str(k), "ParameterValue": _parameter_value(v)}
            for k, v in parameters.items()
            if v is not None
        ]
    elif parameters:
        args["Parameters"] = parameters  # already [{ParameterKey, ParameterValue}]
    if properties.get("Capabilities"):
        args["Capabilities"] = list(properties["Capabilities"])
    if properties.get("NotificationARNs") is not None:
        args["NotificationARNs"] = list(properties["NotificationARNs"])
    return args


@register
class StackProvider(Provider):
    type_name = "AWS::CloudFormation::Stack"
    handled = (
        "StackName",
        "TemplateBody",
        "TemplateURL",
        "Parameters",
        "Capabilities",
        "NotificationARNs",
        "Tags",
        "TimeoutInMinutes",
    )
    read_only = ("StackId", "StackStatus", "StackStatusReason", "Outputs")

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        cf = self.clients("cloudformation")
        name = properties.get("StackName") or derived_name(token, max_len=NAME_MAX)
        attempt = "create"
        stack = self._find(name)
        if stack is not None:
            if tag_value(stack.get("Tags"), PORTAL_TAG) != str(token):
                raise ProviderError(
                    f"Stack {name} already exists and was not created for this component",
                    code="AlreadyExistsException",
                )
            stack = self._settle(stack["StackId"], properties)
            if stack["StackStatus"] == "ROLLBACK_COMPLETE":
                # An earlier attempt's create failed and rolled back. Such a stack can only
                # be deleted, so start again (with a fresh request token).
                self._delete_and_wait(stack)
                attempt = short_hash(stack["StackId"])
                stack = None
            elif stack["StackStatus"] not in SETTLED_OK:
                raise self._failure(stack)
        if stack is None:
            kwargs = _stack_arguments(properties)
            kwargs.update(
                drop_none(
                    {
                        "StackName": name,
                        "Tags": aws_tags(properties.get("Tags"), token),
                        "TimeoutInMinutes": int(properties["TimeoutInMinutes"])
                        if properties.get("TimeoutInMinutes")
                        else None,
                        "ClientRequestToken": request_token(f"{token}-{attempt}", max_len=NAME_MAX),
                    }
                )
            )
            try:
                stack_id = cf.create_stack(**kwargs)["StackId"]
            except ClientError as exc:
                raise provider_error(exc) from exc
            stack = self._settle(stack_id, properties)
            if stack["StackStatus"] not in SETTLED_OK:
                raise self._failure(stack)
        return self.read(stack["StackId"])

    # --- reading and waiting ---------------------------------------------------------------

    def _describe(self, stack):
        """The stack (by id or name); ResourceMissing when it does not exist or is deleted."""
        try:
            stacks = self.clients("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        except ClientError as exc:
            if _is_missing(exc):
                raise ResourceMissing(aws_message(exc)) from exc
            raise provider_error(exc) from exc
        if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
            raise ResourceMissing(f"Stack {stack} does not exist")
        return stacks[0]

    def _find(self, name):
        try:
            return self._describe(name)
        except ResourceMissing:
            return None

    @staticmethod
    def _timeout(properties):
        minutes = (properties or {}).get("TimeoutInMinutes")
        return int(minutes) * 60 + 600 if minutes else settings.PORTAL_AWS_STACK_TIMEOUT

    def _settle(self, stack_id, properties=None):
        def check():
            stack = self._describe(stack_id)
            return None if stack["StackStatus"].endswith("_IN_PROGRESS") else stack

        return wait_until(check, what=f"stack {stack_id} to settle", timeout=self._timeout(properties))

    def _latest_events(self, stack):
        """The stack's events, newest first, back to the start of its latest operation."""
        paginator = self.clients("cloudformation").get_paginator("describe_stack_events")
        for page in paginator.paginate(StackName=stack["StackId"], PaginationConfig={"MaxItems": 500}):
            for event in page["StackEvents"]:
                yield event
                is_stack = event.get("PhysicalResourceId") == stack["StackId"] or (
                    event.get("LogicalResourceId") == stack["StackName"]
                    and event.get("ResourceType") == "AWS::CloudFormation::Stack"
                )
                if is_stack and event.get("ResourceStatus") in OPERATION_STARTS:
                    return

    def _failure_reasons(self, stack):
        """Why the latest operation failed: the failed resources' reasons, oldest first."""
        reasons, cancelled = [], []
        try:
            for event in self._latest_events(stack):
                status = event.get("ResourceStatus", "")
                reason = event.get("ResourceStatusReason")
                if (
                    event.get("ResourceType") == "AWS::CloudFormation::Stack"
                    and event.get("PhysicalResourceId") == stack["StackId"]
                ):
                    continue
                if not status.endswith("_FAILED") or not reason:
                    continue
                line = f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}) {status}: {reason}"
                # "Resource creation cancelled" only follows from the real failure.
                (cancelled if "cancelled" in reason.lower() else reasons).append(line)
        except ClientError as exc:
            return [f"(stack events unavailable: {aws_message(exc)})"]
        return list(dict.fromkeys(reversed(reasons or cancelled)))

    def _failure(self, stack):
        reasons = self._failure_reasons(stack)
        detail = "; ".join(reasons) or stack.get("StackStatusReason") or "no reason given in the stack events"
        return ProviderError(
            f"Stack {stack['StackName']} is {stack['StackStatus']}: {detail}", code=stack["StackStatus"]
        )

    def read(self, physical_id, properties=None):
        stack = self._describe(physical_id)
        value = {
            "StackId": stack["StackId"],
            "StackName": stack["StackName"],
            "StackStatus": stack["StackStatus"],
            "StackStatusReason": stack.get("StackStatusReason"),
            "Outputs": json_safe(stack.get("Outputs") or []),
            "Parameters": {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters") or []},
            "Capabilities": stack.get("Capabilities") or None,
            "NotificationARNs": stack.get("NotificationARNs") or None,
            "TimeoutInMinutes": stack.get("TimeoutInMinutes"),
            "Tags": visible_tags(stack.get("Tags")),
            "TemplateBody": self._template(stack["StackId"]),
        }
        return Observed(stack["StackId"], drop_none(value))

    def _template(self, stack_id):
        """The template as a JSON object (what an import needs); None for a YAML template."""
        try:
            body = self.clients("cloudformation").get_template(StackName=stack_id, TemplateStage="Original")[
                "TemplateBody"
            ]
        except ClientError as exc:
            if _is_missing(exc):
                raise ResourceMissing(aws_message(exc)) from exc
            raise provider_error(exc) from exc
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                return None
        return json_safe(body) if isinstance(body, dict) else None

    # --- update and delete -----------------------------------------------------------------

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        # An earlier attempt's update may still be running: let it finish first.
        stack = self._settle(physical_id, new)
        if stack["StackStatus"] == "UPDATE_ROLLBACK_FAILED":
            stack = self._continue_rollback(stack, new)  # AWS refuses updates until then
        if new.get("StackName") and new["StackName"] != stack["StackName"]:
            raise ProviderError(
                "StackName cannot be changed on an existing stack; the stack must be replaced",
                code="NotUpdatable",
                immutable_property="StackName",
            )
        kwargs = _stack_arguments(new)
        kwargs["StackName"] = stack["StackId"]
        if "TemplateBody" not in kwargs and "TemplateURL" not in kwargs:
            kwargs["UsePreviousTemplate"] = True
        # Keep the component tag: UpdateStack replaces the whole tag set.
        kwargs["Tags"] = aws_tags(new.get("Tags"), tag_value(stack.get("Tags"), PORTAL_TAG))
        try:
            self.clients("cloudformation").update_stack(**kwargs)
        except ClientError as exc:
            if _is_no_op(exc):
                return self.read(physical_id)
            raise provider_error(exc) from exc
        stack = self._settle(physical_id, new)
        if stack["StackStatus"] == "UPDATE_ROLLBACK_FAILED":
            failure = self._failure(stack)
            self._continue_rollback(stack, new)
            raise ProviderError(
                f"{failure.message}. The rollback was continued (ContinueUpdateRollback): the stack "
                "is back on its previous template",
                code=failure.code,
            )
        if stack["StackStatus"] not in SETTLED_OK:
            raise self._failure(stack)
        return self.read(physical_id)

    def _continue_rollback(self, stack, properties):
        """Finish a rollback that failed (UPDATE_ROLLBACK_FAILED), as CloudFormation's
        ContinueUpdateRollback does once the cause is gone, and return the settled stack."""
        try:
            self.clients("cloudformation").continue_update_rollback(StackName=stack["StackId"])
        except ClientError as exc:
            raise provider_error(exc) from exc
        settled = self._settle(stack["StackId"], properties)
        if settled["StackStatus"] != "UPDATE_ROLLBACK_COMPLETE":
            failure = self._failure(settled)
            raise ProviderError(
                f"{failure.message}. ContinueUpdateRollback could not finish the rollback: fix those "
                "resources in AWS (or skip them with ResourcesToSkip) and apply again",
                code=failure.code,
            )
        return settled

    def _delete_and_wait(self, stack):
        try:
            self.clients("cloudformation").delete_stack(StackName=stack["StackId"])
        except ClientError as exc:
            if _is_missing(exc):
                return
            raise provider_error(exc) from exc

        def check():
            try:
                current = self._describe(stack["StackId"])
            except ResourceMissing:
                return {"StackStatus": "DELETE_COMPLETE"}
            return None if current["StackStatus"].endswith("_IN_PROGRESS") else current

        settled = wait_until(
            check, what=f"stack {stack['StackName']} to be deleted", timeout=settings.PORTAL_AWS_STACK_TIMEOUT
        )
        if settled["StackStatus"] != "DELETE_COMPLETE":
            # Not retried with RetainResources: that would leave those resources running
            # outside any stack. Deleting again once the cause is fixed finishes the job.
            failure = self._failure({**stack, **settled})
            raise ProviderError(
                f"{failure.message}. Fix or empty those resources and delete again; to keep them "
                "instead, delete the stack in CloudFormation retaining them (RetainResources)",
                code=failure.code,
            )

    def delete(self, physical_id, properties):
        try:
            stack = self._describe(physical_id)
        except ResourceMissing:
            return
        self._delete_and_wait(stack)
