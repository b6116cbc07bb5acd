"""Secrets in deployment data: portal.secrets does the masking; this finds the raw secret
values a document holds, so that free text (AWS errors, log lines) can be masked too."""

from portal import jsondiff
from portal.secrets import MASK, mask, mask_text


def secret_values(document, write_only=()):
    """The scalar values `mask` would hide in `document` (strings of 4+ characters)."""
    found = []

    def walk(raw, masked):
        if masked == MASK and raw != MASK and not isinstance(raw, dict | list):
            if raw is not None and len(str(raw)) >= 4:
                found.append(str(raw))
            return
        if isinstance(raw, dict) and isinstance(masked, dict):
            for key, value in raw.items():
                walk(value, masked.get(key))
        elif isinstance(raw, list) and isinstance(masked, list):
            for a, b in zip(raw, masked, strict=False):
                walk(a, b)

    walk(document, mask(document, write_only))
    return sorted(set(found), key=len, reverse=True)


def mask_document(document, write_only=()):
    """`mask`: a subscription stays visible even at a write-only path (a Cloud Map
    namespace's `Vpc` is write-only in its schema, and subscribes to the VPC)."""
    return mask(document, write_only)


def masked_change(change, old_doc, new_doc, write_only=()):
    """A jsondiff.Change as {"path", "op", "old", "new"} with values read from the masked
    documents, so that a secret that changed shows as changed, masked on both sides."""
    old_masked, new_masked = (
        mask_document(old_doc or {}, write_only),
        mask_document(new_doc or {}, write_only),
    )

    def side(doc, value):
        if value is None:
            return None
        found = jsondiff.value_at(doc, change.path) if change.path else doc
        return MASK if found is jsondiff.ABSENT else found

    return {
        "path": change.path or "/",
        "op": change.op,
        "old": side(old_masked, change.old) if change.op != "added" else None,
        "new": side(new_masked, change.new) if change.op != "deleted" else None,
    }


def masked_text(text, known=()):
    return mask_text(str(text or ""), known)
