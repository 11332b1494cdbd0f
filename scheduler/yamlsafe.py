"""Reading untrusted YAML into a node tree with positions, refusing anything dangerous.

We compose (never construct) with ruamel.yaml: composing keeps the position of every key and
value, and builds no Python object, so a tag such as `!!python/object` cannot run code. Plain
loaders silently keep the last of two duplicate keys and expand aliases without limit; here
both are the caller's decision (see `mapping_entries`) or refused before expansion (`_scan`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import BaseResolver
from ruamel.yaml.tag import Tag

from scheduler.config import DEFAULT_MAX_SCHEDULE_BYTES, MAX_BYTES_VARIABLE
from scheduler.errors import Problem, ScheduleError

MAX_NODES = 10_000
# Aliases may make a document this many times larger than written (or MAX_NODES, whichever is
# more). A bomb grows exponentially, so it passes any constant ratio within a few aliases;
# schedules that merge a defaults anchor into every job stay under 3x.
MAX_EXPANSION = 10
MAX_DEPTH = 50

TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (TAG + t for t in ("str", "int", "float", "bool", "null"))
TIMESTAMP, SEQ, MAP, MERGE = (TAG + t for t in ("timestamp", "seq", "map", "merge"))
_DEFAULT_STR, _DEFAULT_MAP = BaseResolver.DEFAULT_SCALAR_TAG, BaseResolver.DEFAULT_MAPPING_TAG
ALLOWED_TAGS = frozenset({STR, INT, FLOAT, BOOL, NULL, TIMESTAMP, SEQ, MAP, MERGE})


@dataclass(frozen=True, slots=True)
class Entry:
    """One key of a mapping, after merge keys are applied."""

    key: str
    key_node: Node
    value: Node


def position(node: Node) -> tuple[int, int]:
    """The 1-based (line, column) where a node starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def tag_of(node: Node) -> str:
    # `str(node.tag)` goes through two properties and a format for every node: the
    # validation of a 100,000-job file asks two million times. The fast composer gives
    # every plain string and mapping the resolver's shared default tags.
    tag = node.ctag
    if tag is _DEFAULT_STR:
        return STR
    if tag is _DEFAULT_MAP:
        return MAP
    return "None" if tag is None else str(tag.trval)


def read_document(path: Path, max_bytes: int = DEFAULT_MAX_SCHEDULE_BYTES) -> Node:
    """The root node of a schedule file; raises ScheduleError for a problem of the whole file."""
    return parse_document(str(path), _read(path, max_bytes), max_bytes)


def top_level_value(
    path: Path, key: str, max_bytes: int = DEFAULT_MAX_SCHEDULE_BYTES
) -> Node | None:
    """The value of one top-level key if it is a plain scalar, reading only as far as it.

    For settings needed before the schedule is loaded (the Celery app's timezone): a
    100,000-job file need not be parsed twice. None if the key is not found before a merge
    key (`<<`) or the end, or the document is not a mapping; ScheduleError for a file that
    cannot be read at all. Invalid YAML after the key is the loader's to report.
    """
    text = _read(path, max_bytes).decode("utf-8", errors="replace").removeprefix("\ufeff")
    yaml = YAML(typ="safe", pure=False)
    depth = 0
    nodes = 0  # nodes seen inside the top-level mapping: even ones are keys
    wanted = False
    try:
        for event in yaml.parse(text):
            kind = type(event)
            if kind is MappingStartEvent or kind is SequenceStartEvent:
                if depth == 0 and kind is SequenceStartEvent:
                    return None
                if depth == 1:
                    if wanted:
                        return None  # the value is a collection
                    nodes += 1
                depth += 1
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                depth -= 1
                if depth == 0:
                    return None
            elif depth == 1 and (kind is ScalarEvent or kind is AliasEvent):
                if wanted:
                    if kind is not ScalarEvent:
                        return None
                    tag = yaml.resolver.resolve(ScalarNode, event.value, event.implicit)
                    node: Node = ScalarNode(tag, event.value, event.start_mark, event.end_mark)
                    return node
                if nodes % 2 == 0 and kind is ScalarEvent:
                    if event.value == "<<":
                        return None
                    wanted = event.value == key
                nodes += 1
    except YAMLError:
        return None
    return None


def _read(path: Path, max_bytes: int) -> bytes:
    name = str(path)
    try:
        size = os.stat(path).st_size
        if size > max_bytes:
            # Refused unread: nothing that large is a schedule, and reading it costs memory.
            raise _file_error(name, f"file is {size:,} bytes, {_over(max_bytes)}")
        # Bounded even so: a device or pipe (/dev/zero, /dev/stdin) reports size 0, and a file
        # may grow between stat and read.
        with path.open("rb") as stream:
            return stream.read(max_bytes + 1)
    except FileNotFoundError:
        raise _file_error(name, "file not found") from None
    except IsADirectoryError:
        raise _file_error(name, "is a directory, not a schedule file") from None
    except PermissionError:
        raise _file_error(name, "permission denied") from None


def _over(max_bytes: int) -> str:
    limit = f"{max_bytes >> 20} MiB" if max_bytes % (1 << 20) == 0 else f"{max_bytes:,} bytes"
    hint = "" if max_bytes == DEFAULT_MAX_SCHEDULE_BYTES else f" ({MAX_BYTES_VARIABLE})"
    return f"over the {limit} limit for a schedule{hint}"


def parse_document(name: str, data: bytes, max_bytes: int = DEFAULT_MAX_SCHEDULE_BYTES) -> Node:
    """Compose YAML bytes into a node tree after checking encoding, size and expansion."""
    if len(data) > max_bytes:
        raise _file_error(name, f"file is {_over(max_bytes)}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        # Editors count characters, not bytes: decode the (valid) start of the line.
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        before = data[line_start : exc.start].decode("utf-8")
        col = len(before.removeprefix("\ufeff") if line == 1 else before) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise ScheduleError(
            [Problem(name, line, col, "", f"file is not valid UTF-8 (byte 0x{bad})")]
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise _file_error(name, "file is empty (a schedule needs at least `jobs: {}`)")
    try:
        root = _compose_fast(text)
    except Exception:
        # Anything unusual (an error of any kind, several documents, an undefined alias, a
        # bomb) is read again the slow way, which finds and words every error.
        root = _compose_checked(name, text)
    if root is None:
        raise _file_error(name, "file is empty (a schedule needs at least `jobs: {}`)")
    return root


def _compose_checked(name: str, text: str) -> Node | None:
    """ruamel.yaml's pure-Python parser and composer, after `_scan`, with located errors."""
    yaml = YAML(typ="safe", pure=True)
    try:
        _scan(name, yaml, text)
        root: Node | None = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ScheduleError([Problem(name, line, col, "", f"YAML syntax: {message}")]) from None
    except ReaderError as exc:
        # A character YAML does not allow (NUL, most control characters): `position` is its
        # index in the text.
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character if isinstance(exc.character, int) else 0
        raise ScheduleError(
            [Problem(name, line, col, "", f"YAML syntax: character #x{char:04x} is not allowed")]
        ) from None
    except YAMLError as exc:
        raise _file_error(name, f"YAML syntax: {exc}") from None
    return root


class _Irregular(Exception):
    pass


class _Expansion:
    """The node count of a document with its aliases expanded, kept event by event.

    A billion-laughs file is a few hundred bytes whose expansion has 10^9 nodes; counting
    each anchor's size once and adding it at each alias finds it in microseconds. The size
    of a document as written is bounded by the file size limit; only what aliases add is
    capped. Each method returns what is wrong, if something is.
    """

    def __init__(self) -> None:
        self.count = self.written = 0
        self.sizes: dict[str, int] = {}
        self.open: list[tuple[str | None, int]] = []  # open collections: anchor, count before

    def scalar(self, anchor: str | None) -> None:
        self.count += 1
        self.written += 1
        if anchor:
            self.sizes[anchor] = 1

    def start(self, anchor: str | None) -> str | None:
        self.open.append((anchor, self.count))
        self.count += 1
        self.written += 1
        return f"nested deeper than {MAX_DEPTH} levels" if len(self.open) > MAX_DEPTH else None

    def end(self) -> None:
        anchor, before = self.open.pop()
        if anchor:
            self.sizes[anchor] = self.count - before

    def alias(self, anchor: str) -> str | None:
        if any(a == anchor for a, _ in self.open):
            return f"alias *{anchor} refers to itself (recursive alias)"
        self.count += self.sizes.get(anchor, 1)
        self.written += 1
        limit = max(MAX_NODES, MAX_EXPANSION * self.written)
        if self.count > limit:
            return (
                f"alias *{anchor} expands the document past {limit:,} nodes (alias expansion bomb?)"
            )
        return None


def _compose_fast(text: str) -> Node | None:
    """Compose a valid document in one pass over libyaml's events; raises if it is not one.

    ruamel.yaml's own composer costs ~15 µs a node even over the C parser (it asks for the
    YAML version at every scalar), and the pure parser ~100 µs: a 100,000-job schedule took
    minutes. Here every event is read once, the alias count (`_Expansion`) is kept along the
    way (aliases share their node, so nothing is expanded), and the implicit tag of a plain
    scalar is resolved once per distinct value.
    """
    yaml = YAML(typ="safe", pure=False)  # libyaml's parser (ruamel.yaml.clib)
    events = yaml.parse(text)
    resolver = yaml.resolver
    root: Node | None = None
    documents = 0
    anchors: dict[str, Node] = {}
    # The open collection, whether it is a mapping, and its key waiting for a value; the
    # collections around it are saved on `outer` (no isinstance per node).
    container: Any = None
    in_mapping = False
    waiting: Node | None = None
    outer: list[tuple[Any, bool, Node | None]] = []
    expansion = _Expansion()
    scalar_tags: dict[tuple[str, Any], Any] = {}
    # A plain scalar whose first character starts no implicit type (int, bool, null, ...) is
    # a string: most keys and names, and no need to ask the resolver for each of them.
    typed_starts = frozenset(resolver.versioned_resolver)
    plain_str = None not in typed_starts and not resolver.yaml_path_resolvers
    new_scalar = ScalarNode.__new__
    for event in events:
        kind = type(event)
        if kind is ScalarEvent:
            expansion.scalar(event.anchor)
            value = event.value
            tag = event.ctag
            if tag is None or str(tag) == "!":
                implicit = event.implicit
                if plain_str and value and implicit[0] and value[0] not in typed_starts:
                    tag = _DEFAULT_STR  # shared: tag_of knows it by identity
                else:
                    key = (value, implicit)
                    tag = scalar_tags.get(key)
                    if tag is None:
                        tag = resolver.resolve(ScalarNode, value, implicit)
                        if not isinstance(tag, Tag):
                            tag = Tag(suffix=tag)
                        scalar_tags[key] = tag
            elif not isinstance(tag, Tag):
                tag = Tag(suffix=tag)
            # ScalarNode's own __init__ is two Python calls a node; the same slots, set here.
            node: Node = new_scalar(ScalarNode)
            node.ctag = tag
            node.value = value
            node.start_mark = event.start_mark
            node.end_mark = event.end_mark
            node.style = event.style  # type: ignore[attr-defined]
            node.comment = node.anchor = None
            if event.anchor:
                anchors[event.anchor] = node
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if expansion.start(event.anchor):
                raise _Irregular
            tag = event.ctag
            node_class = MappingNode if kind is MappingStartEvent else SequenceNode
            if tag is None or str(tag) == "!":
                tag = resolver.resolve(node_class, None, event.implicit)
            node = node_class(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if event.anchor:
                anchors[event.anchor] = node
            outer.append((container, in_mapping, waiting))
            container, in_mapping, waiting = node, kind is MappingStartEvent, None
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            expansion.end()
            node = container
            node.end_mark = event.end_mark
            container, in_mapping, waiting = outer.pop()
        elif kind is AliasEvent:
            node = anchors.get(event.anchor)  # type: ignore[assignment]
            if node is None or expansion.alias(event.anchor):
                raise _Irregular
        elif kind is DocumentStartEvent:
            documents += 1
            # A `%YAML 1.1` directive changes which plain scalars are booleans and numbers;
            # the resolver here never saw it, ruamel's own composer does.
            if documents > 1 or event.version is not None:
                raise _Irregular
            continue
        else:
            continue
        if container is None:
            root = node
        elif not in_mapping:
            container.value.append(node)
        elif waiting is None:
            waiting = node
        else:
            container.value.append((waiting, node))
            waiting = None
    return root


def _scan(name: str, yaml: YAML, text: str) -> None:
    """Refuse an alias bomb, a recursive alias or too deep a nesting before composing."""
    expansion = _Expansion()
    for event in yaml.parse(text):
        problem = None
        if isinstance(event, AliasEvent):
            problem = expansion.alias(str(event.anchor))
        elif isinstance(event, ScalarEvent):
            expansion.scalar(str(event.anchor) if event.anchor else None)
        elif isinstance(event, CollectionStartEvent):
            problem = expansion.start(str(event.anchor) if event.anchor else None)
        elif isinstance(event, CollectionEndEvent):
            expansion.end()
        if problem:
            raise _at(name, event, problem)


def _at(name: str, event: object, message: str) -> ScheduleError:
    mark = event.start_mark  # type: ignore[attr-defined]
    return ScheduleError([Problem(name, mark.line + 1, mark.column + 1, "", message)])


def _file_error(name: str, message: str) -> ScheduleError:
    return ScheduleError([Problem(name, 0, 0, "", message)])


def mapping_entries(node: MappingNode) -> Iterator[tuple[Entry, bool]]:
    """Yield each key of a mapping with merge keys applied, flagged True if explicit.

    Explicit keys come first, in file order, duplicates included (the caller reports them);
    merged keys follow, only those not already present, the first merged mapping winning.
    """
    merged: list[MappingNode] = []
    explicit: set[str] = set()
    for key_node, value in node.value:
        if tag_of(key_node) == MERGE:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            merged.extend(s for s in sources if isinstance(s, MappingNode))
            continue
        key = key_node.value if isinstance(key_node, ScalarNode) else ""
        explicit.add(key)
        yield Entry(str(key), key_node, value), True
    seen = set(explicit)
    for source in merged:
        for entry, _ in mapping_entries(source):
            if entry.key not in seen:
                seen.add(entry.key)
                yield entry, False


def bad_merge_sources(node: MappingNode) -> Iterator[Node]:
    """Values of merge keys that are not mappings (or sequences of mappings)."""
    for key_node, value in node.value:
        if tag_of(key_node) != MERGE:
            continue
        sources = value.value if isinstance(value, SequenceNode) else [value]
        yield from (s for s in sources if not isinstance(s, MappingNode))


def disallowed_tag(node: Node) -> str | None:
    """The tag of a node if it is not a plain YAML type (e.g. `!!python/object:os.system`)."""
    tag = tag_of(node)
    if tag in ALLOWED_TAGS:
        return None
    return "!!" + tag.removeprefix(TAG) if tag.startswith(TAG) else tag
