"""How the ``joynet`` command talks: results on stdout, progress and errors on stderr."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from joynet.errors import JoyNetError

T = TypeVar("T")

stderr = Console(stderr=True)


class CommandError(Exception):
    """A failure the command reports as one line (``joynet: error: ...``) and exit status 1."""


def fail(message: str) -> int:
    print(f"joynet: error: {message}", file=sys.stderr)
    return 1


def run(work: Awaitable[T]) -> T:
    """Runs a command's coroutine; the project's own errors and OS errors become CommandErrors."""
    try:
        return asyncio.run(work)  # type: ignore[arg-type]
    except JoyNetError as error:
        raise CommandError(str(error)) from None
    except OSError as error:  # a file that is missing, a directory, unreadable
        raise CommandError(f"{error.filename}: {error.strerror}" if error.filename else str(error)) from None


@contextlib.contextmanager
def file_progress(verb: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per file on stderr (drawn only on a terminal), fed as (name, done, total)."""
    bars = Progress(
        TextColumn(f"{verb} [bold]{{task.description}}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    tasks: dict[str, object] = {}

    def report(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = bars.add_task(name, total=total)
        bars.update(tasks[name], completed=done)  # type: ignore[arg-type]

    with bars:
        yield report
