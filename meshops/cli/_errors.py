"""One error path for the command line: every failure is one line on stderr and an exit code.

Exit codes (documented in the README):

* ``0``: success.
* ``1``: bad input (a file, a value, a configuration, a checkpoint, a file-system refusal).
* ``2``: usage (an unknown option, a value of the wrong type for an option, a missing argument).
* ``3``: an internal error (a bug in meshops; ``--debug`` shows the traceback, please report it).
* ``130``: interrupted (Ctrl-C).

The line reads ``meshops <verb>: <file>: <what is wrong>``; library errors already start with the
file they are about, file-system errors get it from ``OSError.filename``.
"""

from __future__ import annotations

import argparse
import errno
import os
from collections.abc import Callable
from typing import Any

__all__ = ["EXIT_OK", "EXIT_INPUT", "EXIT_USAGE", "EXIT_INTERNAL", "EXIT_INTERRUPT", "UsageError",
           "describe", "exit_code", "parse_number", "parse_size", "parse_assignments"]

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPT = 130


class UsageError(ValueError):
    """An option's value cannot be parsed (exit code 2); the message names the option."""


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return "; ".join(lines) if lines else ""


def _os_message(e: OSError) -> str:
    what = e.strerror or errno.errorcode.get(e.errno or 0, "") or str(e)
    what = what[:1].lower() + what[1:] if what else type(e).__name__
    names = [n for n in (e.filename, getattr(e, "filename2", None)) if n is not None]
    if names and e.strerror:  # the OS's own error: name the path it is about
        return f"{os.fsdecode(names[0])}: {what}" + (f" (-> {os.fsdecode(names[1])})" if len(names) > 1 else "")
    return _one_line(str(e)) or what


def _expected() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (exit code 1): the library's errors name the file and value."""
    return (OSError, ValueError, KeyError, RuntimeError, MemoryError, EOFError)


def exit_code(e: BaseException) -> int:
    """The documented exit code of an exception that reached the command line."""
    if isinstance(e, KeyboardInterrupt):
        return EXIT_INTERRUPT
    if isinstance(e, UsageError):
        return EXIT_USAGE
    if isinstance(e, _expected()):
        return EXIT_INPUT
    return EXIT_INTERNAL


def describe(e: BaseException) -> str:
    """One line for ``e``: what is wrong, starting with the file where the error names one."""
    if isinstance(e, KeyboardInterrupt):
        return "interrupted (Ctrl-C); nothing partial was kept"
    if isinstance(e, OSError):
        return _os_message(e)
    if isinstance(e, KeyError):  # str(KeyError('x')) is "'x'": say what it is
        return f"missing key {e.args[0]!r}" if e.args else "missing key"
    if isinstance(e, MemoryError):
        return "out of memory" + (f" ({_one_line(str(e))})" if str(e) else "")
    msg = _one_line(str(e))
    if exit_code(e) == EXIT_INTERNAL:
        return f"internal error {type(e).__name__}: {msg} (rerun with --debug for the traceback and report it)"
    return msg or type(e).__name__


def parse_number(option: str, text: str, kind: Callable[[str], Any] = float, *, positive: bool = False,
                 finite: bool = True) -> Any:
    """``kind(text)`` or a :class:`UsageError` naming ``option`` and the value.

    Shapes
    ------
    text : str -> int or float
    """
    try:
        v = kind(str(text).strip())
    except (TypeError, ValueError):
        raise UsageError(f"{option}: expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if finite and isinstance(v, float) and v != v or (finite and v in (float("inf"), float("-inf"))):
        raise UsageError(f"{option}: expected a finite number, got {text!r}")
    if positive and not v > 0:
        raise UsageError(f"{option}: expected a value > 0, got {text!r}")
    return v


def parse_size(option: str, text: str, max_pixels: int = 64_000_000, max_side: int = 16384) -> tuple[int, int]:
    """``"WxH"`` -> ``(W, H)``; refuses malformed, non-positive or absurd sizes.

    Shapes
    ------
    text : "WxH" -> (int, int)
    """
    w, sep, h = str(text).lower().partition("x")
    if not sep:
        raise UsageError(f"{option}: expected WIDTHxHEIGHT (e.g. 1500x500), got {text!r}")
    size = (parse_number(option, w, int, positive=True), parse_number(option, h, int, positive=True))
    if max(size) > max_side or size[0] * size[1] > max_pixels:
        raise UsageError(f"{option}: {size[0]}x{size[1]} is too large (at most {max_side} pixels a side and "
                         f"{max_pixels:,} pixels in all)")
    return size


def parse_assignments(option: str, items: list[str], kind: Callable[[str], Any] = float) -> dict[str, Any]:
    """``["A=1", "B=2"]`` -> ``{"A": 1.0, "B": 2.0}``; every bad item is named in one error.

    Shapes
    ------
    items : list of "NAME=VALUE" -> {NAME: value}
    """
    out: dict[str, Any] = {}
    bad: list[str] = []
    for item in items:
        k, sep, v = str(item).partition("=")
        if not sep or not k.strip():
            bad.append(f"expected NAME=VALUE, got {item!r}")
            continue
        try:
            out[k.strip()] = parse_number(f"{option} {k.strip()}", v, kind)
        except UsageError as e:
            bad.append(str(e).removeprefix(f"{option} "))
    if bad:
        raise UsageError(f"{option}: " + "; ".join(bad))
    return out


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit code 2)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{_one_line(message)} (see '{self.prog} --help')")
