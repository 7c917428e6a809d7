"""examples/: tokens from mint_token.py are accepted by an edge configured exactly as docker-compose.yml
configures it, every script compiles and answers --help, and every GraphQL document in the scripts only uses
root fields, columns, relationships and action fields that hasura/metadata grants the role that sends it.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import py_compile
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from graphql import (
    FieldNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    build_schema,
    parse,
)

from edge.app import create_app
from edge.auth.jwt_config import parse_jwt_secret
from edge.auth.jwt_verifier import JWTVerifier
from edge.settings import EdgeSettings
from edge.ws.devcert import write_if_missing
from tests.compose import support
from tests.edge.conftest import start_edge_app
from tests.hasura_double import HasuraDouble
from tests.support.hasura_metadata import TableRef, iter_tables, load_actions_sdl, load_metadata
from tests.support.servers import serving

EXAMPLES = support.REPO_ROOT / "examples"
SCRIPTS = sorted(path for path in EXAMPLES.glob("*.py") if not path.name.startswith("_"))
EXPECTED_SCRIPTS = {
    "mint_token",
    "browse_products",
    "pay_order",
    "edit_document",
    "subscribe_inventory",
    "rest_endpoints",
}
MIGRATIONS = support.REPO_ROOT / "migrations" / "default"
USERS = {
    "alice": "11111111-1111-4111-8111-111111111111",
    "bob": "22222222-2222-4222-8222-222222222222",
    "carol": "33333333-3333-4333-8333-333333333333",
    "dave": "44444444-4444-4444-8444-444444444444",
}


def _load_mint_token() -> ModuleType:
    spec = importlib.util.spec_from_file_location("examples_mint_token", EXAMPLES / "mint_token.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mint_token() -> ModuleType:
    return _load_mint_token()


@pytest.fixture(scope="module")
def edge_env() -> dict[str, str]:
    return support.environment(support.load()["services"]["edge"])


def _no_env_file(tmp_path: Path) -> Path:
    return tmp_path / "absent.env"


# --- tokens ------------------------------------------------------------------------------------------------


def test_the_demo_users_are_the_seeded_ones(mint_token: ModuleType) -> None:
    assert mint_token.USERS == USERS
    readme = (support.REPO_ROOT / "hasura" / "README.md").read_text(encoding="utf-8")
    seeds = "\n".join(path.read_text(encoding="utf-8") for path in (support.REPO_ROOT / "seeds").rglob("*.sql"))
    for name, user_id in USERS.items():
        assert f"{name} `{user_id}`" in readme
        assert user_id in seeds


def test_the_default_key_is_the_compose_default(mint_token: ModuleType, edge_env: dict[str, str]) -> None:
    config = json.loads(edge_env["EDGE_JWT_SECRET"])
    assert config == {"type": "HS256", "key": mint_token.DEFAULT_HS256_KEY}
    assert len(mint_token.DEFAULT_HS256_KEY) >= 32
    assert support.read_env_file()["JWT_HS256_KEY"] == mint_token.DEFAULT_HS256_KEY


@pytest.mark.parametrize("user", sorted(USERS))
async def test_tokens_verify_against_the_compose_jwt_config(
    mint_token: ModuleType, edge_env: dict[str, str], user: str, tmp_path: Path
) -> None:
    token = mint_token.mint_token(user, environ={}, dotenv=_no_env_file(tmp_path))
    verifier = JWTVerifier(parse_jwt_secret(edge_env["EDGE_JWT_SECRET"]))
    try:
        verified = await verifier.verify(token)
    finally:
        await verifier.aclose()
    assert verified.claims.default_role == "user"
    assert verified.claims.allowed_roles == ("user",) or list(verified.claims.allowed_roles) == ["user"]
    assert verified.claims.session_variables["x-hasura-user-id"] == USERS[user]


@dataclass
class ComposeEdge:
    """An edge built from the compose environment, serving https in front of a Hasura double."""

    url: str  # https://127.0.0.1:<port>/graphql
    ca_file: Path
    double: HasuraDouble


@pytest.fixture
def compose_edge(edge_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ComposeEdge]:
    """The edge as docker-compose.yml configures it: only Hasura's URL and the Redis/Postgres URLs changed, since
    those hosts exist only on the compose network, the certificate files moved from /certs to a temporary
    directory, and the metadata directory read from its bind mount's source."""
    for name in list(os.environ):
        if name.startswith("EDGE_"):
            monkeypatch.delenv(name)
    for name, value in edge_env.items():
        monkeypatch.setenv(name, value)
    for name in ("EDGE_REDIS_URL", "EDGE_DATABASE_URL"):
        monkeypatch.delenv(name)
    certs = tmp_path / "certs"
    write_if_missing(certs, ["localhost", "127.0.0.1"])  # what the compose edge-certs service writes
    for name in ("EDGE_TLS_CERT_FILE", "EDGE_TLS_KEY_FILE"):
        monkeypatch.setenv(name, str(certs / Path(edge_env[name]).name))
    mounts = {
        target: source for source, target, *_ in (v.split(":") for v in support.load()["services"]["edge"]["volumes"])
    }
    metadata = support.REPO_ROOT / mounts[edge_env["EDGE_HASURA_METADATA_DIR"]]  # the bind mount's source
    monkeypatch.setenv("EDGE_HASURA_METADATA_DIR", str(metadata))
    double = HasuraDouble(admin_secret=edge_env["EDGE_HASURA_ADMIN_SECRET"])
    with serving(double.app) as hasura:
        monkeypatch.setenv("EDGE_HASURA_URL", hasura.url)
        monkeypatch.setenv("EDGE_LOG_LEVEL", "warning")
        settings = EdgeSettings()
        assert settings.tls_cert_file and settings.tls_key_file
        edge = start_edge_app(create_app(settings), settings)  # https, as python -m edge serves it
        try:
            yield ComposeEdge(f"https://127.0.0.1:{edge.port}/graphql", certs / "ca.pem", double)
        finally:
            edge.stop()


def test_the_compose_edge_accepts_the_tokens_end_to_end(
    mint_token: ModuleType, compose_edge: ComposeEdge, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A demo token's identity reaches Hasura through the compose edge, which serves https with a development
    certificate."""
    url, double = compose_edge.url, compose_edge.double
    client = httpx.Client(verify=ssl.create_default_context(cafile=str(compose_edge.ca_file)))
    request.addfinalizer(client.close)
    query = {"query": "{ products(limit: 1) { id } }"}
    for user, user_id in USERS.items():
        token = mint_token.mint_token(user, environ={}, dotenv=_no_env_file(tmp_path))
        response = client.post(url, json=query, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert "errors" not in response.json()
        session = double.last().session
        assert session is not None
        assert session["x-hasura-role"] == "user"
        assert session["x-hasura-user-id"] == user_id
    anonymous = client.post(url, json=query)
    assert anonymous.status_code == 200, anonymous.text
    assert double.last().session == {"x-hasura-role": "anonymous"}
    forged = mint_token.mint_token("alice", environ={"JWT_HS256_KEY": "x" * 40}, dotenv=_no_env_file(tmp_path))
    refused = client.post(url, json=query, headers={"Authorization": f"Bearer {forged}"})
    assert (refused.status_code, refused.json()["errors"][0]["extensions"]["code"]) == (200, "invalid-jwt")
    precise = client.post(
        url,
        json=query,
        headers={"Authorization": f"Bearer {forged}", "Accept": "application/graphql-response+json"},
    )
    assert (precise.status_code, precise.json()["errors"][0]["extensions"]["code"]) == (401, "invalid-jwt")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.post(url, json=query)  # the system's CAs do not know the development CA


def test_the_rest_example_calls_the_demo_endpoints_through_the_compose_edge(compose_edge: ComposeEdge) -> None:
    result = _run(
        "examples/rest_endpoints.py", "--url", compose_edge.url, "--ca", str(compose_edge.ca_file), "--limit", "2"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in ("GET /api/rest/products?limit=2", "GET /api/rest/orders"):
        assert line in result.stdout
    rest = [record for record in compose_edge.double.requests if record.path.startswith("/api/rest/")]
    assert [record.path for record in rest][:1] == ["/api/rest/products"]
    assert "/api/rest/orders" in [record.path for record in rest]
    assert {record.session["x-hasura-user-id"] for record in rest if record.session} == {USERS["alice"]}


def test_the_subscription_example_receives_a_result_through_the_compose_edge(compose_edge: ComposeEdge) -> None:
    url = compose_edge.url.replace("https://", "wss://")
    result = _run("examples/subscribe_inventory.py", "--url", url, "--ca", str(compose_edge.ca_file), "--updates", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "received 1 update(s)" in result.stdout
    (connection,) = compose_edge.double.ws.connections
    assert [operation["id"] for operation in connection.operations] == ["1"]


def test_key_lookup_order(mint_token: ModuleType, tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    absent = _no_env_file(tmp_path)
    config = json.dumps({"type": "HS512", "key": "k" * 64})
    assert mint_token.signing_key({"EDGE_JWT_SECRET": config, "JWT_HS256_KEY": "e" * 32}, dotenv) == ("k" * 64, "HS512")
    dotenv.write_text("# comment\nexport JWT_HS256_KEY='d" + "d" * 31 + "'\nOTHER=1\n", encoding="utf-8")
    assert mint_token.signing_key({"JWT_HS256_KEY": "e" * 32}, dotenv) == ("e" * 32, "HS256")
    assert mint_token.signing_key({}, dotenv) == ("d" * 32, "HS256")
    assert mint_token.signing_key({}, absent) == (mint_token.DEFAULT_HS256_KEY, "HS256")
    with pytest.raises(SystemExit):
        mint_token.signing_key({"EDGE_JWT_SECRET": json.dumps({"type": "RS256", "jwk_url": "https://x"})}, absent)


def test_claims_shape(mint_token: ModuleType) -> None:
    claims = mint_token.claims_for("bob", role="user", ttl=600, now=1_000_000)
    assert claims["exp"] - claims["iat"] == 600
    assert claims["sub"] == USERS["bob"]
    assert claims["https://hasura.io/jwt/claims"] == {
        "x-hasura-allowed-roles": ["user"],
        "x-hasura-default-role": "user",
        "x-hasura-user-id": USERS["bob"],
    }


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("EDGE_JWT_SECRET", "JWT_HS256_KEY")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=support.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        check=False,
    )


async def test_the_cli_prints_only_a_token(edge_env: dict[str, str]) -> None:
    result = _run("examples/mint_token.py", "carol", "--ttl", "120", env={"JWT_HS256_KEY": "c" * 40})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].count(".") == 2
    verifier = JWTVerifier(parse_jwt_secret(json.dumps({"type": "HS256", "key": "c" * 40})))
    try:
        verified = await verifier.verify(lines[0])
    finally:
        await verifier.aclose()
    assert verified.claims.session_variables["x-hasura-user-id"] == USERS["carol"]
    assert 0 < verified.expires_at - time.time() <= 121
    assert _run("examples/mint_token.py", "mallory").returncode == 2


# --- every script ------------------------------------------------------------------------------------------


def test_the_expected_scripts_exist() -> None:
    assert {path.stem for path in SCRIPTS} == EXPECTED_SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_script_compiles_documents_its_command_and_answers_help(script: Path, tmp_path: Path) -> None:
    py_compile.compile(str(script), cfile=str(tmp_path / "out.pyc"), doraise=True)
    docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    assert docstring and f"python examples/{script.name}" in docstring
    result = _run(str(script.relative_to(support.REPO_ROOT)), "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_client_scripts_default_to_the_edge(edge_env: dict[str, str]) -> None:
    text = (EXAMPLES / "_client.py").read_text(encoding="utf-8")
    assert f'"https://localhost:{edge_env["EDGE_PORT"]}/graphql"' in text  # the compose edge serves TLS
    for script in SCRIPTS:
        source = script.read_text(encoding="utf-8")
        assert ":8080" not in source and "v1/graphql" not in source, f"{script.name} bypasses the edge"
        lowered = source.lower()
        for marker in ("admin-secret", "admin_secret", "x-hasura-admin"):
            assert marker not in lowered, f"{script.name}: the examples act as end users, never with {marker}"


def _import_client(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    for name in ("_client", "mint_token"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    spec = importlib.util.spec_from_file_location("_client", EXAMPLES / "_client.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_default_ca_is_where_the_compose_stack_writes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    services = support.load()["services"]
    source, target = services["edge-certs"]["volumes"][0].split(":")[:2]
    assert services["edge-certs"]["command"][3] == target
    client = _import_client(monkeypatch)
    assert (support.REPO_ROOT / source / "ca.pem").resolve() == client.DEV_CA_FILE
    monkeypatch.setenv("EDGE_CA_FILE", "/somewhere/ca.pem")
    assert client.default_ca_file() == "/somewhere/ca.pem"
    monkeypatch.delenv("EDGE_CA_FILE")
    expected = str(client.DEV_CA_FILE) if client.DEV_CA_FILE.is_file() else None
    assert client.default_ca_file() == expected


def test_the_scripts_offer_no_way_to_skip_certificate_checks() -> None:
    for script in [*SCRIPTS, EXAMPLES / "_client.py"]:
        source = script.read_text(encoding="utf-8")
        for marker in ("--insecure", "verify=False", "CERT_NONE", "check_hostname = False", "_create_unverified"):
            assert marker not in source, f"{script.name}: {marker}"


# --- GraphQL documents against the metadata ----------------------------------------------------------------


def _foreign_keys() -> dict[tuple[str, str], str]:
    """(table, column) -> referenced table, from the migrations' CREATE TABLE blocks."""
    references: dict[tuple[str, str], str] = {}
    for up in sorted(MIGRATIONS.glob("*/up.sql")):
        table = None
        for line in up.read_text(encoding="utf-8").splitlines():
            created = re.match(r"CREATE TABLE public\.(\w+) \(", line)
            if created:
                table = created.group(1)
                continue
            if line.startswith(")"):
                table = None
                continue
            ref = re.match(r"\s+(\w+) \w+.*REFERENCES public\.(\w+) \(id\)", line)
            if table and ref:
                references[(table, ref.group(1))] = ref.group(2)
    return references


@dataclass
class TableGrant:
    select: dict[str, set[str]] = field(default_factory=dict)  # role -> columns
    aggregations: set[str] = field(default_factory=set)  # roles
    update: dict[str, set[str]] = field(default_factory=dict)  # role -> columns
    relationships: dict[str, str] = field(default_factory=dict)  # name -> target table


def _grants() -> dict[str, TableGrant]:
    references = _foreign_keys()
    grants: dict[str, TableGrant] = {}
    for table, entry in iter_tables(load_metadata()):
        grant = grants.setdefault(table.name, TableGrant())
        for permission in entry.get("select_permissions") or []:
            grant.select[permission["role"]] = set(permission["permission"]["columns"])
            if permission["permission"].get("allow_aggregations"):
                grant.aggregations.add(permission["role"])
        for permission in entry.get("update_permissions") or []:
            grant.update[permission["role"]] = set(permission["permission"]["columns"])
        for relationship in entry.get("object_relationships") or []:
            column = relationship["using"]["foreign_key_constraint_on"]
            grant.relationships[relationship["name"]] = references[(table.name, column)]
        for relationship in entry.get("array_relationships") or []:
            target = relationship["using"]["foreign_key_constraint_on"]["table"]
            grant.relationships[relationship["name"]] = TableRef.from_metadata(target).name
    return grants


class Checker:
    def __init__(self, role: str) -> None:
        self.role = role
        self.grants = _grants()
        self.actions = {action["name"]: action for action in load_metadata().get("actions") or []}
        self.action_types = build_schema(
            "scalar uuid\nscalar numeric\nscalar timestamptz\n" + load_actions_sdl()
        ).type_map
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def readable(self, table: str) -> set[str] | None:
        grant = self.grants.get(table)
        return None if grant is None else grant.select.get(self.role)

    def check_operation(self, operation: OperationDefinitionNode) -> None:
        assert operation.selection_set
        for node in operation.selection_set.selections or ():
            assert isinstance(node, FieldNode)
            name = node.name.value
            if operation.operation.value == "mutation":
                self.check_mutation_field(node)
            elif name.endswith("_by_pk"):
                self.check_table_field(name.removesuffix("_by_pk"), node, name)
            elif name.endswith("_aggregate"):
                table = name.removesuffix("_aggregate")
                if self.role not in self.grants.get(table, TableGrant()).aggregations:
                    self.fail(name, f"role {self.role} may not aggregate {table}")
            else:
                self.check_table_field(name, node, name)

    def check_mutation_field(self, node: FieldNode) -> None:
        name = node.name.value
        if name in self.actions:
            roles = {permission["role"] for permission in self.actions[name].get("permissions") or []}
            if self.role not in roles:
                self.fail(name, f"role {self.role} may not call the action")
            output = re.sub(r"[!\[\]]", "", self.actions_output(name))
            self.check_object_type(output, node.selection_set, name)
            return
        match = re.fullmatch(r"update_(\w+?)(_by_pk)?", name)
        if not match:
            self.fail(name, "unsupported mutation root field in this checker")
            return
        table = match.group(1)
        allowed = self.grants.get(table, TableGrant()).update.get(self.role)
        if allowed is None:
            self.fail(name, f"role {self.role} has no update permission on {table}")
            return
        for argument in node.arguments or ():
            if argument.name.value == "_set" and isinstance(argument.value, ObjectValueNode):
                for assignment in argument.value.fields or ():
                    if assignment.name.value not in allowed:
                        self.fail(name, f"_set.{assignment.name.value} is not an updatable column for {self.role}")
        selection = node.selection_set
        if match.group(2):
            self.check_selection(table, selection, name)
        elif selection:
            for child in selection.selections or ():
                if isinstance(child, FieldNode) and child.name.value == "returning":
                    self.check_selection(table, child.selection_set, f"{name}.returning")

    def actions_output(self, name: str) -> str:
        mutation = self.action_types["Mutation"]
        return str(mutation.fields[name].type)  # type: ignore[attr-defined]

    def check_object_type(self, type_name: str, selection: SelectionSetNode | None, where: str) -> None:
        fields = self.action_types[type_name].fields  # type: ignore[attr-defined]
        for child in (selection.selections or ()) if selection else ():
            assert isinstance(child, FieldNode)
            if child.name.value != "__typename" and child.name.value not in fields:
                self.fail(where, f"{type_name} has no field {child.name.value}")

    def check_table_field(self, table: str, node: FieldNode, where: str) -> None:
        if self.readable(table) is None:
            self.fail(where, f"role {self.role} cannot select from {table}")
            return
        for argument in node.arguments or ():
            if argument.name.value in ("where", "order_by"):
                self.check_expression(table, argument.value, f"{where}({argument.name.value})")
        self.check_selection(table, node.selection_set, where)

    def check_selection(self, table: str, selection: SelectionSetNode | None, where: str) -> None:
        columns = self.readable(table) or set()
        relationships = self.grants[table].relationships
        for child in (selection.selections or ()) if selection else ():
            assert isinstance(child, FieldNode)
            name = child.name.value
            if name == "__typename":
                continue
            if name in relationships:
                self.check_table_field(relationships[name], child, f"{where}.{name}")
            elif name in columns:
                if child.selection_set:
                    self.fail(f"{where}.{name}", "a column has no selection set")
            else:
                self.fail(f"{where}.{name}", f"not a column {self.role} may read, nor a relationship of {table}")

    def check_expression(self, table: str, value: ValueNode, where: str) -> None:
        if isinstance(value, ListValueNode):
            for item in value.values or ():
                self.check_expression(table, item, where)
            return
        if not isinstance(value, ObjectValueNode):
            return  # a variable: its content is not in the document
        relationships = self.grants[table].relationships
        for entry in value.fields or ():
            key = entry.name.value
            if key in ("_and", "_or", "_not"):
                self.check_expression(table, entry.value, where)
            elif key in relationships:
                target = relationships[key]
                if self.readable(target) is None:
                    self.fail(where, f"role {self.role} cannot read {target} through {key}")
                else:
                    self.check_expression(target, entry.value, f"{where}.{key}")
            elif key not in (self.readable(table) or set()):
                self.fail(where, f"{key} is not a column {self.role} may filter or sort {table} by")


def _documents() -> Iterator[tuple[str, str, str]]:
    """(script, constant, document) for every module-level string constant that is a GraphQL operation."""
    for script in SCRIPTS:
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and re.match(r"\s*(query|mutation|subscription)\b", node.value.value)
            ):
                for target in node.targets:
                    assert isinstance(target, ast.Name)
                    yield script.stem, target.id, node.value.value


DOCUMENTS = list(_documents())


def test_the_flows_have_their_documents() -> None:
    found = {(script, name) for script, name, _ in DOCUMENTS}
    assert {
        ("browse_products", "ANONYMOUS_QUERY"),
        ("browse_products", "USER_QUERY"),
        ("pay_order", "PROCESS_PAYMENT"),
        ("edit_document", "EDIT_DOCUMENT"),
        ("edit_document", "HISTORY"),
        ("subscribe_inventory", "SUBSCRIPTION"),
    } <= found


@pytest.mark.parametrize(("script", "name", "document"), DOCUMENTS, ids=[f"{s}.{n}" for s, n, _ in DOCUMENTS])
def test_document_uses_what_the_metadata_grants(script: str, name: str, document: str) -> None:
    role = "anonymous" if name.startswith("ANONYMOUS") else "user"
    checker = Checker(role)
    parsed = parse(document)
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1 and operations[0].name, "one named operation per document"
    checker.check_operation(operations[0])
    assert not checker.problems, "\n".join(checker.problems)


def test_the_checker_catches_mistakes() -> None:
    cases = {
        "user": [
            "query { products { id stock } }",  # no such column
            "query { documents { body } }",  # the column is `content`
            "query { payment_idempotency { user_id } }",  # no select permission
            "mutation { update_documents_by_pk(pk_columns: {id: 1}, _set: {owner_id: 1}) { id } }",
            "mutation { processPayment(input: {}) { paymentId total } }",
            "query { inventory(where: {secret: {_eq: 1}}) { quantity } }",
        ],
        "anonymous": [
            "query { inventory { low_stock_threshold } }",  # user-only column
            "query { orders { id } }",  # user-only table
            "query { products_aggregate { aggregate { count } } }",
        ],
    }
    for role, documents in cases.items():
        for document in documents:
            checker = Checker(role)
            operation = parse(document).definitions[0]
            assert isinstance(operation, OperationDefinitionNode)
            checker.check_operation(operation)
            assert checker.problems, f"{role}: {document} passed"


def test_the_subscription_example_prints_the_edges_refusal(compose_edge: ComposeEdge) -> None:
    url = compose_edge.url.replace("https://", "wss://").replace("/graphql", "/not-graphql")
    result = _run("examples/subscribe_inventory.py", "--url", url, "--ca", str(compose_edge.ca_file), "--updates", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    # No WebSocket route on that path: the 404 not-found an unknown path gets over HTTP, printed with its body.
    assert "the edge refused the WebSocket upgrade (HTTP 404)" in result.stderr
    assert '"code":"not-found"' in result.stderr
    assert compose_edge.double.ws.connections == []
