"""Audit events of signing in: each wrong password and each lockout (django-axes)."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from . import audit


@receiver(user_login_failed)
def login_failed(sender, credentials, request=None, **kwargs):
    # django-axes, an app listed before this one, has put the client's address on the request.
    audit.record(
        "auth.login_failed",
        target=credentials.get("username", ""),
        after={"address": getattr(request, "axes_ip_address", None)},
    )


@receiver(user_locked_out)
def locked_out(sender, request, username, ip_address, **kwargs):
    audit.record("auth.locked_out", target=username or "", after={"address": ip_address})
