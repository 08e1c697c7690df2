"""Exceptions with a meaning the CLI maps to exit codes (1: model error, 2: usage error)."""

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


class CheckpointError(EffbenchError):
    """A checkpoint is missing, has the wrong hash, or does not fit the architecture; names the file."""
