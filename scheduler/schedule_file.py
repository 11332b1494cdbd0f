"""schedules.yaml -> ScheduleFile: every check of SPEC §3, every problem with its position.

Validation is written against the YAML node tree rather than with a model library because
each error needs the file position of the exact key or value (and of the character inside
a cron expression), cross-field rules name a specific field, and problems from `defaults`
must be reported once, where they are written, not once per job that inherits them.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scheduler.config import DEFAULT_MAX_SCHEDULE_BYTES
from scheduler.errors import Problem, ScheduleError
from scheduler.fieldparsers import (
    Invalid,
    Parser,
    choice_parser,
    cron_parser,
    describe_node,
    duration_parser,
    int_parser,
    parse_args,
    parse_bool,
    parse_datetime,
    parse_kwargs,
    parse_str,
    parse_timezone,
    parse_url,
    suggest,
    task_parser,
)
from scheduler.spec import (
    DEFAULT_NOTIFY_ON,
    NOTIFY_STATUSES,
    JobSpec,
    Misfire,
    NotifySpec,
    Overlap,
    RetryPolicy,
    ScheduleFile,
)
from scheduler.timeengine.ticks import (
    EPOCH,
    AtSchedule,
    CronSchedule,
    EverySchedule,
    Schedule,
    resolve_wall_time,
)
from scheduler.yamlsafe import (
    ALLOWED_TAGS,
    MERGE,
    bad_merge_sources,
    disallowed_tag,
    mapping_entries,
    position,
    read_document,
    tag_of,
    top_level_value,
)

SCHEDULE_KINDS = ("cron", "every", "at")
_JOB_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")
_TOP_KEYS = ("timezone", "defaults", "jobs", "history")


@dataclass(frozen=True, slots=True)
class Nested:
    """The parser of a small mapping (retry, notify, history): known keys, each parsed."""

    fields: Mapping[str, Parser]


def _parse_statuses(node: Node) -> tuple[str, ...]:
    if not isinstance(node, SequenceNode):
        raise Invalid(f"expected a list of run statuses, got {describe_node(node)}")
    for item in node.value:
        if not isinstance(item, ScalarNode) or item.value not in NOTIFY_STATUSES:
            text = str(item.value) if isinstance(item, ScalarNode) else describe_node(item)
            raise Invalid(
                f"{text!r} is not a run status ({', '.join(NOTIFY_STATUSES)})"
                f"{suggest(text, NOTIFY_STATUSES)}",
                item,
            )
    return tuple(str(item.value) for item in node.value)


_RETRY = {
    "max": int_parser(0, 1000),
    "backoff": duration_parser(),
    "backoff_max": duration_parser(),
}
_NOTIFY = {"on": _parse_statuses, "webhook": parse_url}
_HISTORY = {"keep": duration_parser()}

# Fields a job may have besides its schedule kind; all of them may be set in `defaults`.
_COMMON_FIELDS: dict[str, Parser | Nested] = {
    "args": parse_args,
    "kwargs": parse_kwargs,
    "timezone": parse_timezone,
    "queue": parse_str,
    "priority": int_parser(0, 9),
    "enabled": parse_bool,
    "misfire": choice_parser([m.value for m in Misfire]),
    "misfire_grace": duration_parser(),
    "overlap": choice_parser([o.value for o in Overlap]),
    "jitter": duration_parser(),
    "expires": duration_parser(),
    "time_limit": duration_parser(),
    "soft_time_limit": duration_parser(),
    "retry": Nested(_RETRY),
    "start": parse_datetime,
    "end": parse_datetime,
    "description": parse_str,
    "notify": Nested(_NOTIFY),
}
JOB_KEYS = ("task", *SCHEDULE_KINDS, *_COMMON_FIELDS)
# Fields that go into JobSpec unchanged.
_PASSED_AS_IS = frozenset(
    ("queue", "priority", "jitter", "expires", "time_limit", "soft_time_limit", "description")
)


@dataclass(slots=True)
class _Value:
    """A parsed value and where it was written (its own path, which may be under defaults)."""

    value: Any
    path: str
    node: Node


@dataclass(slots=True)
class _Loader:
    file: str
    known_tasks: Collection[str]
    problems: list[Problem] = field(default_factory=list)
    _job_fields: dict[str, Parser | Nested] = field(default_factory=dict)

    def job_fields(self) -> dict[str, Parser | Nested]:
        """The parsers of a job's fields (a copy to complete), built once per file."""
        if not self._job_fields:
            self._job_fields = {
                "task": task_parser(self.known_tasks),
                "cron": cron_parser(""),
                "every": duration_parser(minimum=timedelta(seconds=1)),
                "at": parse_datetime,
                **_COMMON_FIELDS,
            }
        return self._job_fields.copy()

    def problem(self, node: Node | None, path: str, message: str, offset: int = 0) -> None:
        line, col = position(node) if node is not None else (0, 0)
        if node is not None and offset and isinstance(node, ScalarNode):
            col += offset
        found = Problem(self.file, line, col, path, message)
        if found not in self.problems:
            self.problems.append(found)

    def refuse_tag(self, node: Node, path: str) -> bool:
        """Report a tag that is not a plain YAML type; True if there was one."""
        bad_tag = disallowed_tag(node)
        if bad_tag:
            self.problem(
                node, path, f"tag {bad_tag} is not allowed (tags that build objects are refused)"
            )
        return bad_tag is not None

    def entries(self, node: MappingNode, path: str) -> Iterator[tuple[str, Node, Node]]:
        """(key, key node, value node) of a mapping; duplicate and odd keys are reported."""
        first_seen: dict[str, Node] = {}
        # Tags on mappings and keys too, not only on values: `x: !foo {...}` must not pass.
        self.refuse_tag(node, path)
        merges = False
        # Explicit keys in one pass, each tag read once: the loop runs once per key of a
        # 100,000-job file. Merged keys (rare) follow, as mapping_entries() orders them.
        for key_node, value in node.value:
            tag = tag_of(key_node)
            if tag == MERGE:
                merges = True
            elif not isinstance(key_node, ScalarNode):
                self.problem(key_node, path, "keys must be plain names, not lists or mappings")
            else:
                key = str(key_node.value)
                if tag not in ALLOWED_TAGS:
                    self.refuse_tag(key_node, f"{path}.{key}" if path else key)
                if key in first_seen:
                    self._duplicate(key, key_node, first_seen[key], path)
                    continue
                first_seen[key] = key_node
                yield key, key_node, value
        if not merges:
            return
        for bad in bad_merge_sources(node):
            self.problem(bad, path, "a merge key (<<) needs a mapping or a list of mappings")
        for entry, explicit in mapping_entries(node):
            if explicit:
                continue
            where = f"{path}.{entry.key}" if path else entry.key
            if not isinstance(entry.key_node, ScalarNode):
                self.problem(
                    entry.key_node, path, "keys must be plain names, not lists or mappings"
                )
                continue
            self.refuse_tag(entry.key_node, where)
            first_seen[entry.key] = entry.key_node
            yield entry.key, entry.key_node, entry.value

    def _duplicate(self, key: str, key_node: Node, first: Node, path: str) -> None:
        self.problem(
            key_node,
            f"{path}.{key}" if path else key,
            f"duplicate key {key!r} (first defined on line {position(first)[0]})",
        )

    def parse(self, parser: Parser | Nested, node: Node, path: str) -> _Value | None:
        """The parsed value of one node, or None after reporting why it is wrong."""
        if self.refuse_tag(node, path):
            return None
        if isinstance(parser, Nested):
            before = len(self.problems)
            fields = self.known_fields(node, path, parser.fields)
            return _Value(fields, path, node) if len(self.problems) == before else None
        try:
            return _Value(parser(node), path, node)
        except Invalid as exc:
            self.problem(exc.node or node, path, exc.message, exc.offset)
            return None

    def known_fields(
        self,
        node: Node,
        path: str,
        fields: Mapping[str, Parser | Nested],
        unknown_hint: Callable[[str], str | None] = lambda _: None,
        keys: list[tuple[str, Node]] | None = None,
    ) -> dict[str, _Value]:
        """Parse a mapping of known fields; unknown keys are reported with a suggestion."""
        result: dict[str, _Value] = {}
        if not isinstance(node, MappingNode):
            self.problem(node, path, f"expected a mapping, got {describe_node(node)}")
            return result
        for key, key_node, value_node in self.entries(node, path):
            where = f"{path}.{key}"
            if keys is not None:
                keys.append((key, key_node))
            if key not in fields:
                hint = unknown_hint(key)
                self.problem(key_node, where, hint or f"unknown key {key!r}{suggest(key, fields)}")
                continue
            parsed = self.parse(fields[key], value_node, where)
            if parsed is not None:
                result[key] = parsed
        return result


def load_schedule(
    path: str | os.PathLike[str],
    known_tasks: Collection[str],
    default_tz: ZoneInfo | None = None,
    max_bytes: int = DEFAULT_MAX_SCHEDULE_BYTES,
) -> ScheduleFile:
    """Read and validate a schedule file; raises ScheduleError with every problem found."""
    file = str(path)
    # A large schedule is a million young objects and no cycles: the cyclic garbage
    # collector would walk them again and again (half of the time), for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        root = read_document(Path(path), max_bytes)
        loader = _Loader(file, known_tasks)
        result = _load(loader, root, default_tz or ZoneInfo("UTC"))
    finally:
        if collecting:
            gc.enable()
    if loader.problems or result is None:
        raise ScheduleError(sorted(loader.problems, key=lambda p: (p.line, p.col)))
    return result


def _load(loader: _Loader, root: Node, default_tz: ZoneInfo) -> ScheduleFile | None:
    if not isinstance(root, MappingNode):
        loader.problem(
            root, "", f"the top level must be a mapping with `jobs:`, got {describe_node(root)}"
        )
        return None
    top: dict[str, tuple[Node, Node]] = {}
    for key, key_node, value_node in loader.entries(root, ""):
        if key not in _TOP_KEYS:
            hint = " (job fields belong under `jobs: <name>:`)" if key in JOB_KEYS else ""
            loader.problem(
                key_node, key, f"unknown top-level key {key!r}{suggest(key, _TOP_KEYS)}{hint}"
            )
            continue
        top[key] = (key_node, value_node)

    tz = default_tz
    if "timezone" in top:
        parsed_tz = loader.parse(parse_timezone, top["timezone"][1], "timezone")
        tz = parsed_tz.value if parsed_tz else tz
    defaults: dict[str, _Value] = {}
    if "defaults" in top:
        defaults = loader.known_fields(
            top["defaults"][1], "defaults", _COMMON_FIELDS, _defaults_hint
        )
    keep = None
    if "history" in top:
        history = loader.known_fields(top["history"][1], "history", _HISTORY)
        keep = history["keep"].value if "keep" in history else None
    if "jobs" not in top:
        loader.problem(root, "jobs", "missing: a schedule needs `jobs:` (use `jobs: {}` for none)")
        return None
    jobs_key, jobs_node = top["jobs"]
    if not isinstance(jobs_node, MappingNode):
        loader.problem(
            jobs_node if isinstance(jobs_node, ScalarNode) and jobs_node.value else jobs_key,
            "jobs",
            f"expected a mapping of job names to jobs, got {describe_node(jobs_node)}",
        )
        return None
    jobs: dict[str, JobSpec] = {}
    for name, key_node, job_node in loader.entries(jobs_node, "jobs"):
        job = _load_job(loader, name, key_node, job_node, defaults, tz)
        if job is not None:
            jobs[name] = job
    return ScheduleFile(path=loader.file, tz=tz, jobs=jobs, history_keep=keep)


def _defaults_hint(key: str) -> str | None:
    if key in ("task", *SCHEDULE_KINDS):
        return f"{key!r} cannot be set in defaults: each job names its own task and schedule"
    return None


def _load_job(
    loader: _Loader,
    name: str,
    key_node: Node,
    node: Node,
    defaults: dict[str, _Value],
    file_tz: ZoneInfo,
) -> JobSpec | None:
    path = f"jobs.{name}"
    before = len(loader.problems)
    if not _JOB_NAME.fullmatch(name):
        loader.problem(
            key_node,
            path,
            "job names may only contain letters, digits, '-', '_' and '.' (at most 200)",
        )
    fields = loader.job_fields()
    fields["cron"] = cron_parser(name)  # its H hashes the job name
    if not isinstance(node, MappingNode):
        where = node if isinstance(node, ScalarNode) and node.value else key_node
        loader.problem(where, path, f"expected a mapping of job fields, got {describe_node(node)}")
        return None
    keys: list[tuple[str, Node]] = []
    own = loader.known_fields(node, path, fields, keys=keys)
    kinds = [(key, k_node) for key, k_node in keys if key in SCHEDULE_KINDS]
    if not kinds:
        loader.problem(key_node, path, "needs one of cron, every or at")
    for extra, extra_node in kinds[1:]:
        loader.problem(
            extra_node,
            f"{path}.{extra}",
            f"only one of cron, every, at per job; this job already has {kinds[0][0]}",
        )
    if "task" not in own and not any(key == "task" for key, _ in keys):
        loader.problem(key_node, f"{path}.task", "missing: every job needs a task")
    merged = {**defaults, **own}
    tz = merged["timezone"].value if "timezone" in merged else file_tz
    for key in ("start", "end", "at"):
        if key in merged:
            try:
                _instant(merged[key].value, tz)
            except OverflowError:  # year 1 or 9999 moved past datetime's range by the offset
                bad = merged.pop(key)
                loader.problem(
                    bad.node, f"{path}.{key}", f"{bad.value} is out of range in {tz.key}"
                )
    _check_relations(loader, path, merged, file_tz)
    if len(loader.problems) > before:
        return None
    return _build_job(name, merged, file_tz, position(key_node)[0])


def _check_relations(
    loader: _Loader, path: str, merged: dict[str, _Value], file_tz: ZoneInfo
) -> None:
    soft, hard = merged.get("soft_time_limit"), merged.get("time_limit")
    if soft and hard and soft.value >= hard.value:
        loader.problem(
            soft.node,
            f"{path}.soft_time_limit",
            "must be less than time_limit, so the job can clean up before it is killed",
        )
    start, end = merged.get("start"), merged.get("end")
    if start and end:
        tz = merged["timezone"].value if "timezone" in merged else file_tz
        if _instant(start.value, tz) >= _instant(end.value, tz):
            loader.problem(
                end.node, f"{path}.end", "must be after start (start is inclusive, end exclusive)"
            )
    retry = merged.get("retry")
    if retry and "backoff" in retry.value and "backoff_max" in retry.value:
        low, high = retry.value["backoff"], retry.value["backoff_max"]
        if high.value < low.value:
            loader.problem(high.node, f"{path}.retry.backoff_max", "must not be less than backoff")
    notify = merged.get("notify")
    if notify and "webhook" not in notify.value:
        loader.problem(notify.node, f"{path}.notify.webhook", "missing: notify needs a webhook URL")


def _instant(value: datetime, tz: ZoneInfo) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else resolve_wall_time(value, tz)


def _build_job(name: str, values: dict[str, _Value], file_tz: ZoneInfo, line: int) -> JobSpec:
    v = {key: item.value for key, item in values.items()}
    tz: ZoneInfo = v.get("timezone", file_tz)
    start_at = _instant(v["start"], tz) if "start" in v else None
    end_at = _instant(v["end"], tz) if "end" in v else None
    schedule: Schedule
    if "cron" in v:
        schedule = CronSchedule(v["cron"], tz)
    elif "every" in v:
        schedule = EverySchedule(v["every"], start_at or EPOCH)
    else:
        schedule = AtSchedule(_instant(v["at"], tz))
    retry = notify = None
    if "retry" in v:
        r = {key: item.value for key, item in v["retry"].items()}
        retry = RetryPolicy(r.get("max", 3), r.get("backoff"), r.get("backoff_max"))
    if "notify" in v:
        n = {key: item.value for key, item in v["notify"].items()}
        notify = NotifySpec(n.get("on", DEFAULT_NOTIFY_ON), n["webhook"])
    optional = {key: v[key] for key in _PASSED_AS_IS.intersection(v)}
    return JobSpec(
        name=name,
        task=v["task"],
        schedule=schedule,
        tz=tz,
        args=v.get("args", ()),
        kwargs=v.get("kwargs", {}),
        enabled=v.get("enabled", True),
        misfire=Misfire(v["misfire"]) if "misfire" in v else Misfire.RUN_ONCE,
        overlap=Overlap(v["overlap"]) if "overlap" in v else Overlap.FORBID,
        retry=retry,
        notify=notify,
        start_at=start_at,
        end_at=end_at,
        line=line,
        **({"misfire_grace": v["misfire_grace"]} if "misfire_grace" in v else {}),
        **optional,
    )


def read_timezone(
    path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_SCHEDULE_BYTES
) -> str | None:
    """The top-level `timezone` of a schedule file if it names a real zone, else None.

    For the Celery app's `timezone` setting only: it does not validate the file (the beat,
    the worker's tasks and every command do that) and so never raises for a bad one. It
    reads only as far as the key (the start of the file, usually).
    """
    try:
        node = top_level_value(Path(path), "timezone", max_bytes)
    except ScheduleError:
        return None
    if node is None:
        return None
    try:
        return parse_timezone(node).key
    except Invalid:
        return None
    return None
