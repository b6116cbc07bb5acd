"""What the management commands share: subcommands, --json output, and domain errors
turned into a clear message and a non-zero exit."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from .errors import PortalError


class PortalCommand(BaseCommand):
    """A command with verbs (`manage.py changeset diff 12`). Subclasses define
    `verbs = {"name": (help, add_arguments_fn)}` and a `do_<name>` method per verb
    returning a JSON-able result, plus optionally `text_<name>` for human output."""

    verbs = {}

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
        for verb, (help_text, add_args) in self.verbs.items():
            p = sub.add_parser(verb, help=help_text, description=help_text)
            p.add_argument("--json", action="store_true", help="print the result as JSON")
            add_args(p)

    def handle(self, *args, **options):
        verb = options["verb"]
        method = getattr(self, "do_" + verb.replace("-", "_"))
        try:
            result = method(**options)
        except PortalError as exc:
            detail = "".join(f"\n  {e.get('path', '')}: {e['message']}" for e in exc.errors[1:6])
            raise CommandError(exc.message + detail, returncode=exc.exit_code) from None
        exit_status = 0
        if isinstance(result, tuple):
            result, exit_status = result
        if options.get("json"):
            self.stdout.write(json.dumps(result, indent=2, default=str, sort_keys=False))
        else:
            text = getattr(self, "text_" + verb.replace("-", "_"), None)
            self.stdout.write(text(result) if text else json.dumps(result, indent=2, default=str))
        if exit_status:
            sys.exit(exit_status)


def arg(*names, **kwargs):
    """Shorthand to declare an argument in a verbs table."""
    return lambda parser: parser.add_argument(*names, **kwargs)


def args(*adders):
    def add(parser):
        for adder in adders:
            adder(parser)

    return add
