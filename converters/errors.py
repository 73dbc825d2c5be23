"""Named errors of the workstation converter."""

from __future__ import annotations


class ConversionError(RuntimeError):
    """A model could not be converted to TFLite (message names the variant and the reason)."""


class RunFolderError(ValueError):
    """A training run folder is missing a file or holds an unusable one."""
