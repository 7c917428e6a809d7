"""Shared objects for the analysis and cost tests: the double's Hasura-shaped schema, the repository's real
permission limits, and an analyser with its own cache (so tests never share cache state with the process)."""

from __future__ import annotations

import pytest

from edge.graphql.analysis import Analyser, make_analyser
from edge.graphql.cost import CostModel
from edge.graphql.permissions import PermissionLimits
from edge.graphql.schema_info import SchemaInfo
from tests.hasura_double.schema import DEMO_SDL
from tests.support.hasura_metadata import METADATA_DIR


@pytest.fixture(scope="session")
def schema() -> SchemaInfo:
    return SchemaInfo.from_sdl(DEMO_SDL)


@pytest.fixture(scope="session")
def permissions() -> PermissionLimits:
    return PermissionLimits.from_metadata_dir(METADATA_DIR)


@pytest.fixture(scope="session")
def model(schema: SchemaInfo, permissions: PermissionLimits) -> CostModel:
    return CostModel(schema, permissions)


@pytest.fixture(scope="session")
def fallback_model(permissions: PermissionLimits) -> CostModel:
    return CostModel(None, permissions)


@pytest.fixture
def analyse() -> Analyser:
    return make_analyser(maxsize=64)
