"""Apply a unified diff, to prove that stored history diffs are real and complete."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any


def apply_patch(original: str, diff: str, tmp_path: Any) -> str:
    """Apply a unified diff, proving it is real and complete: with the system ``patch`` when present,
    else with a minimal applier for ``@@`` hunks."""
    if shutil.which("patch"):
        target = tmp_path / "content"
        target.write_text(original)
        subprocess.run(["patch", "-s", str(target)], input=diff, text=True, check=True)
        return str(target.read_text())
    source = original.splitlines(keepends=True)
    out: list[str] = []
    position = 0
    last = ""
    for line in diff.splitlines(keepends=True)[2:]:
        if line.startswith("@@"):
            start = int(line.split()[1].split(",")[0][1:])
            start = start - 1 if start > 0 else 0
            out.extend(source[position:start])
            position = start
        elif line.startswith(" "):
            out.append(line[1:])
            position += 1
        elif line.startswith("-"):
            position += 1
        elif line.startswith("+"):
            out.append(line[1:])
        elif line.startswith("\\") and last in "+ " and out:
            out[-1] = out[-1].removesuffix("\n")
        last = line[0]
    out.extend(source[position:])
    return "".join(out)
