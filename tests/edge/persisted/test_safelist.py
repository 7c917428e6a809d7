"""The safelist: only operations in the manifest, as written or normalised, may run."""

from __future__ import annotations

import pytest

from edge.graphql.manifest import Manifest, build_from_query_collections
from edge.graphql.persisted import (
    MemoryPersistedQueryStore,
    OperationNotSafelisted,
    PersistedQueries,
    normalised_hash,
)
from tests.edge.persisted.test_manifest import QUERY_COLLECTIONS

MY_ORDERS_AS_WRITTEN = QUERY_COLLECTIONS.read_text().split("query: |\n")[2].split("      - name:")[0]


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return build_from_query_collections(QUERY_COLLECTIONS)


@pytest.fixture
def persisted(manifest: Manifest) -> PersistedQueries:
    return PersistedQueries(MemoryPersistedQueryStore(), manifest=manifest)


def test_the_exact_manifest_body_is_safelisted(persisted: PersistedQueries, manifest: Manifest) -> None:
    for entry in manifest:
        assert persisted.is_safelisted(entry.body)


def test_the_text_as_written_in_hasura_metadata_is_safelisted(persisted: PersistedQueries) -> None:
    assert "query MyOrders" in MY_ORDERS_AS_WRITTEN
    assert persisted.is_safelisted(MY_ORDERS_AS_WRITTEN)


@pytest.mark.parametrize(
    "query",
    [
        "query MyDocuments{documents(order_by:{updated_at:desc}){id title version collaborators{user_id role}}}",
        """
        # the editor's copy, with comments and commas
        query MyDocuments {
          documents(order_by: {updated_at: desc}) {
            id, title, version   # fields
            collaborators { user_id, role }
          }
        }
        """,
    ],
)
def test_whitespace_commas_and_comments_do_not_matter(persisted: PersistedQueries, query: str) -> None:
    assert persisted.is_safelisted(query)
    persisted.check_safelisted(query)


@pytest.mark.parametrize(
    "query",
    [
        "query MyDocuments { documents(order_by: {updated_at: desc}) { id title } }",  # fewer fields
        "query MyDocuments { documents { id title version collaborators { user_id role } } }",  # other arguments
        "query Sneaky { users { email password_hash } }",
        "{ __schema { types { name } } }",
        "not graphql at all {",
        "",
    ],
)
def test_other_operations_are_refused(persisted: PersistedQueries, query: str) -> None:
    assert not persisted.is_safelisted(query)
    assert not persisted.is_safelisted(query)  # cached answer, same result
    with pytest.raises(OperationNotSafelisted) as raised:
        persisted.check_safelisted(query)
    error = raised.value
    assert (error.status, error.code) == (400, "operation-not-safelisted")
    assert "persisted-operations manifest" in error.message


def test_without_a_manifest_nothing_is_safelisted() -> None:
    assert not PersistedQueries(MemoryPersistedQueryStore()).is_safelisted("query { x }")


def test_normalised_hash_ignores_layout_and_refuses_token_floods() -> None:
    assert normalised_hash("{a b}") == normalised_hash("query {\n  a\n  b\n}")
    assert normalised_hash("{a b}") != normalised_hash("{b a}")
    assert normalised_hash("{" + "a " * 20 + "}", max_tokens=10) is None
