"""User-facing errors. The CLI prints their message (which names the problem and the fix) and exits 2."""

from __future__ import annotations


class WideseekError(Exception):
    """Base class of errors a user can fix (bad input files, arguments, missing builds)."""


class CorpusFormatError(WideseekError):
    """A corpus source file is missing, unreadable or malformed; the message names file and line."""


class CorpusNotBuiltError(WideseekError):
    """A corpus directory is missing, incomplete or corrupt; the message says how to rebuild it."""


class TaskFormatError(WideseekError):
    """A task file is malformed; the message names the file and line."""


class UnknownTaskError(WideseekError, KeyError):
    """A task id that is not in the task set."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown task"


class MissingExtraError(WideseekError, ImportError):
    """An optional dependency is missing; the message names the pip extra that installs it."""


def require(module: str, extra: str):
    """Import an optional module, or raise MissingExtraError naming ``pip install 'wideseek-env[extra]'``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module!r} is not installed; install it with: pip install 'wideseek-env[{extra}]'"
        ) from exc
