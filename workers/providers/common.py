"""Small helpers shared by the resource providers: tags, names, key casing, waiting."""

# ---------------------------------------------------------------------------------------
# Helpers shared by the ECS, Step Functions, RDS and ECR providers.
# (Kept in one block; other providers may add their own helpers in separate blocks.)
# ---------------------------------------------------------------------------------------

import contextvars
import hashlib
import json
import re
import time
from contextlib import contextmanager
from datetime import date, datetime

from botocore.exceptions import ClientError
from django.conf import settings

from .base import PORTAL_TAG, ProviderError, ResourceMissing, StillWaiting, aws_message, error_code


@contextmanager
def aws_errors(missing=()):
    """Turn a ClientError into ResourceMissing (codes in `missing`) or ProviderError."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if code in missing:
            raise ResourceMissing(aws_message(exc)) from exc
        raise ProviderError(aws_message(exc), code=code) from exc


def provider_error(exc: ClientError, **kwargs) -> ProviderError:
    return ProviderError(aws_message(exc), code=error_code(exc), **kwargs)


_resumable = contextvars.ContextVar("resumable_waits", default=None)


@contextmanager
def resumable_waits(hold, waiting_for="", deadline=None):
    """Inside, a wait that lasts more than `hold` seconds raises StillWaiting instead of
    holding the caller's task. The wait for `waiting_for` (a StillWaiting's `what` from an
    earlier attempt) keeps that attempt's `deadline` (epoch seconds), so the timeout runs
    across attempts, whoever runs them."""
    token = _resumable.set((hold, waiting_for, deadline))
    try:
        yield
    finally:
        _resumable.reset(token)


def wait_until(check, *, what, timeout=None, interval=None):
    """Call `check()` until it returns something truthy and return that.

    `check` may raise (ResourceMissing, ProviderError) to stop waiting.
    """
    timeout = settings.PORTAL_AWS_WAIT_TIMEOUT if timeout is None else timeout
    interval = settings.PORTAL_AWS_POLL_SECONDS if interval is None else interval
    deadline, hold_until = time.time() + timeout, None
    if (resumable := _resumable.get()) is not None:
        hold, waiting_for, earlier_deadline = resumable
        if waiting_for == what and earlier_deadline:
            deadline = earlier_deadline
        hold_until = time.monotonic() + hold
    while True:
        result = check()
        if result:
            return result
        if time.time() >= deadline:
            raise ProviderError(f"Timed out after {int(timeout)}s waiting for {what}", code="Timeout")
        if hold_until is not None and time.monotonic() >= hold_until:
            raise StillWaiting(what, deadline, interval)
        time.sleep(interval)


# --- tags -------------------------------------------------------------------------------


def cfn_tags(tags) -> list[dict]:
    """CloudFormation `[{Key, Value}]` (or `{key: value}`) as a clean `[{Key, Value}]` list."""
    if not tags:
        return []
    if isinstance(tags, dict):
        return [{"Key": str(k), "Value": "" if v is None else str(v)} for k, v in tags.items()]
    out = []
    for tag in tags:
        key = tag.get("Key", tag.get("key"))
        value = tag.get("Value", tag.get("value", ""))
        out.append({"Key": str(key), "Value": "" if value is None else str(value)})
    return out


def aws_tags(tags, token=None, *, key="Key", value="Value", extra=None) -> list[dict]:
    """Tags for an AWS call, with the portal's component tag added when `token` is given.

    `key`/`value` name the fields the API wants (ECS and Step Functions use lower case).
    """
    merged = {t["Key"]: t["Value"] for t in cfn_tags(tags)}
    if token:
        merged[PORTAL_TAG] = str(token)
    for k, v in (extra or {}).items():
        merged[k] = str(v)
    return [{key: k, value: v} for k, v in merged.items()]


def tags_from_aws(tags) -> list[dict]:
    """AWS tags (any casing) as CloudFormation `[{Key, Value}]`, without the portal's own
    tags and without the `aws:` tags AWS sets itself."""
    return [t for t in cfn_tags(tags) if not t["Key"].startswith(("portal:", "aws:"))]


def tag_value(tags, key=PORTAL_TAG):
    for t in cfn_tags(tags):
        if t["Key"] == key:
            return t["Value"]
    return None


def tag_changes(old_tags, new_tags):
    """What to set (`[{Key, Value}]`) and which keys to remove to go from old to new tags."""
    old = {t["Key"]: t["Value"] for t in cfn_tags(old_tags)}
    new = {t["Key"]: t["Value"] for t in cfn_tags(new_tags)}
    to_set = [{"Key": k, "Value": v} for k, v in new.items() if old.get(k) != v]
    to_remove = [k for k in old if k not in new and not k.startswith(("portal:", "aws:"))]
    return to_set, to_remove


# --- names and tokens -------------------------------------------------------------------


def short_hash(*parts, length=12) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def derived_name(token, prefix="portal", *, max_len=63, lower=False, allowed=r"A-Za-z0-9-"):
    """A deterministic resource name for a component whose properties fix none.

    The same token always gives the same name, so a create retried after a crash finds the
    resource it made. Characters outside `allowed` become '-'.
    """
    raw = f"{prefix}-{token}"
    if lower:
        raw = raw.lower()
    name = re.sub(rf"[^{allowed}]", "-", raw)
    name = re.sub(r"-{2,}", "-", name).strip("-")
    if len(name) > max_len:
        digest = short_hash(token, length=10)
        name = f"{name[: max_len - len(digest) - 1].rstrip('-')}-{digest}"
    return name


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# --- CloudFormation names <-> AWS API names, driven by botocore's service model ----------


def input_shape(client, operation):
    return client.meta.service_model.operation_model(operation).input_shape


def output_shape(client, operation, *path):
    """The output shape of `operation`, descending into members by `path` (list members too)."""
    shape = client.meta.service_model.operation_model(operation).output_shape
    for name in path:
        shape = shape.members[name]
        if shape.type_name == "list":
            shape = shape.member
    return shape


def _lookup(renames, shape, key):
    if not renames:
        return None
    return renames.get(f"{shape.name}.{key}") or renames.get(key)


def to_api(value, shape, renames=None, _path=""):
    """Convert CloudFormation-cased properties into the request shape of an AWS operation.

    Structure keys are matched to the shape's members case-insensitively (so
    `HealthCheck.StartPeriod` becomes `healthCheck.startPeriod` for ECS and stays
    `AllocatedStorage` for RDS), with `renames` for the names that really differ
    (`{"PlacementStrategies": "placementStrategy"}`, or `"ShapeName.Key"` for one shape).
    Map keys are user data and are left alone (`LogConfiguration.Options`, `DockerLabels`).
    Scalars are coerced to the shape's type ("20" -> 20 for an integer, 256 -> "256" for a
    string). An unknown key raises ProviderError rather than being dropped silently.
    """
    if value is None or shape is None:
        return value
    if getattr(shape, "is_document_type", False):
        return value
    kind = shape.type_name
    where = _path or "/"
    if kind == "structure":
        if not isinstance(value, dict):
            raise ProviderError(
                f"{where}: expected an object, got {type(value).__name__}", code="InvalidProperty"
            )
        members = {name.lower(): name for name in shape.members}
        out = {}
        for key, item in value.items():
            api = _lookup(renames, shape, key)
            if api not in shape.members:
                api = members.get(str(key).lower())
            if api is None:
                raise ProviderError(f"{_path}/{key}: not a property AWS accepts here", code="InvalidProperty")
            if item is None:
                continue
            out[api] = to_api(item, shape.members[api], renames, f"{_path}/{key}")
        return out
    if kind == "list":
        if not isinstance(value, list | tuple):
            raise ProviderError(
                f"{where}: expected a list, got {type(value).__name__}", code="InvalidProperty"
            )
        return [to_api(item, shape.member, renames, f"{_path}/{i}") for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise ProviderError(
                f"{where}: expected an object, got {type(value).__name__}", code="InvalidProperty"
            )
        return {str(k): to_api(v, shape.value, renames, f"{_path}/{k}") for k, v in value.items()}
    return _coerce_scalar(value, kind, where)


def _coerce_scalar(value, kind, where):
    try:
        if kind == "string":
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, dict | list):
                return json.dumps(value)
            return str(value)
        if kind in ("integer", "long"):
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if kind in ("double", "float"):
            return float(value)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            raise ValueError
    except (TypeError, ValueError):
        raise ProviderError(f"{where}: {value!r} is not a valid {kind}", code="InvalidProperty") from None
    return value


def from_api(value, shape=None, renames=None):
    """Convert an AWS response fragment to CloudFormation casing, JSON-safe.

    Structure keys get an upper-case first letter unless `renames` says otherwise
    (`{"efsVolumeConfiguration": "EFSVolumeConfiguration"}`, or `"ShapeName.key"`);
    map keys are kept; datetimes become ISO strings.
    """
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if shape is not None and getattr(shape, "is_document_type", False):
        return json_safe(value)
    if isinstance(value, dict):
        if shape is not None and shape.type_name == "map":
            return {k: from_api(v, shape.value, renames) for k, v in value.items()}
        out = {}
        for key, item in value.items():
            if key == "ResponseMetadata":
                continue
            member = shape.members.get(key) if shape is not None and shape.type_name == "structure" else None
            name = (_lookup(renames, shape, key) if shape is not None else (renames or {}).get(key)) or (
                key[:1].upper() + key[1:]
            )
            out[name] = from_api(item, member, renames)
        return out
    if isinstance(value, list | tuple):
        member = shape.member if shape is not None and shape.type_name == "list" else None
        return [from_api(item, member, renames) for item in value]
    return value


def json_safe(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def changed(old: dict, new: dict, key) -> bool:
    """Whether a top-level property differs between two property sets (None == absent)."""
    return canonical_json((old or {}).get(key)) != canonical_json((new or {}).get(key))


def drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def arn_resource_name(value):
    """The resource name in an ARN (`arn:...:cluster/name` -> `name`,
    `arn:...:stateMachine:name` -> `name`); a plain name as is."""
    if value is None:
        return None
    value = str(value)
    if value.startswith("arn:"):
        return value.rsplit("/", 1)[-1] if "/" in value else value.rsplit(":", 1)[-1]
    return value


# ---------------------------------------------------------------------------------------
# Helpers shared by the EC2, ELBv2, Cloud Map, CloudFormation, IAM and Logs providers.
# ---------------------------------------------------------------------------------------


@contextmanager
def gone_is_success(missing=()):
    """For deletes: a ClientError whose code is in `missing` means the resource is already
    gone, which is what was asked; any other ClientError becomes ProviderError."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) not in missing:
            raise provider_error(exc) from exc


def retry_refused(call, refused, *, timeout):
    """Run `call()` again while AWS refuses it for a passing reason (`refused(exc)` is true),
    backing off from PORTAL_AWS_POLL_SECONDS to 8 times that, for at most `timeout` seconds; then,
    or for any other error, AWS's ClientError is raised as it is."""
    deadline = time.monotonic() + timeout
    poll = settings.PORTAL_AWS_POLL_SECONDS
    interval = poll
    while True:
        try:
            return call()
        except ClientError as exc:
            left = deadline - time.monotonic()
            if not refused(exc) or left <= 0:
                raise
        time.sleep(min(interval, left))
        interval = min(interval * 2, poll * 8)


def delete_retrying(call, *, missing=(), busy=(), what, timeout=None):
    """Run the delete `call()`. A `missing` code is success; a `busy` code (something still
    uses or drains the resource) is retried for PORTAL_AWS_IN_USE_TIMEOUT, then AWS's reason is raised."""

    def attempt():
        try:
            call()
        except ClientError as exc:
            if error_code(exc) not in missing:
                raise

    try:
        retry_refused(
            attempt,
            lambda exc: error_code(exc) in busy,
            timeout=settings.PORTAL_AWS_IN_USE_TIMEOUT if timeout is None else timeout,
        )
    except ClientError as exc:
        raise provider_error(exc) from exc


# IAM is eventually consistent: a service can refuse a role created moments ago because it
# cannot assume it yet. (error code, words in AWS's message) of those refusals.
ROLE_NOT_YET_ASSUMABLE = (
    ("AccessDeniedException", "authorized to assume"),  # Step Functions CreateStateMachine
    ("InvalidParameterValue", "ENHANCED_MONITORING"),  # RDS MonitoringRoleArn
    ("InvalidParameterException", "Unable to assume role"),  # ECS service role
)
# How long a new role may take to become assumable everywhere.
ROLE_PROPAGATION_TIMEOUT = 120


def retry_while_role_propagates(call):
    """Run the create `call()`, retrying while AWS cannot assume a role that is just made;
    AWS's ClientError is raised as it is."""

    def refused(exc):
        message = exc.response.get("Error", {}).get("Message", "")
        return any(error_code(exc) == code and words in message for code, words in ROLE_NOT_YET_ASSUMABLE)

    return retry_refused(call, refused, timeout=ROLE_PROPAGATION_TIMEOUT)


def created_or_ours(create, *, exists, ours):
    """Run the create `create()`. When AWS answers with an `exists` code and `ours()` finds
    the resource carrying this component's tag, return that instead: an earlier attempt of
    ours made it (botocore retries a call whose response was lost, and the retry then finds
    the first attempt's resource)."""
    try:
        return create()
    except ClientError as exc:
        if error_code(exc) in exists:
            found = ours()
            if found:
                return found
        raise provider_error(exc) from exc


def until_visible(fetch, missing, *, what, timeout=120):
    """Call `fetch()` until it stops failing with a `missing` code and return its result.

    AWS reads are eventually consistent: a resource created a moment ago can still be
    "not found" by the next Describe call.
    """

    def attempt():
        try:
            return fetch()
        except ClientError as exc:
            if error_code(exc) in missing:
                return None
            raise provider_error(exc) from exc

    return wait_until(attempt, what=what, timeout=timeout)


def visible_tags(tags) -> list[dict]:
    """Observed tags as CloudFormation `[{Key, Value}]`, without the portal's own tags and
    without the `aws:` tags AWS sets itself (nobody can set or remove those)."""
    return [t for t in tags_from_aws(tags) if not t["Key"].startswith("aws:")]


def reject_immutable(old, new, names):
    """Raise ProviderError(immutable_property=...) for the first of `names` whose value
    differs between the old and new properties: AWS cannot change it in place."""
    for name in names:
        if changed(old, new, name):
            raise ProviderError(
                f"{name} cannot be changed on an existing resource; the resource must be replaced",
                code="NotUpdatable",
                immutable_property=name,
            )


def as_bool(value, default=False) -> bool:
    """A CloudFormation boolean ("true"/"false" strings included); None gives `default`."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def request_token(token, *, prefix="portal", max_len=64) -> str:
    """An idempotency token derived from the component token, for APIs that take one
    (letters, digits and '-', starting with a letter, at most `max_len` characters)."""
    return derived_name(token, prefix, max_len=max_len)


def reject_unsupported(type_name, properties, handled, read_only=()):
    """Refuse properties a provider does not apply, rather than silently dropping them.

    `read_only` attributes (as in CloudFormation's schema) are tolerated: they describe the
    resource and are never sent to AWS. None values (pending subscriptions) are ignored.
    """
    extra = sorted(
        key
        for key, value in (properties or {}).items()
        if value is not None and key not in handled and key not in read_only
    )
    if extra:
        raise ProviderError(
            f"{type_name}: the portal cannot set {', '.join(extra)} yet", code="UnsupportedProperty"
        )


# --- EC2 tagging, shared by ec2.py and ec2_routing.py ------------------------------------


def ec2_find_tagged(ec2, operation, result_key, token):
    """The live resource tagged with this component's token, or None."""
    with aws_errors():
        found = getattr(ec2, operation)(Filters=[{"Name": f"tag:{PORTAL_TAG}", "Values": [str(token)]}])[
            result_key
        ]
    return found[0] if found else None


def ec2_tag_spec(resource_type, properties, token):
    return [{"ResourceType": resource_type, "Tags": aws_tags(properties.get("Tags"), token)}]


def ec2_sync_tags(ec2, resource_id, observed_tags, desired_tags):
    to_set, to_remove = tag_changes(visible_tags(observed_tags), desired_tags)
    with aws_errors():
        if to_set:
            ec2.create_tags(Resources=[resource_id], Tags=to_set)
        if to_remove:
            ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": k} for k in to_remove])
