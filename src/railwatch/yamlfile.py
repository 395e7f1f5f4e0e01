"""Reading a YAML mapping from a file, and one-line validation errors, for every settings-like file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from railwatch.errors import RailwatchError


def read_yaml_mapping(path: Path, kind: str, error: type[RailwatchError], expected: str) -> dict[str, Any]:
    """The mapping at the top of a YAML file (an empty file is an empty mapping).

    Args:
        path: The file.
        kind: What the file is, for messages ("config", "camera").
        error: The error class to raise.
        expected: What the mapping should hold, for the message when it is not a mapping.

    Raises:
        ``error``: the file is missing, is not YAML, or does not hold a mapping; the message names the file.
    """
    if not path.is_file():
        raise error(f"{path}: {kind} file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise error(f"{path}: not valid YAML ({type(err).__name__})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected {expected}")
    return data


def first_validation_error(error: ValidationError) -> tuple[str, str]:
    """Where (dotted key) and what of the first problem pydantic found."""
    first = error.errors()[0]
    return ".".join(str(part) for part in first["loc"]) or "(top level)", first["msg"]
