"""The ``hotline`` command.

Each domain declared in ``hotline.domains`` may give a ``register(subparsers)`` that adds its own
sub-commands; a handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from hotline.logging import configure_logging
from hotline.settings import get_settings


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="Call management for social-work hotlines")
    parser.add_argument("--log-format", choices=["json", "console"], help="override HOTLINE_LOG_FORMAT")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from hotline import domains

    for register in domains.command_registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, args.log_format or settings.log_format)
    try:
        code = args.handler(args)
    except CliError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear line, then the traceback in the log
        logging.getLogger("hotline.cli").exception("command.failed")
        print(f"hotline: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
