"""The error types every layer raises for problems a user can fix.

The CLI turns any :class:`MmconvError` into one line on stderr and a non-zero
exit code (no traceback unless ``--debug``); anything else escaping is a bug in
mmconv and is reported as such.
"""

from __future__ import annotations


class MmconvError(Exception):
    """A problem with the user's input or environment, stated so they can act on it."""

    exit_code = 1


class UsageError(MmconvError):
    """Bad command-line use (wrong or missing flags): exit code 2, like argparse."""

    exit_code = 2


class ModelFormatError(MmconvError):
    """A model file is corrupt, truncated or not of the format it claims."""


class UnsupportedError(MmconvError):
    """The model uses something mmconv cannot convert (yet)."""


class IRError(MmconvError):
    """An IR graph breaks the IR's rules (unknown op or attribute, bad shapes...)."""


class RuntimeUnavailableError(MmconvError):
    """A framework runtime needed for this step is not installed or not configured."""


class DownloadError(MmconvError):
    """A download failed or the downloaded file failed verification."""


class VerificationError(MmconvError):
    """A converted model does not reproduce the source model's outputs."""
