"""Masking of secret values before they reach a page, a log line, an audit event or a
build log.

A value is secret when its key (or, for ECS-style `{"Name": ..., "Value": ...}` pairs,
its name) looks like a secret, or when the component's schema marks its path writeOnly.
"""

import logging
import re

from . import jsondiff, pointers

MASK = "••••••"
SECRET_NAME = re.compile(
    r"(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_?KEY|ACCESS_?KEY|API_?KEY|CREDENTIAL)", re.IGNORECASE
)
# Values that look like credentials even without a telling key: AWS secret keys and
# URLs with a password in them.
URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<password>[^@\s]+)(?P<at>@)", re.IGNORECASE
)


def is_secret_name(name):
    return bool(name) and bool(SECRET_NAME.search(str(name)))


def _pointer_matches(pattern, pointer):
    p_parts, parts = pattern.split("/"), pointer.split("/")
    return len(p_parts) == len(parts) and all(a in ("*", b) for a, b in zip(p_parts, parts, strict=True))


def mask(value, write_only=(), _path=""):
    """Return a copy of `value` with secrets replaced by MASK.

    `write_only` holds JSON pointers (with `*` for any list index) relative to `value`.
    """
    if isinstance(value, dict) and "$source" in value and len(value) == 1:
        return value  # a subscription names a component and a path, never a secret value
    if any(_pointer_matches(p, _path) for p in write_only if _path):
        return MASK
    if isinstance(value, dict):
        name = value.get("Name", value.get("name"))
        out = {}
        for key, item in value.items():
            child = f"{_path}/{key}"
            if is_secret_name(key) and not isinstance(item, dict | list):
                out[key] = MASK
            elif key in ("Value", "value") and is_secret_name(name) and not isinstance(item, dict):
                out[key] = MASK
            else:
                out[key] = mask(item, write_only, child)
        return out
    if isinstance(value, list):
        return [mask(item, write_only, f"{_path}/{i}") for i, item in enumerate(value)]
    if isinstance(value, str):
        return URL_PASSWORD.sub(lambda m: f"{m['scheme']}{MASK}{m['at']}", value)
    return value


def mask_text(text, known_secrets=()):
    """Mask secrets in free text (log lines, AWS error messages)."""
    for secret in known_secrets:
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), MASK)
    text = URL_PASSWORD.sub(lambda m: f"{m['scheme']}{MASK}{m['at']}", text)
    return re.sub(
        r"(?i)\b([A-Z0-9_]*(?:SECRET|PASSWORD|TOKEN)[A-Z0-9_]*)(\s*[=:]\s*)(\"?)([^\s\"',}]+)",
        lambda m: f"{m[1]}{m[2]}{m[3]}{MASK}",
        text,
    )


def mask_at(value, path, write_only=(), doc=None):
    """Mask `value`, the value found at `path` of a properties document `doc`.

    The engine's masks match write-only pointers against whole documents; a diff holds
    values at deeper paths ("/MasterUserPassword" old → new), so the patterns are made
    relative to `path` here, and an ECS-style {"Name": "DB_PASSWORD", "Value": ...} pair
    is recognised from its sibling in `doc`.
    """
    if isinstance(value, dict) and "$source" in value and len(value) == 1:
        return value  # a subscription names a component and a path, never a secret value
    parts = pointers.split(path) if path else []
    keys = [p for p in parts if not p.isdigit()]
    if keys and keys[-1] == parts[-1] and is_secret_name(keys[-1]) and not isinstance(value, dict | list):
        return MASK
    if parts and parts[-1] in ("Value", "value") and doc is not None:
        parent = jsondiff.value_at(doc, pointers.join(parts[:-1]))
        if isinstance(parent, dict) and is_secret_name(parent.get("Name", parent.get("name"))):
            return MASK
    relative = []
    for pattern in write_only:
        pattern_parts = pattern.split("/")[1:]
        n = min(len(pattern_parts), len(parts))
        if all(a in ("*", pointers.join([b])[1:]) for a, b in zip(pattern_parts[:n], parts[:n], strict=True)):
            if len(pattern_parts) <= len(parts):
                return MASK
            relative.append("/" + "/".join(pattern_parts[len(parts) :]))
    return mask(value, relative)


def mask_changes(changes, write_only=(), before=None, after=None):
    """[{path, op, old, new}] with each value masked in the context of its document."""
    return [
        {
            **c,
            "old": mask_at(c["old"], c["path"], write_only, before),
            "new": mask_at(c["new"], c["path"], write_only, after),
        }
        for c in changes
    ]


class MaskSecretsFilter(logging.Filter):
    def filter(self, record):
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        if record.args:
            if isinstance(record.args, dict):
                record.args = {k: mask_text(v) if isinstance(v, str) else v for k, v in record.args.items()}
            else:
                record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in record.args)
        return True
