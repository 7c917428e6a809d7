"""The image installs the edge as a package (Dockerfile: ``pip install .``), not from a checkout: the migration
files must be inside the wheel, where ``edge.db.schema`` reads them with importlib.resources."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# What the Dockerfile copies before `pip install .` (the .dockerignore allow-list).
BUILD_CONTEXT = ("pyproject.toml", "setup.py", "README.md", "edge", "actions")


def test_the_wheel_holds_every_migration(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for name in BUILD_CONTEXT:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-cache-dir",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("hasura_edge-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {
            name.removeprefix("edge/db/migrations/"): archive.read(name)
            for name in archive.namelist()
            if name.startswith("edge/db/migrations/")
        }
    files = {path.name: path.read_bytes() for path in (ROOT / "edge" / "db" / "migrations").glob("*.sql")}
    assert files and packaged == files
