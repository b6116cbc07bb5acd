"""What the management commands share: subcommands, --json output, and domain errors
turned into a clear message and a non-zero exit."""

import argparse
import json
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from . import inputs
from .errors import PortalError, ValidationError


class VerbParser(CommandParser):
    """A verb's arguments. A bad one is invalid input (exit 2), called from a shell (where
    argparse exits 2 itself) or through call_command alike."""

    def error(self, message):
        if self.called_from_command_line:
            super().error(message)
        raise CommandError(f"Error: {message}", returncode=ValidationError.exit_code)


def object_id(text):
    """An argparse type: the id of a change set, a run, a log... within the database's range."""
    try:
        return inputs.parse_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class PortalCommand(BaseCommand):
    """A command with verbs (`manage.py changeset diff 12`). Subclasses define
    `verbs = {"name": (help, add_arguments_fn)}` and a `do_<name>` method per verb
    returning a JSON-able result, plus optionally `text_<name>` for human output."""

    verbs = {}

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=VerbParser)
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
