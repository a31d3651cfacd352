"""Exceptions that carry a message fit for a user: what went wrong, where, and how to fix it."""

from __future__ import annotations

__all__ = ["CtsegError", "InputError", "DatasetError", "RunFolderError"]


class CtsegError(Exception):
    """Base class of every error ctseg raises on purpose.

    The command line prints ``str(error)`` as one line and exits non-zero, without a traceback.
    """


class InputError(CtsegError, ValueError):
    """A file or argument the user gave cannot be used (missing, unreadable, wrong shape...)."""


class DatasetError(CtsegError):
    """A dataset folder is not laid out as expected or holds inconsistent cases."""


class RunFolderError(CtsegError):
    """A run folder (training output) is missing a file or holds incompatible settings."""
