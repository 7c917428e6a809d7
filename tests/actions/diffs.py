"""Apply a stored history diff with GNU ``patch``, the tool a reader of document_history would use."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


def apply_patch(original: str, diff: str) -> str:
    """Write ``original`` (UTF-8, bytes as they are) to a file, apply ``diff`` to it with ``patch`` and return
    the file's text. Fails when ``patch`` refuses the diff or is not installed (Debian: ``apt-get install
    patch``): a diff that only a home-made applier accepts proves nothing."""
    if shutil.which("patch") is None:
        raise RuntimeError("GNU patch is not installed (apt-get install patch)")
    with tempfile.TemporaryDirectory(prefix="history-diff-") as directory:
        target = Path(directory) / "content"
        target.write_bytes(original.encode("utf-8"))
        # -f: never ask (no terminal here) and never take a hunk for a reversed patch.
        result = subprocess.run(
            ["patch", "-s", "-f", "--no-backup-if-mismatch", str(target)],
            input=diff.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        assert result.returncode == 0, f"patch refused the diff ({result.returncode}): {output}\n{diff}"
        return target.read_bytes().decode("utf-8")
