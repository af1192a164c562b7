"""Expected failures: the CLI prints their message (no traceback) and exits with their code."""

from __future__ import annotations


class RiskwatchError(Exception):
    """An operation was refused or failed for a reason the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(RiskwatchError):
    """The command was given wrong arguments (exit code 2)."""

    exit_code = 2
