"""How a config problem is worded: `<file>: <field path>: <message>`, on one line.

The file is shown relative to the working directory when it lies below it (what the user
typed, usually), values are quoted short, so the CLI can print the error as it is.
"""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_featurestore.core.errors import ConfigError


def config_error(path: str, field_path: str | None, message: str) -> ConfigError:
    """The error of a file (and field) with the file shown as the user knows it."""
    return ConfigError(display_path(path), field_path, message)


def display_path(path: str) -> str:
    """A path relative to the working directory when it lies below it, else absolute."""
    try:
        absolute = os.path.abspath(path)
        relative = os.path.relpath(absolute, os.getcwd())
    except (OSError, ValueError):  # no working directory, or another drive
        return os.path.normpath(path)
    return absolute if relative == ".." or relative.startswith(".." + os.sep) else relative


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """A location as a spec names it: `features[1].type`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def show(value: Any) -> str:
    """A value quoted as in Python, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def kind(value: Any) -> str:
    """What a user wrote, for `expected X, got <kind>`: containers by kind, scalars by value."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return show(value)
