"""Deployment files (SPEC §8): docker-compose.yml, the Dockerfile and .dockerignore.

No Docker engine is needed. When a Compose CLI answers (`docker compose version` exits 0),
`docker compose config` must accept the file; without one, a structural check of the Compose
format stands in. Either way the file is parsed with ruamel.yaml (merge keys resolved, as
Compose does) and the Dockerfile is parsed as text, and each `check_*` function below
asserts one property. The mutation tests at the end break each property on purpose and
require its check to fail, so that no check can pass vacuously.
"""

from __future__ import annotations

import copy
import fnmatch
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

BASE_IMAGE = "python:3.11-slim"
SCHEDULE_IN_CONTAINER = "/app/schedules.yaml"
BROKER_URL = "redis://redis:6379/0"
DATABASE_URL = "postgresql://scheduler:${POSTGRES_PASSWORD:-scheduler}@postgres:5432/scheduler"
SERVICES = ("redis", "postgres", "migrate", "beat", "worker", "flower")
APP_SERVICES = ("migrate", "beat", "worker")  # built from this repository's image

Compose = dict[str, Any]


# ---------------------------------------------------------------------------------------
# docker-compose.yml: loading and small helpers
# ---------------------------------------------------------------------------------------


def load_compose(path: Path = COMPOSE_FILE) -> Compose:
    # The safe loader resolves `<<: *scheduler` merge keys and rejects duplicate keys.
    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


def service(compose: Compose, name: str) -> dict[str, Any]:
    services = compose.get("services") or {}
    assert name in services, f"service {name!r} is missing"
    assert isinstance(services[name], dict), f"service {name!r} is not a mapping"
    return services[name]


def argv(command: Any) -> list[str]:
    """A Compose command (string or list) as an argument vector, `-A x`/`--app=x` unified."""
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command or []]
    out: list[str] = []
    for word in words:
        if word.startswith("--app="):
            out += ["-A", word.removeprefix("--app=")]
        else:
            out.append("-A" if word == "--app" else word)
    return out


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool
    bind: bool


def mounts(svc: dict[str, Any]) -> list[Mount]:
    """The service's volumes, short (`src:dst:ro`) or long syntax."""
    found = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            source, target = str(entry.get("source", "")), str(entry.get("target", ""))
            read_only = bool(entry.get("read_only", False))
            bind = entry.get("type") == "bind"
        else:
            parts = str(entry).split(":")
            if len(parts) == 1:  # anonymous volume
                found.append(Mount("", parts[0], False, False))
                continue
            source, target = parts[0], parts[1]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
            bind = source.startswith((".", "/", "~"))
        found.append(Mount(source, target, read_only, bind))
    return found


def depends_on(svc: dict[str, Any]) -> dict[str, str]:
    """{service: condition}; the short list syntax means `service_started`."""
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {str(name): "service_started" for name in deps}
    return {
        str(name): str((spec or {}).get("condition", "service_started"))
        for name, spec in deps.items()
    }


def healthcheck_argv(svc: dict[str, Any]) -> list[str]:
    check = svc.get("healthcheck") or {}
    test = check.get("test")
    return [test] if isinstance(test, str) else [str(w) for w in test or []]


def host_ports(svc: dict[str, Any]) -> list[str]:
    """Port entries that bind a fixed host port (which two replicas could not share)."""
    fixed = []
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") not in (None, ""):
                fixed.append(str(entry))
        elif ":" in str(entry):
            fixed.append(str(entry))
    return fixed


def env(svc: dict[str, Any]) -> dict[str, str]:
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        return dict(str(item).partition("=")[::2] for item in raw)
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


# ---------------------------------------------------------------------------------------
# docker-compose.yml: the checks
# ---------------------------------------------------------------------------------------


_TOP_LEVEL = {"version", "name", "services", "networks", "volumes", "configs", "secrets"}
_SERVICE_KEY_NAMES = """
    annotations attach blkio_config build cap_add cap_drop cgroup cgroup_parent command
    configs container_name cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period
    cpu_rt_runtime cpu_shares cpus cpuset depends_on deploy develop device_cgroup_rules
    devices dns dns_opt dns_search domainname entrypoint env_file environment expose extends
    external_links extra_hosts gpus group_add healthcheck hostname image init ipc isolation
    labels links logging mac_address mem_limit mem_reservation mem_swappiness memswap_limit
    network_mode networks oom_kill_disable oom_score_adj pid pids_limit platform ports
    post_start pre_stop privileged profiles pull_policy read_only restart runtime scale
    secrets security_opt shm_size stdin_open stop_grace_period stop_signal storage_opt
    sysctls tmpfs tty ulimits user userns_mode uts volumes volumes_from working_dir"""
_SERVICE_KEYS = set(_SERVICE_KEY_NAMES.split())
_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
_RESTART = re.compile(r"no|always|unless-stopped|on-failure(:\d+)?")
_DURATION = re.compile(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+")
# `$$` is a literal dollar; `${NAME}`, `${NAME:-x}`, `${NAME-x}`, `${NAME:?x}`, `$NAME`.
_INTERPOLATION = re.compile(r"\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?+][^}]*)?\}|\$[A-Za-z_]\w*")


def _strings(node: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{where}.{k}")]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{where}[{i}]")]
    return [(where, node)] if isinstance(node, str) else []


def check_compose_schema(compose: Compose) -> None:
    """What `docker compose config` would refuse, for machines without a Compose CLI."""
    unknown = {k for k in compose if k not in _TOP_LEVEL and not str(k).startswith("x-")}
    assert not unknown, f"unknown top-level keys {sorted(unknown)}"
    services = compose.get("services")
    assert isinstance(services, dict) and services, "no services"
    declared_volumes = set(compose.get("volumes") or {})
    for where, text in _strings(compose, "compose"):
        leftover = _INTERPOLATION.sub("", text)
        assert "$" not in leftover, f"{where}: invalid interpolation in {text!r} (use $$)"
    for name, svc in services.items():
        assert isinstance(svc, dict), f"{name}: not a mapping"
        unknown = {k for k in svc if k not in _SERVICE_KEYS and not str(k).startswith("x-")}
        assert not unknown, f"{name}: unknown keys {sorted(unknown)}"
        assert svc.get("image") or svc.get("build"), f"{name}: neither image nor build"
        for dep, condition in depends_on(svc).items():
            assert dep in services, f"{name}: depends on unknown service {dep!r}"
            assert condition in _CONDITIONS, f"{name}: unknown condition {condition!r}"
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name}: {dep} has no healthcheck"
        if "restart" in svc:
            restart = svc["restart"]
            assert isinstance(restart, str), f'{name}: restart must be a string (quote "no")'
            assert _RESTART.fullmatch(restart), f"{name}: bad restart {restart!r}"
        for profile in svc.get("profiles") or []:
            assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", str(profile)), f"{name}: {profile!r}"
        for mount in mounts(svc):
            if mount.bind:
                if not mount.source.startswith(("/", "~")):
                    # Docker would silently create a missing bind source as a directory.
                    assert (ROOT / mount.source).exists(), f"{name}: {mount.source} is missing"
            elif mount.source:
                assert mount.source in declared_volumes, f"{name}: volume {mount.source!r}?"
        command = svc.get("command")
        assert command is None or isinstance(command, str | list), f"{name}: bad command"
        check = svc.get("healthcheck")
        if check:
            test = check.get("test")
            assert isinstance(test, str) or (
                isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL", "NONE")
            ), f"{name}: healthcheck test must be a string or start with CMD/CMD-SHELL/NONE"
            for key in ("interval", "timeout", "start_period", "start_interval"):
                if key in check:
                    assert _DURATION.fullmatch(str(check[key])), f"{name}: {key} {check[key]!r}"


def check_services(compose: Compose) -> None:
    for name in SERVICES:
        service(compose, name)


def check_flower_profile(compose: Compose) -> None:
    assert "flower" in (service(compose, "flower").get("profiles") or []), "flower: no profile"
    for name in SERVICES[:-1]:
        # A profile on a core service would keep it out of a plain `docker compose up`.
        assert not service(compose, name).get("profiles"), f"{name} must not need a profile"


def check_images(compose: Compose) -> None:
    assert service(compose, "redis").get("image") == "redis:7-alpine", "redis: image"
    assert service(compose, "postgres").get("image") == "postgres:16-alpine", "postgres: image"
    flower_image = str(service(compose, "flower").get("image", ""))
    assert flower_image.startswith("mher/flower"), "flower: the official mher/flower image"
    images = {str(service(compose, name).get("image")) for name in APP_SERVICES}
    builds = {str(service(compose, name).get("build")) for name in APP_SERVICES}
    assert len(images) == 1 and len(builds) == 1, "migrate, beat, worker: one image"
    assert builds != {"None"}, "the app services must build this repository's Dockerfile"
    common = compose.get("x-scheduler")
    assert isinstance(common, dict), "the shared `x-scheduler` anchor is missing"
    assert images == {str(common.get("image"))}, "app services do not use x-scheduler"


def check_shared_environment(compose: Compose) -> None:
    for name in APP_SERVICES:
        variables = env(service(compose, name))
        for key, value in (
            ("SCHEDULER_BROKER_URL", BROKER_URL),
            ("SCHEDULER_DATABASE_URL", DATABASE_URL),
            ("SCHEDULER_SCHEDULE_FILE", SCHEDULE_IN_CONTAINER),
        ):
            assert variables.get(key) == value, f"{name}: {key} is not {value}"


def check_database_credentials(compose: Compose) -> None:
    pg = env(service(compose, "postgres"))
    assert pg.get("POSTGRES_PASSWORD", "").startswith("${POSTGRES_PASSWORD:-"), (
        "POSTGRES_PASSWORD must come from the environment, with a default for local use"
    )
    for name in APP_SERVICES:
        url = env(service(compose, name)).get("SCHEDULER_DATABASE_URL", "")
        match = re.fullmatch(r"postgresql://([^:]+):(.+)@postgres:5432/(\w+)", url)
        assert match, f"{name}: database URL {url!r}"
        user, password, database = match.groups()
        assert (user, password, database) == (
            pg.get("POSTGRES_USER"),
            pg.get("POSTGRES_PASSWORD"),
            pg.get("POSTGRES_DB"),
        ), f"{name}: the database URL does not match the postgres service's credentials"


def check_backing_healthchecks(compose: Compose) -> None:
    redis = " ".join(healthcheck_argv(service(compose, "redis")))
    assert "redis-cli" in redis and "ping" in redis, "redis: healthcheck is not redis-cli ping"
    postgres = " ".join(healthcheck_argv(service(compose, "postgres")))
    assert "pg_isready" in postgres, "postgres: healthcheck is not pg_isready"


def check_postgres_volume(compose: Compose) -> None:
    data = [
        m for m in mounts(service(compose, "postgres")) if m.target == "/var/lib/postgresql/data"
    ]
    assert data, "postgres: no volume on /var/lib/postgresql/data"
    assert not data[0].bind and data[0].source, "postgres: data must be on a named volume"
    assert data[0].source in (compose.get("volumes") or {}), (
        f"volume {data[0].source!r} is not declared under the top-level `volumes`"
    )


def check_migrate(compose: Compose) -> None:
    migrate = service(compose, "migrate")
    assert argv(migrate.get("command")) == ["scheduler", "db", "upgrade"], "migrate: command"
    assert migrate.get("restart") == "no", 'migrate is one-shot: restart "no"'
    assert depends_on(migrate).get("postgres") == "service_healthy", "migrate: postgres healthy"


def check_beat_mount(compose: Compose) -> None:
    beat = service(compose, "beat")
    schedule = [m for m in mounts(beat) if m.target == SCHEDULE_IN_CONTAINER]
    assert schedule, f"beat: nothing mounted at {SCHEDULE_IN_CONTAINER}"
    assert schedule[0].bind, "beat: schedules.yaml must be a bind mount"
    assert (ROOT / schedule[0].source).resolve() == ROOT / "schedules.yaml", "beat: source"
    assert schedule[0].read_only, "beat: schedules.yaml must be mounted read-only"
    assert env(beat).get("SCHEDULER_SCHEDULE_FILE") == SCHEDULE_IN_CONTAINER, (
        "beat reads a different file than the one mounted"
    )


def check_depends(compose: Compose) -> None:
    for name in ("beat", "worker"):
        deps = depends_on(service(compose, name))
        assert deps.get("migrate") == "service_completed_successfully", f"{name}: migrate"
        assert deps.get("redis") == "service_healthy", f"{name}: redis"


def check_worker_scalable(compose: Compose) -> None:
    worker = service(compose, "worker")
    assert "container_name" not in worker, "worker: container_name prevents --scale"
    assert not host_ports(worker), "worker: a fixed host port prevents --scale"
    assert "hostname" not in worker, "worker: a fixed hostname gives replicas one node name"


def check_commands(compose: Compose) -> None:
    for name in ("beat", "worker"):
        command = argv(service(compose, name).get("command"))
        assert command[:4] == ["celery", "-A", "scheduler", name], f"{name}: command {command}"


def check_healthchecks(compose: Compose) -> None:
    for name, svc in compose["services"].items():
        if svc.get("restart") == "no":
            continue  # one-shot
        check = svc.get("healthcheck") or {}
        test = healthcheck_argv(svc)
        assert test and test != ["NONE"] and not check.get("disable"), f"{name}: no healthcheck"
    # `$$` reaches the container as `$`: a single `$HOSTNAME` would be interpolated by Compose
    # from the host's environment, and the worker would ping some other node (or none).
    worker = " ".join(healthcheck_argv(service(compose, "worker")))
    assert "inspect ping" in worker and "celery@$$HOSTNAME" in worker, "worker: ping itself"


def check_flower(compose: Compose) -> None:
    flower = service(compose, "flower")
    text = " ".join(argv(flower.get("command"))) + " " + " ".join(env(flower).values())
    assert BROKER_URL in text, "flower: not pointed at the Redis broker"
    assert any(str(p).endswith(":5555") for p in flower.get("ports") or []), "flower: port 5555"
    assert depends_on(flower).get("redis") == "service_healthy", "flower: redis healthy"


COMPOSE_CHECKS: list[Callable[[Compose], None]] = [
    check_compose_schema,
    check_services,
    check_flower_profile,
    check_images,
    check_shared_environment,
    check_database_credentials,
    check_backing_healthchecks,
    check_postgres_volume,
    check_migrate,
    check_beat_mount,
    check_depends,
    check_worker_scalable,
    check_commands,
    check_healthchecks,
    check_flower,
]


@pytest.mark.parametrize("check", COMPOSE_CHECKS, ids=lambda f: f.__name__)
def test_compose(compose: Compose, check: Callable[[Compose], None]) -> None:
    check(compose)


def compose_cli(tmp: Path) -> list[str] | None:
    """`docker compose` or `docker-compose`, if one answers (`config` needs no engine).

    A CLI counts only if it also rejects a broken file: a wrapper that always exits 0
    would make `config` prove nothing.
    """
    broken = tmp / "broken-compose.yml"
    broken.write_text("services:\n  a:\n    image: x\n    no_such_key: 1\n", encoding="utf-8")
    for cli in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cli[0]) is None:
            continue
        try:
            version = subprocess.run([*cli, "version"], capture_output=True, timeout=60)
            rejects = subprocess.run(
                [*cli, "-f", str(broken), "config", "--quiet"], capture_output=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version.returncode == 0 and rejects.returncode != 0:
            return cli
    return None


def test_compose_config_accepts_the_file(compose: Compose, tmp_path: Path) -> None:
    cli = compose_cli(tmp_path)
    if cli is None:
        # No Compose CLI here: the structural check stands in for `docker compose config`.
        check_compose_schema(compose)
        return
    # The CLI works, so a failure of `config` is the file's fault: never fall back here.
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "--profile", "flower", "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------
# Dockerfile: a small parser
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    value: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined; comments and blank lines dropped."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # also inside a continuation, as Docker does
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, value = " ".join(p for p in parts if p).partition(" ")
        instructions.append(Instruction(start, keyword.upper(), value.strip()))
        parts = []
    assert not parts, "the Dockerfile ends inside a line continuation"
    return instructions


@dataclass(frozen=True)
class Stage:
    index: int
    base: str
    alias: str | None
    body: list[Instruction]  # the FROM and what follows it, up to the next FROM


def stages(instructions: list[Instruction]) -> list[Stage]:
    found: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.value.split() if not w.startswith("--")]
            alias = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
            found.append(Stage(len(found), words[0], alias, [ins]))
        else:
            assert found, f"line {ins.line}: {ins.keyword} before the first FROM"
            found[-1].body.append(ins)
    assert found, "no FROM"
    return found


def stage_named(all_stages: list[Stage], ref: str) -> Stage | None:
    for stage in all_stages:
        if stage.alias == ref.lower() or str(stage.index) == ref:
            return stage
    return None


def lineage(all_stages: list[Stage], stage: Stage) -> list[Instruction]:
    """Everything that shapes a stage's filesystem: its base stages, then its own body."""
    parent = stage_named(all_stages[: stage.index], stage.base)
    return [*(lineage(all_stages, parent) if parent else []), *stage.body]


def root_image(all_stages: list[Stage], stage: Stage) -> str:
    parent = stage_named(all_stages[: stage.index], stage.base)
    return root_image(all_stages, parent) if parent else stage.base


@dataclass(frozen=True)
class Copy:
    ins: Instruction
    from_stage: str | None
    sources: list[str]
    dest: str


def parse_copy(ins: Instruction) -> Copy:
    words = shlex.split(ins.value)
    flags = [w for w in words if w.startswith("--")]
    rest = [w for w in words if not w.startswith("--")]
    if ins.value.lstrip().startswith("["):  # JSON form
        rest = [w.strip('[]",') for w in ins.value.split(",")]
    from_stage = next((f.partition("=")[2] for f in flags if f.startswith("--from=")), None)
    assert len(rest) >= 2, f"line {ins.line}: {ins.keyword} needs a source and a destination"
    return Copy(ins, from_stage, rest[:-1], rest[-1])


def copies(body: list[Instruction]) -> list[Copy]:
    return [parse_copy(i) for i in body if i.keyword in ("COPY", "ADD")]


def shell_commands(ins: Instruction) -> list[str]:
    return [c.strip() for c in re.split(r"&&|\|\||;", ins.value) if c.strip()]


_PIP = re.compile(r"\b(pip3?|uv pip)\s+(install|wheel)\b")


def is_dependency_install(command: str) -> bool:
    return bool(_PIP.search(command)) and "--no-deps" not in command


def is_source_install(command: str) -> bool:
    return bool(_PIP.search(command)) and "--no-deps" in command


def names_package_source(source: str) -> bool:
    """Does a COPY source bring in scheduler/ or jobs/ (so that editing them busts it)?"""
    path = source.strip().removeprefix("./").rstrip("/") or "."
    if path in (".", "*"):
        return True
    top = PurePosixPath(path).parts[0]
    return any(fnmatch.fnmatch(pkg, top) for pkg in ("scheduler", "jobs"))


def final_stage(instructions: list[Instruction]) -> tuple[list[Stage], Stage]:
    all_stages = stages(instructions)
    return all_stages, all_stages[-1]


def user_of(instructions: list[Instruction]) -> str:
    _, last = final_stage(instructions)
    users = [i for i in last.body if i.keyword == "USER"]
    assert users, "the final stage sets no USER: the image would run as root"
    return users[-1].value.split(":")[0]


def user_names(instructions: list[Instruction]) -> set[str]:
    """The final USER as written, plus its name or uid as given to `useradd`."""
    user = user_of(instructions)
    names = {user}
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        for command in shell_commands(ins):
            uid = re.search(r"\buseradd\b.*(?:--uid|-u)[ =]?(\d+)\b", command)
            name = command.split()[-1] if uid else None
            if uid and name and user in (uid.group(1), name):
                names |= {uid.group(1), name}
    return names


# ---------------------------------------------------------------------------------------
# Dockerfile: the checks
# ---------------------------------------------------------------------------------------


def check_base_image(instructions: list[Instruction]) -> None:
    all_stages, last = final_stage(instructions)
    assert root_image(all_stages, last) == BASE_IMAGE, f"the final image is not {BASE_IMAGE}"


def check_non_root_user(instructions: list[Instruction]) -> None:
    all_stages, last = final_stage(instructions)
    body = lineage(all_stages, last)
    user = user_of(instructions)
    assert user not in ("root", "0"), "USER must not be root"
    user_at = max(n for n, i in enumerate(body) if i.keyword == "USER")
    installs = [
        n
        for n, i in enumerate(body)
        if i.keyword == "RUN" and re.search(r"\b(pip3?|apt-get|apk|useradd|chown)\b", i.value)
    ]
    assert installs and user_at > max(installs), "USER must come after the installs"
    if not user.isdigit():
        created = [i for i in body if i.keyword == "RUN" and "useradd" in i.value]
        assert any(
            re.search(rf"(--uid|-u)[ =]?[1-9]\d*\b.*\b{re.escape(user)}\b", i.value)
            for i in created
        ), f"user {user!r} needs a fixed, non-zero uid (useradd --uid)"
    else:
        assert int(user) != 0, "USER must not be uid 0"


def check_dependency_layer(instructions: list[Instruction]) -> None:
    """Dependencies are installed before, and without, the package's source."""
    all_stages = stages(instructions)
    order = {id(ins): n for n, ins in enumerate(instructions)}
    dependency_steps = [
        (stage, ins)
        for stage in all_stages
        for ins in stage.body
        if ins.keyword == "RUN" and any(is_dependency_install(c) for c in shell_commands(ins))
    ]
    assert dependency_steps, "no step installs the dependencies on their own"
    source_copies = [
        c
        for c in copies(instructions)
        if not c.from_stage and any(map(names_package_source, c.sources))
    ]
    assert source_copies, "scheduler/ is never copied into the image"
    first_source_copy = min(order[id(c.ins)] for c in source_copies)
    for stage, step in dependency_steps:  # every one: `pip install -U pip` first proves nothing
        assert order[id(step)] < first_source_copy, (
            f"line {step.line}: a dependency install must come before COPY scheduler"
        )
        # What the step sees: its stage's lineage up to it, and the stages it copies from.
        lineage_up_to = lineage(all_stages, stage)
        seen = lineage_up_to[: lineage_up_to.index(step)]
        for cp in copies(seen):
            if cp.from_stage:
                source_stage = stage_named(all_stages, cp.from_stage)
                if source_stage is not None:
                    inner = copies(lineage(all_stages, source_stage))
                    assert not any(names_package_source(s) for c in inner for s in c.sources), (
                        f"line {cp.ins.line}: a dependency step copies from a stage with source"
                    )
            bad = [s for s in cp.sources if names_package_source(s)]
            assert not bad, f"line {cp.ins.line}: COPY {bad} before a dependency install"
    # The package itself is then installed without dependencies, after its source.
    all_stages, last = final_stage(instructions)
    body = lineage(all_stages, last)
    in_final = [body.index(c.ins) for c in source_copies if c.ins in body]
    assert in_final, "scheduler/ is not copied into the final stage"
    source_at = min(in_final)
    assert any(
        i.keyword == "RUN" and any(is_source_install(c) for c in shell_commands(i))
        for i in body[source_at:]
    ), "the package must be installed with --no-deps after its source is copied"


def check_package_build_inputs(instructions: list[Instruction]) -> None:
    """`pip install .` needs pyproject.toml, its readme and the packages: all copied first."""
    all_stages, last = final_stage(instructions)
    body = lineage(all_stages, last)
    install = next(
        (
            n
            for n, i in enumerate(body)
            if i.keyword == "RUN" and any(is_source_install(c) for c in shell_commands(i))
        ),
        None,
    )
    assert install is not None, "no `pip install --no-deps .` in the final stage"
    copied = {
        PurePosixPath(s.removeprefix("./").rstrip("/") or ".").parts[0]
        for c in copies(body[:install])
        if not c.from_stage
        for s in c.sources
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needed = {"pyproject.toml", str(project.get("readme", "pyproject.toml")), "scheduler", "jobs"}
    assert "." in copied or needed <= copied, (
        f"not copied before the install: {sorted(needed - copied)}"
    )


def check_copied_paths_exist(instructions: list[Instruction]) -> None:
    ignore = dockerignore_patterns()
    for cp in copies(instructions):
        if cp.from_stage:
            continue
        for source in cp.sources:
            if re.match(r"https?://", source):
                continue
            matches = list(ROOT.glob(source.removeprefix("./").rstrip("/") or "."))
            assert matches, f"line {cp.ins.line}: {source} does not exist in the repository"
            for match in matches:
                relative = match.relative_to(ROOT).as_posix()
                assert not ignored(relative, ignore), f"{relative} is excluded by .dockerignore"


def check_workdir_and_var(instructions: list[Instruction]) -> None:
    all_stages, last = final_stage(instructions)
    body = lineage(all_stages, last)
    workdirs = [i.value for i in body if i.keyword == "WORKDIR"]
    assert workdirs and workdirs[-1] == "/app", "WORKDIR must be /app"
    users = "|".join(map(re.escape, sorted(user_names(instructions))))
    chowned = [
        c
        for i in body
        if i.keyword == "RUN"
        for c in shell_commands(i)
        if re.search(rf"\bchown\b.*\s({users})(:\S*)?\s+(/app/)?var/?(\s|$)", c)
    ]
    assert chowned, f"/app/var must be owned by the USER ({users}), so jobs can write var/"


def check_no_build_tools(instructions: list[Instruction]) -> None:
    all_stages, last = final_stage(instructions)
    tools = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|[\w.+-]+-dev)\b")
    for ins in lineage(all_stages, last):
        if ins.keyword == "RUN" and re.search(
            r"\b(apt-get|apt|apk)\b.*\b(install|add)\b", ins.value
        ):
            found = tools.findall(ins.value)
            purged = re.search(r"\b(purge|remove|del)\b", ins.value)
            assert not found or purged, f"line {ins.line}: build tools left in the image: {found}"


def check_default_command(instructions: list[Instruction]) -> None:
    all_stages, last = final_stage(instructions)
    commands = [i for i in lineage(all_stages, last) if i.keyword in ("CMD", "ENTRYPOINT")]
    assert commands, "no CMD"
    assert "scheduler" in commands[-1].value, "the default command should be the scheduler CLI"


DOCKERFILE_CHECKS: list[Callable[[list[Instruction]], None]] = [
    check_base_image,
    check_non_root_user,
    check_dependency_layer,
    check_package_build_inputs,
    check_copied_paths_exist,
    check_workdir_and_var,
    check_no_build_tools,
    check_default_command,
]


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("check", DOCKERFILE_CHECKS, ids=lambda f: f.__name__)
def test_dockerfile(
    dockerfile: list[Instruction], check: Callable[[list[Instruction]], None]
) -> None:
    check(dockerfile)


# ---------------------------------------------------------------------------------------
# .dockerignore
# ---------------------------------------------------------------------------------------


def dockerignore_patterns(text: str | None = None) -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per pattern, in order; `**`, `*` and `?` as Docker reads them."""
    if text is None:
        text = DOCKERIGNORE.read_text(encoding="utf-8") if DOCKERIGNORE.exists() else ""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negated, re.compile(regex)))
    return patterns


def ignored(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """A path is excluded if it or one of its parent directories matches (last rule wins)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negated, regex in patterns:
        if any(regex.fullmatch(p) for p in prefixes):
            result = not negated
    return result


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = dockerignore_patterns()
    for path in (".venv/bin/python", ".git/HEAD", "var/history.sqlite", ".pytest_cache/v"):
        assert ignored(path, patterns), f"{path} would be sent to the Docker daemon"
    assert ignored("scheduler/__pycache__/cli.cpython-311.pyc", patterns)
    assert not ignored("scheduler/cli.py", patterns)


def test_dockerignore_matcher() -> None:
    patterns = dockerignore_patterns("var\n**/__pycache__\n*.egg-info\n!keep.egg-info\n")
    assert ignored("var/x", patterns) and not ignored("scheduler/var.py", patterns)
    assert ignored("a/b/__pycache__/c.pyc", patterns)
    assert ignored("scheduler.egg-info/PKG-INFO", patterns)
    assert not ignored("keep.egg-info", patterns)


# ---------------------------------------------------------------------------------------
# Mutations: each check must fail on a file broken in the way it checks.
# ---------------------------------------------------------------------------------------


def _svc(data: Compose, name: str) -> dict[str, Any]:
    return data["services"][name]


def _set(name: str, key: str, value: Any) -> Callable[[Compose], None]:
    def mutate(data: Compose) -> None:
        _svc(data, name)[key] = value

    return mutate


def _drop(name: str, key: str) -> Callable[[Compose], None]:
    def mutate(data: Compose) -> None:
        _svc(data, name).pop(key, None)

    return mutate


def _env(name: str, key: str, value: str) -> Callable[[Compose], None]:
    def mutate(data: Compose) -> None:
        _svc(data, name)["environment"] = {**env(_svc(data, name)), key: value}

    return mutate


def _no_top_volume(data: Compose) -> None:
    data["volumes"].pop(mounts(_svc(data, "postgres"))[0].source)


COMPOSE_MUTANTS: list[tuple[str, Callable[[Compose], None], Callable[[Compose], None]]] = [
    ("no flower service", lambda d: d["services"].pop("flower"), check_services),
    ("no worker service", lambda d: d["services"].pop("worker"), check_services),
    ("flower without profile", _drop("flower", "profiles"), check_flower_profile),
    ("beat under a profile", _set("beat", "profiles", ["flower"]), check_flower_profile),
    ("postgres 15", _set("postgres", "image", "postgres:15"), check_images),
    ("worker image differs", _set("worker", "image", "other:1"), check_images),
    (
        "worker broker",
        _env("worker", "SCHEDULER_BROKER_URL", "redis://localhost/0"),
        check_shared_environment,
    ),
    (
        "beat schedule path",
        _env("beat", "SCHEDULER_SCHEDULE_FILE", "schedules.yaml"),
        check_shared_environment,
    ),
    (
        "password mismatch",
        _env("postgres", "POSTGRES_PASSWORD", "${POSTGRES_PASSWORD:-x}"),
        check_database_credentials,
    ),
    (
        "hard-coded password",
        _env("postgres", "POSTGRES_PASSWORD", "scheduler"),
        check_database_credentials,
    ),
    (
        "redis check",
        _set("redis", "healthcheck", {"test": ["CMD", "true"]}),
        check_backing_healthchecks,
    ),
    (
        "postgres bind",
        _set("postgres", "volumes", ["./pg:/var/lib/postgresql/data"]),
        check_postgres_volume,
    ),
    ("postgres no volume", _drop("postgres", "volumes"), check_postgres_volume),
    ("volume undeclared", _no_top_volume, check_postgres_volume),
    ("migrate restarts", _set("migrate", "restart", "on-failure"), check_migrate),
    ("migrate command", _set("migrate", "command", ["scheduler", "up"]), check_migrate),
    ("migrate no wait", _drop("migrate", "depends_on"), check_migrate),
    (
        "beat mount rw",
        _set("beat", "volumes", ["./schedules.yaml:/app/schedules.yaml"]),
        check_beat_mount,
    ),
    (
        "beat mount elsewhere",
        _set("beat", "volumes", ["./schedules.yaml:/etc/s.yaml:ro"]),
        check_beat_mount,
    ),
    (
        "beat mount wrong file",
        _set("beat", "volumes", ["./README.md:/app/schedules.yaml:ro"]),
        check_beat_mount,
    ),
    ("beat no mount", _drop("beat", "volumes"), check_beat_mount),
    ("beat short depends", _set("beat", "depends_on", ["migrate", "redis"]), check_depends),
    (
        "worker migrate started",
        _set(
            "worker",
            "depends_on",
            {
                "migrate": {"condition": "service_started"},
                "redis": {"condition": "service_healthy"},
            },
        ),
        check_depends,
    ),
    ("worker container_name", _set("worker", "container_name", "worker"), check_worker_scalable),
    ("worker host port", _set("worker", "ports", ["8000:8000"]), check_worker_scalable),
    (
        "worker long port",
        _set("worker", "ports", [{"target": 8000, "published": 8000}]),
        check_worker_scalable,
    ),
    ("beat runs a worker", _set("beat", "command", "celery -A scheduler worker"), check_commands),
    (
        "worker wrong app",
        _set("worker", "command", ["celery", "-A", "app", "worker"]),
        check_commands,
    ),
    ("beat no healthcheck", _drop("beat", "healthcheck"), check_healthchecks),
    ("redis no healthcheck", _drop("redis", "healthcheck"), check_healthchecks),
    ("flower check disabled", _set("flower", "healthcheck", {"disable": True}), check_healthchecks),
    (
        "worker pings $HOSTNAME of the host",
        _set(
            "worker",
            "healthcheck",
            {"test": ["CMD-SHELL", "celery -A scheduler inspect ping -d celery@$HOSTNAME"]},
        ),
        check_healthchecks,
    ),
    ("flower broker", _set("flower", "command", ["celery", "flower"]), check_flower),
    ("flower no port", _drop("flower", "ports"), check_flower),
    ("unknown top-level key", lambda d: d.update(service={}), check_compose_schema),
    ("unknown service key", _set("worker", "replicas", 2), check_compose_schema),
    (
        "depends on unknown",
        _set("beat", "depends_on", {"db": {"condition": "service_healthy"}}),
        check_compose_schema,
    ),
    (
        "bad condition",
        _set("beat", "depends_on", {"redis": {"condition": "healthy"}}),
        check_compose_schema,
    ),
    ("restart false", _set("migrate", "restart", False), check_compose_schema),
    ("bad interpolation", _env("beat", "X", "${BROKEN"), check_compose_schema),
    (
        "missing bind source",
        _set("beat", "volumes", ["./nope.yaml:/app/schedules.yaml:ro"]),
        check_compose_schema,
    ),
    ("no image", lambda d: _svc(d, "redis").pop("image"), check_compose_schema),
    (
        "bad duration",
        lambda d: _svc(d, "redis")["healthcheck"].update(interval="10 s"),
        check_compose_schema,
    ),
]


@pytest.mark.parametrize(
    ("mutate", "check"), [m[1:] for m in COMPOSE_MUTANTS], ids=[m[0] for m in COMPOSE_MUTANTS]
)
def test_compose_check_catches(
    compose: Compose, mutate: Callable[[Compose], None], check: Callable[[Compose], None]
) -> None:
    broken = copy.deepcopy(compose)
    mutate(broken)
    with pytest.raises(AssertionError):
        check(broken)


def _without(keyword: str) -> Callable[[list[Instruction]], list[Instruction]]:
    return lambda ins: [i for i in ins if i.keyword != keyword]


def _replace(
    keyword: str, value: str, which: int = -1
) -> Callable[[list[Instruction]], list[Instruction]]:
    def mutate(ins: list[Instruction]) -> list[Instruction]:
        at = [n for n, i in enumerate(ins) if i.keyword == keyword][which]
        return [*ins[:at], Instruction(ins[at].line, keyword, value), *ins[at + 1 :]]

    return mutate


def _user_right_after_last_from(ins: list[Instruction]) -> list[Instruction]:
    user = next(i for i in ins if i.keyword == "USER")
    rest = [i for i in ins if i.keyword != "USER"]
    at = max(n for n, i in enumerate(rest) if i.keyword == "FROM") + 1
    return [*rest[:at], user, *rest[at:]]


def _source_before_deps(ins: list[Instruction]) -> list[Instruction]:
    at = next(
        n
        for n, i in enumerate(ins)
        if i.keyword == "RUN" and any(map(is_dependency_install, shell_commands(i)))
    )
    return [*ins[:at], Instruction(0, "COPY", ". ./"), *ins[at:]]


def _map_copies(change: Callable[[str], str]) -> Callable[[list[Instruction]], list[Instruction]]:
    return lambda ins: [
        Instruction(i.line, i.keyword, change(i.value)) if i.keyword == "COPY" else i for i in ins
    ]


def _drop_copy(prefix: str) -> Callable[[list[Instruction]], list[Instruction]]:
    return lambda ins: [i for i in ins if not (i.keyword == "COPY" and i.value.startswith(prefix))]


def _append(keyword: str, value: str) -> Callable[[list[Instruction]], list[Instruction]]:
    return lambda ins: [*ins, Instruction(0, keyword, value)]


def _without_var_chown(ins: list[Instruction]) -> list[Instruction]:
    return [Instruction(i.line, i.keyword, re.sub(r"&&\s*chown[^&]*", "", i.value)) for i in ins]


def _without_dependency_step(ins: list[Instruction]) -> list[Instruction]:
    return [
        i
        for i in ins
        if not (i.keyword == "RUN" and any(map(is_dependency_install, shell_commands(i))))
    ]


def _without_no_deps_install(ins: list[Instruction]) -> list[Instruction]:
    return [
        Instruction(i.line, i.keyword, i.value.replace("--no-deps", ""))
        if i.keyword == "RUN"
        else i
        for i in ins
    ]


DOCKERFILE_MUTANTS: list[
    tuple[
        str, Callable[[list[Instruction]], list[Instruction]], Callable[[list[Instruction]], None]
    ]
] = [
    ("python 3.12", _replace("FROM", "python:3.12-slim AS base", 0), check_base_image),
    ("full python image", _replace("FROM", "python:3.11 AS base", 0), check_base_image),
    ("runtime from debian", _replace("FROM", "debian:bookworm-slim AS runtime"), check_base_image),
    ("no USER", _without("USER"), check_non_root_user),
    ("USER root", _replace("USER", "root"), check_non_root_user),
    ("USER 0:0", _replace("USER", "0:0"), check_non_root_user),
    ("USER before installs", _user_right_after_last_from, check_non_root_user),
    ("USER without a fixed uid", _replace("USER", "nobody-here"), check_non_root_user),
    ("COPY . before deps", _source_before_deps, check_dependency_layer),
    ("no dependency step", _without_dependency_step, check_dependency_layer),
    ("late dependency install", _append("RUN", "pip install celery"), check_dependency_layer),
    ("source installed with deps", _without_no_deps_install, check_dependency_layer),
    (
        "README not copied",
        _map_copies(lambda v: v.replace(" README.md", "")),
        check_package_build_inputs,
    ),
    ("jobs not copied", _drop_copy("jobs"), check_package_build_inputs),
    (
        "copies a missing file",
        _map_copies(lambda v: v.replace("schedules.yaml", "schedule.yaml")),
        check_copied_paths_exist,
    ),
    ("copies an ignored path", _append("COPY", "tests/ tests/"), check_copied_paths_exist),
    ("WORKDIR elsewhere", _replace("WORKDIR", "/srv"), check_workdir_and_var),
    ("var not writable", _without_var_chown, check_workdir_and_var),
    (
        "gcc left behind",
        _append("RUN", "apt-get update && apt-get install -y gcc libpq-dev"),
        check_no_build_tools,
    ),
    ("no CMD", _without("CMD"), check_default_command),
]


@pytest.mark.parametrize(
    ("mutate", "check"), [m[1:] for m in DOCKERFILE_MUTANTS], ids=[m[0] for m in DOCKERFILE_MUTANTS]
)
def test_dockerfile_check_catches(
    dockerfile: list[Instruction],
    mutate: Callable[[list[Instruction]], list[Instruction]],
    check: Callable[[list[Instruction]], None],
) -> None:
    broken = mutate(list(dockerfile))
    assert broken != dockerfile, "the mutation no longer applies to the Dockerfile"
    with pytest.raises(AssertionError):
        check(broken)


def test_parse_dockerfile_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile("FROM a AS b\n# c\nRUN x \\\n  # inside\n  && y\nCOPY --from=b p q\n")
    assert [(i.keyword, i.value) for i in parsed] == [
        ("FROM", "a AS b"),
        ("RUN", "x && y"),
        ("COPY", "--from=b p q"),
    ]
    assert parse_copy(parsed[2]) == Copy(parsed[2], "b", ["p"], "q")
