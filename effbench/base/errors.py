"""Exceptions with a meaning the CLI maps to exit codes (1: model error, 2: usage error, 5: results cannot be
written, 6: the model's code ended its process)."""

from __future__ import annotations


class EffbenchError(Exception):
    """Base class of every error effbench raises on purpose."""

    exit_code = 1


class UsageError(EffbenchError, ValueError):
    """The user asked for something that does not exist or makes no sense (CLI exit code 2)."""

    exit_code = 2


class UnknownModelError(UsageError):
    """A model name that is not in the zoo; the message lists the closest names."""


class ModelError(EffbenchError):
    """The model itself failed: it raised in forward, returned a non-tensor, or refused the input (exit 1)."""


class OutputError(EffbenchError):
    """Results cannot be written: the output device is full (or over quota) or the path is not writable
    (CLI exit code 5); what was written before is kept, no temporary file is left."""

    exit_code = 5


class ModelExitedError(ModelError):
    """The model's code ended the process that ran it (``sys.exit``, ``os._exit``, a signal) before the
    measurement finished (CLI exit code 6: not a success, whatever code it exited with)."""

    exit_code = 6


def output_error(exc: OSError, path: object) -> EffbenchError | None:
    """The :class:`OutputError` for an ``OSError`` raised writing ``path`` when it is a full device or a quota;
    None for any other error."""
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(
            f"no space left on the device writing {path} ({exc.strerror}); free some space and rerun"
        )
    return None


class CheckpointError(EffbenchError):
    """A checkpoint is missing, has the wrong hash, or does not fit the architecture; names the file."""
