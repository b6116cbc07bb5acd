"""Rendering DOT text with the Graphviz `dot` program, cached by a hash of the text.

The cache key is sha256(DOT text + format): an unchanged graph is served from
VAR_DIR/topology-cache without running Graphviz. Files are written to a temporary name
and renamed into place, so a reader never sees half a file, and the oldest files are
pruned beyond TOPOLOGY_CACHE_MAX_FILES.
"""

import hashlib
import os
import tempfile
from pathlib import Path

import graphviz
from django.conf import settings

FORMATS = ("svg", "png", "dot")
CONTENT_TYPES = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "dot": "text/vnd.graphviz; charset=utf-8",
}
INSTALL_HINT = (
    "Graphviz is not installed on this server: the `dot` program was not found on its PATH. "
    "Install it with `apt-get install graphviz` (Debian, Ubuntu) or `brew install graphviz` (macOS). "
    "Meanwhile the DOT file can be downloaded and rendered anywhere Graphviz runs."
)
DEFAULT_MAX_FILES = 500


class GraphvizMissing(RuntimeError):
    """The Graphviz `dot` executable is not installed (or not on PATH)."""

    def __init__(self, message=INSTALL_HINT):
        super().__init__(message)
        self.message = message


class RenderError(RuntimeError):
    """Graphviz ran and failed on this input."""


def cache_key(dot_text, fmt):
    return hashlib.sha256(dot_text.encode("utf-8") + b"\0" + fmt.encode("ascii")).hexdigest()


def cache_dir():
    path = Path(settings.VAR_DIR) / "topology-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached(dot_text, fmt):
    """The cached rendering, or None."""
    if fmt == "dot":
        return dot_text.encode("utf-8")
    try:
        return (cache_dir() / f"{cache_key(dot_text, fmt)}.{fmt}").read_bytes()
    except FileNotFoundError:
        return None


def render(dot_text, fmt):
    """`dot_text` as `fmt` bytes (svg, png or dot). Raises GraphvizMissing, RenderError."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    data = cached(dot_text, fmt)
    if data is not None:
        return data
    try:
        data = graphviz.pipe("dot", fmt, dot_text.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizMissing() from exc
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip()
        raise RenderError(f"Graphviz could not render this graph: {detail or exc}") from exc
    directory = cache_dir()
    _write_atomic(directory / f"{cache_key(dot_text, fmt)}.{fmt}", data)
    _prune(directory, getattr(settings, "TOPOLOGY_CACHE_MAX_FILES", DEFAULT_MAX_FILES))
    return data


def _write_atomic(path, data):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _prune(directory, keep):
    entries = []
    for entry in os.scandir(directory):
        if entry.is_file() and not entry.name.startswith(".tmp-"):
            try:
                entries.append((entry.stat().st_mtime, entry.path))
            except FileNotFoundError:
                continue
    if len(entries) <= keep:
        return
    entries.sort()
    for _mtime, path in entries[: len(entries) - keep]:
        Path(path).unlink(missing_ok=True)
