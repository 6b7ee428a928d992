"""Errors a user can fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class ConfigError(Exception):
    """Bad input: a scenario, a dataset, an override, an output path. One line, no traceback."""

    exit_code = 2
