"""The root command group: turns errors into one line and an exit code.

A ``KeelError`` prints ``error: <message>`` and exits with its ``exit_code`` (2 for bad
input, 1 for a failure); any other exception prints one line naming its type and exits 1.
With ``keel --debug`` the traceback is printed first. A usage error (unknown command,
missing argument, bad option value) is one line too, naming the command's ``--help``, and
exits 2; ``--help`` and explicit exits behave as in Typer.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup
from typer.exceptions import Abort, Exit, TyperException

from keel.cli._output import print_error
from keel.errors import KeelError

__all__ = ["KeelGroup"]

_MAX_UNEXPECTED = 300


class KeelGroup(TyperGroup):
    """A Typer group whose ``invoke`` reports errors the Keel way (see the module doc)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; a usage error prints one line and exits 2 (not Typer's box)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except Abort:
            print_error("aborted")
            sys.exit(1)
        except TyperException as exc:  # Typer's usage errors (its vendored click's)
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()  # type: ignore[attr-defined]  # `keel runs`: the group's help
            else:
                ctx = getattr(exc, "ctx", None)
                where = ctx.command_path if ctx is not None else "keel"
                message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
                print_error(f"{message} (see '{where} --help')")
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        """Run the command; report a failure as one line and the right exit code."""
        try:
            return super().invoke(ctx)
        except (TyperException, Exit, Abort, BrokenPipeError):
            raise  # usage errors, --help, typer.Exit, a closed pipe: Typer handles them
        except KeelError as exc:
            _fail(ctx, exc, exc.message, exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
            text = " ".join(str(exc).split()) or "(no message)"
            if len(text) > _MAX_UNEXPECTED:
                text = text[: _MAX_UNEXPECTED - 1] + "…"
            _fail(ctx, exc, f"unexpected {type(exc).__name__}: {text}", 1, hint=True)


def _fail(
    ctx: typer.Context, exc: BaseException, message: str, code: int, *, hint: bool = False
) -> NoReturn:
    debug = bool(ctx.find_root().params.get("debug"))
    if debug:
        sys.stderr.write("".join(traceback.format_exception(exc)))
    elif hint:
        message += " (run with --debug for the traceback)"
    print_error(message)
    raise Exit(code) from None
