"""The end of every benchmark script: print the result, save its JSON atomically, and the command that made it."""

from __future__ import annotations

import json
import os
import sys
from typing import Iterable, Sequence

from world_model.checkpoint import write_json


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that reruns `python -m module` with these arguments (the process's own when argv is None)."""
    return " ".join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


def publish(result: dict, out: str | os.PathLike | None, lines: Iterable[str] | None = None) -> dict:
    """Print `lines` (a report's Markdown) or else the result as JSON; write the JSON to `out` when given.

    The file is written atomically (world_model.checkpoint.write_json): a killed run leaves no half file. Returns
    `result`, so a script's main can end with `return publish(...)`.
    """
    print("\n".join(lines) if lines is not None else json.dumps(result, indent=2))
    if out:
        write_json(out, result)
    return result
