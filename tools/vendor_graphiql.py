"""Re-vendor the GraphiQL page's third-party files into edge/graphiql/assets/ from the npm registry.

The edge serves GraphiQL from its own package (``EDGE_GRAPHIQL``; ``docs/graphiql.md``): no CDN, so the
built files are committed. This script fetches them again, with ``npm pack`` (the npm registry through
npm's own client and configuration), at the exact versions below, and refuses anything whose sha256 is
not the one pinned here: first the package tarball, then every file taken from it. It writes the files
and ``THIRD-PARTY-NOTICES.txt`` (each package's licence, as shipped in its tarball).

    python tools/vendor_graphiql.py            # fetch, check, write (the committed files come out again)
    python tools/vendor_graphiql.py --check    # fetch and check only; exit 1 if the committed files differ

Moving to another version: change the version, run with ``--print-hashes`` to see the new tarball's and
files' sha256 (read them against the registry's ``dist.integrity`` before pinning), pin them, run again,
and test the page (tests/edge/test_graphiql_browser.py).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS = REPO_ROOT / "edge" / "graphiql" / "assets"
NOTICES = "THIRD-PARTY-NOTICES.txt"


@dataclass(frozen=True)
class Vendored:
    package: str
    version: str
    tarball_sha256: str
    files: dict[str, tuple[str, str]]
    """Path inside the tarball -> (file name in assets/, its sha256)."""
    licence: str
    """Path of the licence file inside the tarball."""


PACKAGES = (
    Vendored(
        "graphiql",
        "3.8.3",
        "1cadb1c2ca0dc51ea71fb4bb2680e6185e83fe400c9a62ca5fb9dfb922472bbd",
        {
            "package/graphiql.min.js": (
                "graphiql.min.js",
                "22faab94067b695e5f7959619fbe686ebcc8955002a0c97d986bcbba4ad4bc2c",
            ),
            "package/graphiql.min.css": (
                "graphiql.min.css",
                "b1868247f8e0502cd869e581f5f3cb55b334862e7f51b1d6cbace11059b9adc2",
            ),
        },
        "package/LICENSE",
    ),
    Vendored(
        "react",
        "18.3.1",
        "8d9bed01a672e7eaf387942d781ad47c6a43089a30a0306060f9fd5ac7870347",
        {
            "package/umd/react.production.min.js": (
                "react.production.min.js",
                "d949f1c3687aedadcedac85261865f29b17cd273997e7f6b2bfc53b2f9d4c4dd",
            ),
        },
        "package/LICENSE",
    ),
    Vendored(
        "react-dom",
        "18.3.1",
        "031d4427a99f2f3f6cac18bbbf308594a67e4f47d10f4896fdec446505b040e0",
        {
            "package/umd/react-dom.production.min.js": (
                "react-dom.production.min.js",
                "35f4f974f4b2bcd44da73963347f8952e341f83909e4498227d4e26b98f66f0d",
            ),
        },
        "package/LICENSE",
    ),
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def npm_pack(package: str, version: str, into: Path) -> bytes:
    """The registry's tarball of ``package@version`` (``npm pack`` downloads it without installing)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed (it fetches the packages from the npm registry)")
    completed = subprocess.run(
        [npm, "pack", f"{package}@{version}", "--json", "--pack-destination", str(into)],
        cwd=into,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"npm pack {package}@{version} failed:\n{completed.stderr.strip()}")
    tarballs = list(into.glob(f"{package}-{version}.tgz"))
    if len(tarballs) != 1:
        raise SystemExit(f"npm pack {package}@{version} left no {package}-{version}.tgz")
    return tarballs[0].read_bytes()


def extract(tarball: bytes, member: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        found = archive.extractfile(member)
        if found is None:
            raise SystemExit(f"{member} is not a file in the tarball")
        return found.read()


def fetch(print_hashes: bool) -> tuple[dict[str, bytes], list[str]]:
    """Every vendored file by its name in assets/, and the problems found (empty when all hashes match)."""
    files: dict[str, bytes] = {}
    problems: list[str] = []
    notices = [
        "Third-party files of the edge's GraphiQL page, as published on the npm registry.\n"
        "Written by tools/vendor_graphiql.py; each package's licence follows, as shipped in its tarball.\n"
    ]
    with tempfile.TemporaryDirectory() as work:
        for vendored in PACKAGES:
            name = f"{vendored.package}@{vendored.version}"
            tarball = npm_pack(vendored.package, vendored.version, Path(work))
            if print_hashes:
                print(f"{name}: tarball {sha256(tarball)}")  # noqa: T201
            elif sha256(tarball) != vendored.tarball_sha256:
                problems.append(f"{name}: the tarball's sha256 is {sha256(tarball)}, not the pinned one")
                continue
            for member, (target, digest) in vendored.files.items():
                data = extract(tarball, member)
                if print_hashes:
                    print(f"{name}: {member} -> {target} {sha256(data)}")  # noqa: T201
                elif sha256(data) != digest:
                    problems.append(f"{name}: {member} has sha256 {sha256(data)}, not the pinned one")
                files[target] = data
            licence = extract(tarball, vendored.licence).decode("utf-8").strip()
            shipped = ", ".join(target for target, _ in vendored.files.values())
            notices.append(f"\n{'=' * 78}\n{name} ({shipped})\n{'=' * 78}\n\n{licence}\n")
    files[NOTICES] = "".join(notices).encode("utf-8")
    return files, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    parser.add_argument(
        "--print-hashes", action="store_true", help="print the sha256 of what npm serves, write nothing"
    )
    args = parser.parse_args(argv)
    files, problems = fetch(args.print_hashes)
    if args.print_hashes:
        return 0
    if problems:
        print("\n".join(problems), file=sys.stderr)  # noqa: T201
        return 1
    if args.check:
        differing = [
            name for name, data in files.items() if not (ASSETS / name).exists() or (ASSETS / name).read_bytes() != data
        ]
        if differing:
            print(f"differ from the registry's: {', '.join(sorted(differing))}", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    ASSETS.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (ASSETS / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
