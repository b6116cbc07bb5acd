"""var/: what the laptop defaults keep on disk (the SQLite database, the filesystem Celery
broker, logs, collected static files and the SECRET_KEY file).

The settings only read it; the commands that run on those defaults (the demo, the test
suite) create it first.
"""

import secrets
from pathlib import Path

from django.conf import settings


def prepare():
    """Create var/ and the filesystem broker's folders (when that broker is configured)."""
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_out", "processed_folder", "control_folder"):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


def persistent_secret_key():
    """The key in var/secret_key, written on first use, for processes that must share one."""
    key_file = Path(settings.SECRET_KEY_FILE)
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()
