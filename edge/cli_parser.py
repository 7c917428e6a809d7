"""An ``argparse`` parser for the edge's subcommands that reports instead of exiting.

``python -m edge keys ...`` and ``python -m edge manifest ...`` are also called as functions
(tests, other tools): their ``main`` must return an exit code, never ``sys.exit`` from inside.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, NoReturn, TextIO

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

__all__ = ["CommandParser", "HelpShown", "UsageError", "parse_command"]


class UsageError(Exception):
    """Bad arguments; the message includes the usage line."""


class HelpShown(Exception):
    """``--help`` was printed; the command ends successfully."""


class CommandParser(argparse.ArgumentParser):
    def __init__(self, *args: object, out: TextIO, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._out = out

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._out.write(message)
        raise HelpShown()

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        super().print_help(file or self._out)


def parse_command(
    parser: CommandParser, argv: list[str], *, command: str, err: TextIO, usage_exit: int
) -> argparse.Namespace | int:
    """Parse ``argv`` (a leading ``command`` word is accepted); an exit code when it was ``--help`` (0) or
    bad arguments (``usage_exit``, with the message on ``err``)."""
    if argv[:1] == [command]:
        argv = argv[1:]
    try:
        return parser.parse_args(argv)
    except HelpShown:
        return 0
    except UsageError as exc:
        err.write(f"error: {exc}\n")
        return usage_exit
