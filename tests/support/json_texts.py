"""Hypothesis strategies for JSON *texts* written token by token: keys may repeat, numbers keep their spelling.

A JSON library would never write ``{"a":1,"a":2}``, ``"\\u0071uery"`` or ``18446744073709551616``; clients
(and attackers) may. Every strategy here yields ``str`` that is valid JSON.
"""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["KEYS", "NUMBERS", "STRINGS", "deep", "json_texts", "object_text", "objects"]

# Keys that collide once unescaped ("query" / "\u0071uery", '"' / "\u0022", "é" / "\u00e9").
KEYS = st.sampled_from(
    ["query", r"\u0071uery", "q", "variables", "a", r"\"", r"a\"b", r"\u0022", "é", r"\u00e9", r"\\", "id"]
)
NUMBERS = st.sampled_from(
    ["0", "-0", "1", "-1", "0.1", "1e2", "1E+2", "1.5", "-2.25e-3", "0.30000000000000004", "5e-324",
     "1.7976931348623157e308", "9007199254740993", "9007199254740993.0", "18446744073709551615",
     "18446744073709551616", "-9223372036854775808", "-9223372036854775809", "1.00000000000000000001",
     "1e-400", "123456789012345678901234567890", "1.0000000000000000"]
)  # fmt: skip
STRINGS = st.sampled_from(
    ['""', '"x"', '"\\""', '"\\\\"', '"\\\\\\""', '"\\u0022"', '"\\ud83d\\ude00"', '"\U0001f600"', '"q\\"\\""',
     '"\\u0000"', '"é\\u00e9"', '"{ a }"', '"\\/\\b\\f\\n\\r\\t"']
)  # fmt: skip
SCALARS = st.one_of(NUMBERS, STRINGS, st.sampled_from(["true", "false", "null"]))


def object_text(members: list[tuple[str, str]]) -> str:
    """``{"k":v,...}`` from (already escaped key, value text) pairs, in order, repeats kept."""
    return "{" + ",".join(f'"{key}":{value}' for key, value in members) + "}"


def objects(
    children: st.SearchStrategy[str], keys: st.SearchStrategy[str] = KEYS, *, distinct_spellings: bool = False
) -> st.SearchStrategy[str]:
    """Objects of up to 4 members. ``distinct_spellings``: no key written twice the same way (two may
    still be equal once unescaped, ``"query"`` and ``"\\u0071uery"``)."""
    unique_by = (lambda member: member[0]) if distinct_spellings else None
    return st.lists(st.tuples(keys, children), max_size=4, unique_by=unique_by).map(object_text)


def json_texts(max_leaves: int = 12, *, distinct_spellings: bool = False) -> st.SearchStrategy[str]:
    """Any JSON value: scalars from the lists above, arrays and objects whose keys may repeat."""

    def containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        arrays = st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        return st.one_of(arrays, objects(children, distinct_spellings=distinct_spellings))

    return st.recursive(SCALARS, containers, max_leaves=max_leaves)


def deep(low: int = 120, high: int = 140) -> st.SearchStrategy[str]:
    """Objects and arrays nested ``low``..``high`` levels (around the edge's bound of 128)."""

    def wrap(depth: int) -> str:
        text = "1"
        for level in range(depth):
            text = f'{{"k":{text}}}' if level % 2 else f"[{text}]"
        return text

    return st.integers(low, high).map(wrap)
