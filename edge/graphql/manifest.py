"""The persisted-operations manifest, in Apollo's format, and the builders behind ``python -m edge manifest``.

Apollo's persisted query manifest (``@apollo/generate-persisted-query-manifest``, Apollo Kotlin ``pqm``)::

    {"format": "apollo-persisted-query-manifest", "version": 1,
     "operations": [{"id": "<sha256 hex of body>", "name": "ListProducts", "type": "query", "body": "..."}]}

Builders make one entry per operation. Its ``body`` is the operation followed by the fragments it uses,
transitively, sorted by name, printed with graphql-core's ``print_ast`` (so bodies are canonical: the same
operation written with other whitespace or comments gets the same body and id); ``id`` is the SHA-256 hex of
the body's UTF-8. From ``.graphql`` files, fragments are shared across all the files given (as Apollo's
generator does); from Hasura's ``query_collections.yaml`` each query document stands alone. An operation's
``name`` is its GraphQL name (a nameless one takes the collection query's name, or stays None). Entries are
kept sorted by (name, type, id), so ``to_json()`` is stable; identical entries are merged.

Loading (:meth:`Manifest.from_file`) verifies by default that every id is the SHA-256 of its body: a
manifest mapping a known hash to another document would let that document run in its place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    print_ast,
)

__all__ = [
    "FORMAT",
    "GRAPHQL_SUFFIXES",
    "OPERATION_TYPES",
    "VERSION",
    "Manifest",
    "ManifestEntry",
    "ManifestError",
    "build_from_graphql_files",
    "build_from_query_collections",
    "graphql_files",
]

FORMAT = "apollo-persisted-query-manifest"
VERSION = 1
OPERATION_TYPES = frozenset({"query", "mutation", "subscription"})
GRAPHQL_SUFFIXES = frozenset({".graphql", ".gql"})


class ManifestError(ValueError):
    """A manifest or its sources are invalid; the message names the file and the problem."""


@dataclass(frozen=True)
class ManifestEntry:
    """One persisted operation: ``id`` is the SHA-256 hex of ``body``."""

    id: str
    name: str | None
    type: str
    body: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _normalised(body: str) -> str | None:
    try:
        return _sha256(print_ast(parse(body, no_location=True)))
    except (GraphQLError, RecursionError):
        return None


def _sort_key(entry: ManifestEntry) -> tuple[str, str, str]:
    return (entry.name or "", entry.type, entry.id)


class Manifest:
    """Persisted operations by id, with each body's normalised hash (``sha256(print_ast(parse(body)))``)."""

    def __init__(self, entries: Iterable[ManifestEntry]) -> None:
        self.entries: tuple[ManifestEntry, ...] = tuple(sorted(set(entries), key=_sort_key))
        self._by_id: dict[str, ManifestEntry] = {}
        self._by_normalised: dict[str, ManifestEntry] = {}
        for entry in self.entries:
            self._by_id.setdefault(entry.id, entry)
        for entry in self.entries:
            normalised = _normalised(entry.body)
            if normalised is not None:
                self._by_normalised.setdefault(normalised, entry)
        self.ids: frozenset[str] = frozenset(self._by_id)
        self.normalised_ids: frozenset[str] = frozenset(self._by_normalised)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries)

    def contains(self, sha256: str) -> bool:
        """Whether ``sha256`` is an entry's id or the normalised hash of an entry's body."""
        return sha256 in self._by_id or sha256 in self._by_normalised

    def get(self, sha256: str) -> ManifestEntry | None:
        """The entry with this id, else the entry whose body normalises to this hash."""
        return self._by_id.get(sha256) or self._by_normalised.get(sha256)

    def problems(self) -> list[str]:
        """What is wrong with the entries: ids that are not their body's hash, duplicates, bad bodies."""
        found: list[str] = []
        seen: set[str] = set()
        for entry in self.entries:
            label = f"operation {entry.name or '<anonymous>'} ({entry.id[:12]})"
            if entry.id != _sha256(entry.body):
                found.append(f"{label}: id is not the sha256 of its body")
            if entry.id in seen:
                found.append(f"{label}: id is used by more than one operation")
            seen.add(entry.id)
            if entry.type not in OPERATION_TYPES:
                found.append(f"{label}: type {entry.type!r} is not query, mutation or subscription")
            try:
                document = parse(entry.body, no_location=True)
            except (GraphQLError, RecursionError):
                found.append(f"{label}: body is not a valid GraphQL document")
                continue
            operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
            if len(operations) != 1:
                found.append(f"{label}: body must hold exactly one operation, not {len(operations)}")
            elif operations[0].operation.value != entry.type:
                found.append(f"{label}: type {entry.type!r} but the body is a {operations[0].operation.value}")
        return found

    def to_json(self) -> str:
        """Apollo's manifest JSON, entries in (name, type, id) order, two-space indented, newline-terminated."""
        document = {
            "format": FORMAT,
            "version": VERSION,
            "operations": [
                {"id": entry.id, "name": entry.name, "type": entry.type, "body": entry.body} for entry in self.entries
            ],
        }
        return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "manifest", verify: bool = True) -> Manifest:
        """Parse Apollo's manifest JSON; with ``verify`` also refuse it when :meth:`problems` finds any."""
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ManifestError(f"{source}: not valid JSON ({exc})") from None
        manifest = cls(_parse_entries(data, source))
        if verify:
            problems = manifest.problems()
            if problems:
                raise ManifestError(f"{source}: " + "; ".join(problems))
        return manifest

    @classmethod
    def from_file(cls, path: str | Path, *, verify: bool = True) -> Manifest:
        """Load an Apollo manifest file (see :meth:`from_json`)."""
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise ManifestError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        return cls.from_json(text, source=str(path), verify=verify)


def _parse_entries(data: Any, source: str) -> list[ManifestEntry]:
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: must be a JSON object")
    if data.get("format") != FORMAT:
        raise ManifestError(f"{source}: 'format' must be {FORMAT!r}")
    if data.get("version") != VERSION or type(data.get("version")) is not int:
        raise ManifestError(f"{source}: 'version' must be {VERSION}")
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ManifestError(f"{source}: 'operations' must be a list")
    entries: list[ManifestEntry] = []
    for index, item in enumerate(operations):
        where = f"{source}: operations[{index}]"
        if not isinstance(item, dict):
            raise ManifestError(f"{where} must be an object")
        identifier, name, kind, body = item.get("id"), item.get("name"), item.get("type"), item.get("body")
        if not isinstance(identifier, str) or not isinstance(kind, str) or not isinstance(body, str):
            raise ManifestError(f"{where} needs string 'id', 'type' and 'body'")
        if name is not None and not isinstance(name, str):
            raise ManifestError(f"{where}.name must be a string or null")
        entries.append(ManifestEntry(id=identifier, name=name, type=kind, body=body))
    return entries


# --- Builders -------------------------------------------------------------------------------------------


def _spreads(selection_set: SelectionSetNode) -> set[str]:
    """Fragment names spread anywhere in a selection set (iterative)."""
    names: set[str] = set()
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.add(selection.name.value)
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                pending.append(selection.selection_set)
    return names


def _used_fragments(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode], label: str
) -> list[FragmentDefinitionNode]:
    """The fragments ``operation`` needs, transitively, sorted by name; refuses unknown and cyclic spreads."""
    used: dict[str, FragmentDefinitionNode] = {}
    # (fragment name, the spread path that led to it) for cycle messages.
    pending: list[tuple[str, tuple[str, ...]]] = [(name, (name,)) for name in _spreads(operation.selection_set)]
    while pending:
        name, path = pending.pop()
        fragment = fragments.get(name)
        if fragment is None:
            raise ManifestError(f"{label}: fragment {name!r} is used but not defined")
        for target in _spreads(fragment.selection_set):
            if target in path:
                raise ManifestError(f"{label}: fragment spreads form a cycle ({' -> '.join((*path, target))})")
            if target not in used:
                pending.append((target, (*path, target)))
        used[name] = fragment
    return [used[name] for name in sorted(used)]


def _entry(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode], label: str, name: str | None
) -> ManifestEntry:
    document = DocumentNode(definitions=(operation, *_used_fragments(operation, fragments, label)))
    body = print_ast(document)
    own_name = operation.name.value if operation.name is not None else name
    return ManifestEntry(id=_sha256(body), name=own_name, type=operation.operation.value, body=body)


def _parse_source(text: str, label: str) -> DocumentNode:
    try:
        return parse(text, no_location=True)
    except GraphQLError as exc:
        raise ManifestError(f"{label}: {exc.message}") from None
    except RecursionError:
        raise ManifestError(f"{label}: the document is nested too deeply") from None


def _add_fragments(document: DocumentNode, fragments: dict[str, FragmentDefinitionNode], label: str) -> None:
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            name = definition.name.value
            known = fragments.get(name)
            if known is not None and print_ast(known) != print_ast(definition):
                raise ManifestError(f"{label}: fragment {name!r} is defined twice, differently")
            fragments[name] = definition


def _merge(entries: list[ManifestEntry], label: str) -> Manifest:
    by_name: dict[str, ManifestEntry] = {}
    for entry in entries:
        if entry.name is None:
            continue
        known = by_name.setdefault(entry.name, entry)
        if known.body != entry.body:
            raise ManifestError(f"{label}: operation {entry.name!r} is defined twice, differently")
    return Manifest(entries)


def graphql_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the ``.graphql``/``.gql`` files under directories (recursively, sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in GRAPHQL_SUFFIXES and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise ManifestError(f"{path}: no such file or directory")
    return found


def build_from_graphql_files(paths: Iterable[Path]) -> Manifest:
    """One entry per operation in the files (directories are searched for ``.graphql``/``.gql`` files).

    Fragments are shared across all the files; an entry's body holds only the fragments its operation uses.
    Example: ``build_from_graphql_files([Path("src/graphql")]).to_json()``.
    """
    files = graphql_files(paths)
    if not files:
        raise ManifestError("no .graphql files found")
    documents: list[tuple[DocumentNode, str]] = []
    fragments: dict[str, FragmentDefinitionNode] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{path}: cannot be read ({exc})") from None
        document = _parse_source(text, str(path))
        _add_fragments(document, fragments, str(path))
        documents.append((document, str(path)))
    entries = [
        _entry(definition, fragments, label, None)
        for document, label in documents
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
    return _merge(entries, "graphql files")


def build_from_query_collections(path: Path) -> Manifest:
    """One entry per operation in Hasura's ``query_collections.yaml``, every collection included.

    The format is a list of ``{name, definition: {queries: [{name, query}]}}``; each query is its own
    document (its fragments are its own).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        data = []
    if not isinstance(data, list):
        raise ManifestError(f"{path}: must be a list of query collections")
    entries: list[ManifestEntry] = []
    for index, collection in enumerate(data):
        where = f"{path}: [{index}]"
        if not isinstance(collection, dict) or not isinstance(collection.get("name"), str):
            raise ManifestError(f"{where} must be an object with a 'name'")
        definition = collection.get("definition")
        queries = definition.get("queries") if isinstance(definition, dict) else None
        if not isinstance(queries, list):
            raise ManifestError(f"{where} ({collection['name']}) needs definition.queries as a list")
        for item in queries:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("name"), str)
                or not isinstance(item.get("query"), str)
            ):
                raise ManifestError(f"{where} ({collection['name']}): each query needs string 'name' and 'query'")
            label = f"{path}: {collection['name']}/{item['name']}"
            document = _parse_source(item["query"], label)
            fragments: dict[str, FragmentDefinitionNode] = {}
            _add_fragments(document, fragments, label)
            entries.extend(
                _entry(definition, fragments, label, item["name"])
                for definition in document.definitions
                if isinstance(definition, OperationDefinitionNode)
            )
    return _merge(entries, str(path))
