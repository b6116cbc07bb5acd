"""Masking of secret values before they reach a page, a log line, an audit event or a
build log.

A value is secret when its key (or, for ECS-style `{"Name": ..., "Value": ...}` pairs,
its name) looks like a secret, or when the component's schema marks its path writeOnly.
"""

import logging
import re

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
    if any(_pointer_matches(p, _path) for p in write_only if _path):
        return MASK
    if isinstance(value, dict):
        if "$source" in value and len(value) == 1:
            return value
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
