"""Masking of secret values before they reach a page, a log line, an audit event or a
build log: the one place that decides what is shown.

A value is secret when its key (or, for ECS-style `{"Name": ..., "Value": ...}` pairs,
its name) looks like a secret, when the component's schema marks its path writeOnly, when
it derives from a producer's secret (portal.graph.derived_secret_paths gives those paths),
or when the value itself looks like one. Names and values are judged by Yelp's
detect-secrets: its keyword list for names; its AWS, Stripe, private-key and high-entropy
plugins for values. Free text is masked for passwords in URLs, `NAME=value` pairs whose
name looks like a secret, the values those plugins find, and the raw values
(`secret_values`) the documents behind it hold.

The text patterns run in time linear in their input: they are atomic, and each starts only
where a match can begin, so no string can make them backtrack.
"""

import functools
import logging
import re
from copy import deepcopy

from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString
from detect_secrets.plugins.keyword import DENYLIST
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.stripe import StripeDetector

from . import inputs, jsondiff, pointers
from .errors import ValidationError

MASK = "••••••"
# detect-secrets' keyword list (password, passwd, pwd, secret, db_pass, api_key, ...) and
# the names of environment variables it has no keyword for: tokens, credentials, access
# keys, NAME_KEY and authentication values (ApiAuth; not AuthType or Author).
NAME_KEYWORDS = "|".join(
    (*DENYLIST, r"token", r"credential", r"access_?key", r"[_-]key\b", r"auth(?!or|entication|type|mode)")
)
SECRET_NAME = re.compile(NAME_KEYWORDS, re.IGNORECASE)
VALUE_DETECTORS = (AWSKeyDetector(), StripeDetector(), PrivateKeyDetector())
ENTROPY_DETECTORS = (Base64HighEntropyString(), HexHighEntropyString())
ENTROPY_MIN_LENGTH = 20
# A password in a URL: scheme://user:password@. A match lies inside one run of characters
# without "@" or whitespace, and ends at the run's "@": URL_SEGMENT finds the runs that end
# in "@" and contain "://" (it starts only where a run starts, and scans each run once),
# URL_USER the leftmost scheme://user: in one. The scheme starts at the first letter of its
# run of scheme characters.
URL_SEGMENT = re.compile(r"(?<![^@\s])(?=[^@\s]*?://)[^@\s]*+@")
URL_USER = re.compile(r"(?<![a-z0-9+.-])[0-9+.-]*+[a-z][a-z0-9+.-]*+://[^:/@\s]++:(?!@)", re.IGNORECASE)
# NAME=value or NAME: value in free text; the value is masked when NAME looks like a
# secret. Each name starts at a word boundary and is scanned once. Most text holds none of
# the keywords' stems, and then is not scanned at all.
ASSIGNMENT = re.compile(r"\b(\w++)\s*+[=:]\s*+\"?")
KEYWORD_STEMS = ("pass", "pwd", "secret", "key", "token", "credential", "auth", "contrase")
ASSIGNED_VALUE = re.compile(r"[^\s\"',}]++")


def is_secret_name(name):
    name = str(name) if name else ""
    return bool(name) and (
        _is_short_secret_name(name) if len(name) <= 100 else bool(SECRET_NAME.search(name))
    )


@functools.lru_cache(maxsize=4096)
def _is_short_secret_name(name):
    return bool(SECRET_NAME.search(name))


def found_secrets(text):
    """The secrets detect-secrets finds in `text`: AWS keys, Stripe keys and private keys
    anywhere in it; the whole text when it is one high-entropy token (a random password or
    API key). Cached per string; a text past the string limit (a log, never a stored
    value) is scanned by the pattern plugins only, uncached."""
    if len(text) > inputs.MAX_STRING_LENGTH:
        return _found_by_patterns(text)
    return _found_in_value(text)


@functools.lru_cache(maxsize=8192)
def _found_in_value(text):
    found = _found_by_patterns(text)
    return (text,) if not found and _is_high_entropy_token(text) else found


def _found_by_patterns(text):
    found = set()
    for detector in VALUE_DETECTORS:
        hits = set(detector.analyze_string(text))
        if hits and isinstance(detector, PrivateKeyDetector):
            return (text,)  # the header is what it finds; the key is the whole text
        found |= hits
    return tuple(sorted(found, key=len, reverse=True))


def _is_high_entropy_token(text):
    if len(text) < ENTROPY_MIN_LENGTH or text.strip() != text or " " in text:
        return False
    for detector in ENTROPY_DETECTORS:
        if set(text) <= set(detector.charset):
            return detector.calculate_shannon_entropy(text) > detector.entropy_limit
    return False


def mask_found_secrets(text):
    for secret in found_secrets(text):
        if secret == text:
            return MASK
        text = text.replace(secret, MASK)
    return text


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
        return mask_url_passwords(mask_found_secrets(value))
    return value


def _mask_segment(match):
    segment = match[0]
    user = URL_USER.search(segment)
    return segment if user is None else f"{segment[: user.end()]}{MASK}@"


def mask_url_passwords(text):
    return URL_SEGMENT.sub(_mask_segment, text) if "://" in text else text


def mask_text(text, known_secrets=()):
    """Mask secrets in free text (log lines, AWS error messages); None gives ""."""
    text = str(text or "")
    for secret in known_secrets:
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), MASK)
    return _mask_assignments(mask_url_passwords(mask_found_secrets(text)))


def _mask_assignments(text):
    lowered = text.lower()
    if not any(stem in lowered for stem in KEYWORD_STEMS):
        return text
    out, done = [], 0
    for assignment in ASSIGNMENT.finditer(text):
        if assignment.start() < done or not is_secret_name(assignment[1]):
            continue
        value = ASSIGNED_VALUE.match(text, assignment.end())
        if value:
            out += [text[done : assignment.end()], MASK]
            done = value.end()
    return "".join(out) + text[done:]


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


def masked_change(change, write_only=(), before=None, after=None):
    """A jsondiff.Change as the diff tables, the plan and build logs show it: masked in the
    context of its documents (at its index pointer), its path by key where list items have
    one (pointers.key_path), the root's path as "/", and None for the side it lacks."""
    sides = {"added": (after,), "deleted": (before,)}.get(change.op, (before, after))
    shown = pointers.key_path(change.path, *(doc for doc in sides if doc is not None))
    return {
        "path": shown or "/",
        "op": change.op,
        "old": None if change.op == "added" else mask_at(change.old, change.path, write_only, before),
        "new": None if change.op == "deleted" else mask_at(change.new, change.path, write_only, after),
    }


def masked_changes(before, after, write_only=()):
    """The changes from `before` to `after` as people read them (jsondiff.changes by_key:
    list items by key), each masked_change'd. The concrete pointers among `write_only`
    (secrets derived by position) are matched by key in both documents as well, so a value
    keeps its mask wherever its item moved."""
    before, after = before or {}, after or {}
    hidden = set(write_only)
    for pattern in write_only:
        for doc in (before, after):
            try:
                hidden.add(pointers.key_path(pattern, doc))
            except ValueError:
                pass
    return [
        masked_change(c, sorted(hidden), before, after) for c in jsondiff.changes(before, after, by_key=True)
    ]


def masked_conflict(conflict, write_only=(), head=None, mine=None, base=None):
    """A conflict {path, head, mine, base, ...} with each side masked at its path (in the
    context of the document it came from, where known)."""
    path = "" if conflict.get("path") == "/" else conflict.get("path", "")
    docs = {"head": head, "mine": mine, "base": base}
    present = [doc for doc in (head, mine) if doc is not None]
    return {
        **conflict,
        "key_path": (pointers.key_path(path, *present) if path else "") or "/",
        **{k: mask_at(conflict[k], path, write_only, doc) for k, doc in docs.items() if k in conflict},
    }


def mask_event_data(data, write_only=()):
    """An audit event's before/after data: a component's properties, or a conflict whose
    sides were recorded at their path (where a whole-document mask misses them)."""
    if data is None:
        return None
    if isinstance(data, dict) and isinstance(data.get("conflict"), dict):
        rest = mask({k: v for k, v in data.items() if k != "conflict"})
        return {**rest, "conflict": masked_conflict(data["conflict"], write_only)}
    return mask(data, [f"/properties{p}" for p in write_only])


def secret_leaves(document, write_only=()):
    """[(pointer, raw value)] of the scalars (and write-only subtrees) `mask` hides in
    `document`, in document order."""
    found = []

    def walk(raw, masked, at):
        if isinstance(raw, dict) and isinstance(masked, dict):
            for key, value in raw.items():
                walk(value, masked.get(key), pointers.child(at, key))
        elif isinstance(raw, list) and isinstance(masked, list):
            for i, (a, b) in enumerate(zip(raw, masked, strict=True)):
                walk(a, b, pointers.child(at, i))
        elif masked != raw and raw is not None and raw != MASK:
            found.append((at, raw))

    walk(document, mask(document, write_only), "")
    return found


def secret_values(document, write_only=()):
    """The raw scalar values `mask` hides in `document` (strings of 4+ characters, longest
    first), so that free text quoting them (an AWS error, a log line) can be masked too."""
    found = {str(raw) for _, raw in secret_leaves(document, write_only) if not isinstance(raw, dict | list)}
    return sorted((v for v in found if len(v) >= 4), key=len, reverse=True)


ENVIRONMENT_VALUE = re.compile(r"/ContainerDefinitions/\d+/Environment/\d+/Value")


def literal_secret_warnings(name, properties, write_only=(), before=None):
    """A warning for each secret written into `properties` as a literal (new or changed
    since `before`): stored in the change set, its history and HEAD, and readable in AWS
    by anyone who can describe the resource. Each names the safe form."""
    warnings = []
    for path, raw in secret_leaves(properties, write_only):
        if before is not None and _value_or_none(before, path) == raw:
            continue
        if ENVIRONMENT_VALUE.fullmatch(path):
            safe = (
                'move it to the container\'s Secrets as {"Name": ..., "ValueFrom": ARN} of a '
                "Secrets Manager secret or SSM SecureString parameter"
            )
        else:
            safe = (
                "keep it in Secrets Manager or SSM Parameter Store and pass a reference (an ARN, "
                "a subscription, or the service's managed secret such as ManageMasterUserPassword)"
            )
        warnings.append(f"{name}{pointers.key_path(path, properties)} holds a secret in plain text; {safe}")
    return warnings


def _value_or_none(document, path):
    try:
        return pointers.resolve(document, path)
    except (pointers.Missing, ValueError):
        return None


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


# --- The editor: secrets shown as "unchanged" and kept unless a new value is typed ----------

UNCHANGED = "********"


def hide_secrets(properties, write_only=()):
    """`properties` for an editor: every secret replaced by UNCHANGED, which
    `restore_secrets` swaps back for the stored value."""
    shown = deepcopy(properties)
    for path, _ in secret_leaves(properties, write_only):
        if path:
            pointers.set_value(shown, pointers.split(path), UNCHANGED)
        else:
            return UNCHANGED
    return shown


def restore_secrets(submitted, stored, write_only=()):
    """`submitted` with each UNCHANGED put back to the secret stored at its place (an
    environment entry is found again by its Name if entries moved). Raises
    ValidationError for an UNCHANGED where nothing secret is stored."""
    hidden = hide_secrets(stored, write_only)

    def walk(value, path, raw, shown):
        if value == UNCHANGED:
            if shown == UNCHANGED:
                return raw
            message = f"{UNCHANGED} stands for a stored secret, and there is none here: type the value"
            raise ValidationError(f"{path}: {message}", errors=[{"path": path, "message": message}])
        if isinstance(value, dict):
            raw, shown = (raw, shown) if isinstance(raw, dict) else ({}, {})
            return {k: walk(v, pointers.child(path, k), raw.get(k), shown.get(k)) for k, v in value.items()}
        if isinstance(value, list):
            raw, shown = (raw, shown) if isinstance(raw, list) else ([], [])
            return [
                walk(item, pointers.child(path, i), *_counterpart(item, i, raw, shown))
                for i, item in enumerate(value)
            ]
        return value

    return walk(submitted, "", stored, hidden)


def _counterpart(item, index, raw, shown):
    name = item.get("Name", item.get("name")) if isinstance(item, dict) else None
    if name is not None:
        for a, b in zip(raw, shown, strict=True):
            if isinstance(a, dict) and a.get("Name", a.get("name")) == name:
                return a, b
    return (raw[index], shown[index]) if index < len(raw) else (None, None)
