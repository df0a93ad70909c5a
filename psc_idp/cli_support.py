"""What every ``psc-idp`` command shares: errors as one line on stderr with an exit status
(STYLE.md §7), the configuration check, ISO 8601 dates and the progress line of long
operations."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import IO

import click

from .settings import ENV_PREFIX

NO_CONFIGURATION = "no configuration: set PSC_IDP_CONFIG or run psc-idp sandbox init"


class OneLineError(click.ClickException):
    """An error the ``psc-idp`` command prints as one line: ``psc-idp: error: …``."""

    def show(self, file: IO | None = None) -> None:
        click.echo(f"psc-idp: error: {self.format_message()}", err=True, file=file)


def error(message: str) -> None:
    """Print an error line without stopping (the command goes on or picks its status)."""
    click.echo(f"psc-idp: error: {message}", err=True)


def one_line(exc: click.ClickException, kind: type[OneLineError] = OneLineError,
             ) -> OneLineError:
    """The same error as one line (``kind``: how it is printed); a usage error (exit status
    2) names the help to read."""
    if isinstance(exc, kind):
        return exc
    message = exc.format_message().replace("\n", " ")
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        message = f"{message} (see {exc.ctx.command_path} --help)"
    error = kind(message)
    error.exit_code = exc.exit_code
    return error


class OneLineGroup(click.Group):
    """Every error, usage errors included, is one line on stderr with its exit status
    (printed as ``error_class`` says)."""

    error_class: type[OneLineError] = OneLineError

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as exc:
            raise one_line(exc, self.error_class) from exc

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as exc:
            raise one_line(exc, self.error_class) from exc


def configured(environ=os.environ) -> bool:
    """Whether any configuration is given: the ``PSC_IDP_CONFIG`` file or a ``PSC_IDP_*``
    setting in the environment."""
    return any(key.startswith(ENV_PREFIX) for key in environ)


def require_configuration(environ=os.environ) -> None:
    if not configured(environ):
        raise OneLineError(NO_CONFIGURATION)


def iso(timestamp: float | None) -> str:
    """Epoch seconds as ISO 8601 UTC (``2026-12-01T23:05:00Z``); ``-`` for none."""
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def count_lines(path: Path) -> int:
    """The lines of ``path`` (0 if it cannot be read: the command says why later)."""
    try:
        with open(path, "rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return 0


class Progress:
    """One line on stderr, rewritten in place (``\\r``): lines done, lines per second and
    the time left. Silent unless stderr is a terminal (logs and pipes stay clean)."""

    INTERVAL = 0.5  # seconds between two updates

    def __init__(self, label: str, path: Path, stream: IO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.total = count_lines(path) if self.enabled else 0
        self.started = self.shown = time.monotonic()
        self.first = self.line = None  # the line the run starts after, the last one written
        self.updated = False

    def __call__(self, line: int) -> None:
        """First the line the run starts after (a resumed sync: its checkpoint), then the
        last line of the file written so far."""
        if not self.enabled:
            return
        if self.first is None:
            self.first, self.line, self.started = line, line, time.monotonic()
            return
        self.line, self.updated = line, True
        current = time.monotonic()
        if current - self.shown >= self.INTERVAL or line >= self.total:
            self.shown = current
            self._show(current)

    def _show(self, current: float) -> None:
        rate = (self.line - self.first) / max(current - self.started, 1e-6)
        left = max(self.total - self.line, 0) / rate if rate and self.total else None
        eta = "?" if left is None else f"{int(left // 60)}:{int(left % 60):02d}"
        total = f"{self.total:,}" if self.total else "?"
        self.stream.write(f"\r{self.label}: line {self.line:,}/{total}, "
                          f"{rate:,.0f} lines/s, ETA {eta}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.updated:
            self._show(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
