# Production image of the scheduler (SPEC §8): beat, workers and the `scheduler` CLI.
#
#   docker build -t scheduler:local .
#   docker run --rm scheduler:local                      # scheduler --help
#   docker compose up -d                                 # the whole stack, see README
#
# Every dependency ships as a wheel for linux/amd64 and linux/arm64 (psycopg[binary],
# ruamel.yaml.clib, ...), so no compiler is ever installed and none is left behind.

FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH


# --- dependencies: rebuilt only when pyproject.toml changes ------------------------------
FROM base AS deps

RUN python -m venv /opt/venv
WORKDIR /build
COPY pyproject.toml ./
# Install [project].dependencies alone: the source is not in this stage, so editing
# scheduler/*.py or jobs/*.py never invalidates this (slow) layer.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && pip install -r requirements.txt


# --- runtime -----------------------------------------------------------------------------
FROM base AS runtime

RUN groupadd --system --gid 10001 scheduler \
    && useradd --system --uid 10001 --gid scheduler --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin scheduler

COPY --from=deps /opt/venv /opt/venv

WORKDIR /app
# README.md is the package's `readme` in pyproject.toml: building the package needs it.
COPY pyproject.toml README.md ./
COPY scheduler/ scheduler/
COPY jobs/ jobs/
COPY schedules.yaml ./
RUN pip install --no-deps . \
    && rm -rf build scheduler.egg-info \
    && mkdir -p /app/var \
    && chown scheduler:scheduler /app/var

# Defaults for a container; docker-compose.yml sets the broker and database URLs.
# Without them the SQLite defaults under /app/var apply (enough for `scheduler up`).
ENV SCHEDULER_SCHEDULE_FILE=/app/schedules.yaml

USER 10001:10001

CMD ["scheduler", "--help"]
