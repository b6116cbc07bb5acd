"""var/: what the laptop defaults keep on disk (the SQLite database, the laptop broker's
socket, logs, collected static files and the SECRET_KEY file).

The settings only read it; the commands that run on those defaults (the demo, the test
suite) create it first.
"""

import secrets
from pathlib import Path

from django.conf import settings

from portal import localbroker


def prepare():
    """Create var/, and start the laptop broker when no REDIS_URL names another."""
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    if settings.CELERY_BROKER_URL == localbroker.url(settings.VAR_DIR):
        localbroker.ensure_running(settings.VAR_DIR)


def persistent_secret_key():
    """The key in var/secret_key, written on first use, for processes that must share one."""
    key_file = Path(settings.SECRET_KEY_FILE)
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()
