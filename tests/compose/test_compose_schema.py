"""compose_schema: finds the cached wheel, skips broken downloads, and downloads with pip when the cache is empty."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.compose import compose_schema


def _wheel(directory: Path, schema: dict[str, Any]) -> Path:
    path = directory / "docker_compose-1.29.2-py2.py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(compose_schema.SCHEMA_MEMBER, json.dumps(schema))
    return path


def test_reads_the_schema_from_a_cached_wheel(tmp_path: Path) -> None:
    _wheel(tmp_path, {"title": "cached"})
    assert compose_schema.load_compose_spec(tmp_path) == {"title": "cached"}


def test_a_broken_wheel_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "docker_compose-1.29.2-py2.py3-none-any.whl").write_bytes(b"partial download")
    assert compose_schema.find_wheel(tmp_path) is None


def test_downloads_with_pip_when_the_cache_is_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "vendor"
    calls: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        _wheel(Path(command[command.index("--dest") + 1]), {"title": "downloaded"})
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert compose_schema.load_compose_spec(cache) == {"title": "downloaded"}
    (command,) = calls
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in command and command[-1] == "docker-compose==1.29.2"
    assert compose_schema.load_compose_spec(cache) == {"title": "downloaded"}  # cached now
    assert len(calls) == 1


def test_a_failed_download_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "No matching distribution found")

    monkeypatch.setattr(subprocess, "run", failing_run)
    with pytest.raises(RuntimeError, match="No matching distribution"):
        compose_schema.load_compose_spec(tmp_path / "empty")


def test_the_default_cache_is_the_venv_vendor_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COMPOSE_SCHEMA_CACHE", raising=False)
    assert compose_schema.default_cache_dir() == compose_schema.REPO_ROOT / ".venv" / "vendor"
    monkeypatch.setenv("COMPOSE_SCHEMA_CACHE", str(tmp_path))
    assert compose_schema.default_cache_dir() == tmp_path


def test_the_real_schema_is_the_compose_specification() -> None:
    schema = compose_schema.load_compose_spec()
    assert {"services", "volumes", "networks"} <= set(schema["properties"])
    conditions = schema["definitions"]["service"]["properties"]["depends_on"]["oneOf"][1]
    assert "service_healthy" in json.dumps(conditions)
