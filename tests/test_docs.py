"""The docs describe what exists: every error code and every setting is documented, every link reaches the
repository, and the guide's client recipes are the code the client tests run."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from pathlib import Path

import edge
from edge.errors import EdgeError, all_error_classes
from edge.settings import EdgeSettings
from tests.support.recipes import all_recipes

DOCS = Path(__file__).resolve().parent.parent / "docs"


def import_every_edge_module() -> None:
    for module in pkgutil.walk_packages(edge.__path__, "edge."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


def test_every_error_code_and_status_is_listed_in_docs_errors():
    import_every_edge_module()  # error classes defined anywhere in the package count
    text = (DOCS / "errors.md").read_text()
    for cls in all_error_classes():
        if cls is EdgeError:
            continue
        assert f"| {cls.status} | `{cls.code}` |" in text, f"{cls.__name__} ({cls.status} {cls.code}) is not documented"


def test_every_setting_is_documented_in_docs_configuration():
    text = (DOCS / "configuration.md").read_text()
    for name in EdgeSettings.model_fields:
        assert f"`EDGE_{name.upper()}`" in text, f"EDGE_{name.upper()} is not documented"


# --- links and recipes ---------------------------------------------------------------------------

ROOT = DOCS.parent
MARKDOWN = sorted(
    path
    for pattern in ("*.md", "docs/*.md", "actions/*.md", "bench/*.md", "hasura/*.md")
    for path in ROOT.glob(pattern)
)
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def anchors(markdown: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped (hyphens and underscores kept), spaces to hyphens."""
    found = set()
    for line in FENCE.sub("", markdown).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_every_link_in_the_docs_reaches_a_file_and_heading_in_the_repository():
    assert len(MARKDOWN) >= 10
    for path in MARKDOWN:
        text = path.read_text()
        for target in LINK.findall(FENCE.sub("", text)):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:: outside the repository by intent
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            assert linked.is_relative_to(ROOT), f"{path.relative_to(ROOT)} links outside the repository: {target}"
            assert linked.exists(), f"{path.relative_to(ROOT)}: {target} does not exist"
            if anchor and linked.suffix == ".md":
                assert anchor in anchors(linked.read_text()), f"{path.relative_to(ROOT)}: no heading for {target}"


def test_nothing_in_the_product_cites_documents_users_do_not_have():
    # The team's reference notes are not part of the repository; neither are build machines' paths.
    cited = re.compile(
        r"shared/reference|hasura-contracts\.md|(?:security|performance|style)\.md\W{0,2} ?§"  # the team's notes
        r"|[Rr]eference §|see §"
        r"|/work/|site-packages/"  # paths on a build machine
    )
    checked = 0
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".") and d not in {"node_modules", "build"}]
        for name in files:
            path = Path(directory, name)
            if path.suffix in {".md", ".py", ".yml", ".yaml", ".toml", ".mjs", ".sql"} and path != Path(__file__):
                match = cited.search(path.read_text(errors="replace"))
                assert match is None, f"{path.relative_to(ROOT)} cites {match.group(0)!r}"
                checked += 1
    assert checked > 300


GUIDE = DOCS / "put-the-edge-in-front-of-hasura.md"
GUIDE_RECIPE = re.compile(r"<!-- recipe: ([a-z0-9-]+) -->\n```[a-z]*\n(.*?\n)```", re.S)


def test_the_guides_recipes_are_the_code_the_client_tests_run():
    shown = GUIDE_RECIPE.findall(GUIDE.read_text())
    recipes = all_recipes()
    assert recipes, "tests/clients defines no recipe"
    assert len(shown) == len(dict(shown)), "a recipe is shown twice"
    assert set(dict(shown)) == set(recipes), "every recipe the tests run is in the guide, and only those"
    for name, code in shown:
        assert code == recipes[name][1], f"the guide's {name} differs from its region in tests/clients"
