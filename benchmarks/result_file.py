"""Saving a benchmark's JSON result: parent folders made, temp file then rename, so a killed run leaves no half file."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path: str | os.PathLike, result: dict) -> Path:
    """Write `result` as indented JSON to `path` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
    return path
