"""document_history diffs: GNU ``patch`` applied to the old text gives the new text exactly, for any text.

``patch`` cuts lines at ``\\n`` only, so the diff writer must too: ``\\r``, form feed, U+0085, U+2028 and
U+2029 stay inside a line, and a last line without ``\\n`` is marked ``\\ No newline at end of file``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actions.handlers.document_history import content_diff, patch_lines
from tests.actions.conftest import EVENT_HEADERS, Db
from tests.actions.diffs import apply_patch
from tests.actions.payloads import LAUNCH_PLAN, document_event

SEEDED = "Goals\n- Ship the edge gateway\n- Enable API keys\n"

CASES: list[tuple[str, str, str]] = [
    ("line-separator", "one\u2028two\nthree\n", "one\u2028TWO\nthree\n"),
    ("paragraph-separator", "p1\u2029p2\nend\n", "p1\u2029p2 changed\nend\n"),
    ("separators-as-context", "a\u2028b\u2029c\nkeep\n", "a\u2028b\u2029c\nchanged\n"),
    ("form-feed", "page 1\fpage 2\nnext\n", "page 1\fpage 2, edited\nnext\n"),
    ("crlf", "a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n"),
    ("crlf-to-lf", "a\r\nb\r\n", "a\nb\n"),
    ("lone-cr", "a\rb\nc\n", "a\rB\nc\n"),
    ("crlf-no-final-newline", "a\r\nb", "a\r\nb\r\nc"),
    ("no-newline-before", "x\ny", "x\ny\n"),
    ("no-newline-after", "x\ny\n", "x\ny"),
    ("no-newline-both", "x\ny", "x\nz"),
    ("no-newline-unchanged-last-line", "a\nb\nlast", "A\nb\nlast"),
    ("single-line-no-newline", "x", "y"),
    ("empty-to-text", "", "first\nsecond"),
    ("text-to-empty", "gone\n", ""),
    ("text-without-newline-to-empty", "gone", ""),
    ("empty-to-newline", "", "\n"),
    ("newline-to-empty", "\n", ""),
    ("blank-lines", "\n\n\n", "\n\nx\n\n"),
    ("unicode", "ünïcødé\nemoji 😀\nعربي\n", "ünïcødé ✓\nemoji 😀👍\nעברית\n"),
    ("combining-and-nel", "e\u0301\x85next\n", "e\u0301\x85next!\n"),
    ("vertical-tab-and-file-separators", "a\x0bb\x1cc\x1dd\x1ee\n", "a\x0bb\x1cc\x1dX\x1ee\n"),
    ("diff-syntax-as-content", "--- a\n+++ b\n@@ -1 +1 @@\n", "--- a\n+++ c\n@@ -1 +1 @@\n"),
    ("no-newline-marker-as-content", "\\ No newline at end of file\n", "\\ No newline at end of file"),
    ("long", "line\n" * 200, "line\n" * 50 + "inserted\n" + "line\n" * 150),
]


@pytest.mark.parametrize(("before", "after"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_patch_applied_to_the_old_text_gives_the_new_text(before: str, after: str) -> None:
    diff = content_diff(before, after)
    assert diff.startswith("--- a/content\n+++ b/content\n@@ ")
    assert apply_patch(before, diff) == after


def test_a_last_line_without_newline_is_marked_the_way_diff_marks_it() -> None:
    assert content_diff("a\nb", "a\nc") == (
        "--- a/content\n+++ b/content\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"
        "\\ No newline at end of file\n"
    )


@pytest.mark.parametrize("text", ["", "same\n", "no newline", "a\u2028b\r\n\f"])
def test_identical_texts_have_an_empty_diff(text: str) -> None:
    assert content_diff(text, text) == ""


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("", []),
        ("\n", ["\n"]),
        ("a", ["a"]),
        ("a\nb", ["a\n", "b"]),
        ("a\u2028b\u2029c\fd\re\x85f\r\n", ["a\u2028b\u2029c\fd\re\x85f\r\n"]),
    ],
)
def test_lines_are_cut_after_newlines_only(text: str, lines: list[str]) -> None:
    assert patch_lines(text) == lines
    assert "".join(patch_lines(text)) == text


# Texts built mostly from the characters that split lines somewhere (str.splitlines, CRLF, NEL...), so that
# the property explores line structure rather than letters.
_PIECES = st.sampled_from(
    ["a", "b", "\n", "\n", "\r", "\r\n", "\f", "\x0b", "\x85", "\u2028", "\u2029", "é", "😀", " ", "\\", "-", "+"]
)
_TEXTS = st.lists(_PIECES, max_size=16).map("".join)


@settings(max_examples=150, deadline=None)
@given(before=_TEXTS, after=_TEXTS)
def test_any_two_texts_round_trip_through_patch(before: str, after: str) -> None:
    diff = content_diff(before, after)
    if before == after:
        assert diff == ""
    else:
        assert apply_patch(before, diff) == after


@pytest.mark.postgres
@pytest.mark.parametrize(
    "new_content",
    [SEEDED + "a\u2028b\u2029c\fd", SEEDED.replace("\n", "\r\n"), "", "ünïcødé 😀\r\nno newline at the end"],
    ids=["separators-no-final-newline", "crlf", "emptied", "unicode-crlf"],
)
async def test_the_stored_diff_applies_to_the_stored_previous_version(
    client: httpx.AsyncClient, db: Db, new_content: str
) -> None:
    event = document_event(old_content=SEEDED, new_content=new_content, old_version=1, new_version=2)

    response = await client.post("/events/documents_history", json=event, headers=EVENT_HEADERS)

    assert response.status_code == 200 and response.json()["outcome"] == "recorded", response.text
    rows: list[tuple[Any, ...]] = db.rows(
        "SELECT version, diff, content_after FROM document_history WHERE document_id = %s ORDER BY version",
        LAUNCH_PLAN,
    )
    (_, _, previous), (_, diff, stored) = rows
    assert stored == new_content
    assert apply_patch(previous, diff) == new_content
