# One slim, non-root image for ingest, worker, read API, sandbox and the on-call CLI; the compose file picks the
# command. Only what runs in production is copied: bench/, chaos/, devtools/ and tests/ stay out
# (tests/common/test_imports.py). Built and run end to end by `make image-test` (docs/deploy.md).
#
# BASE is any Debian-like image with python3 (3.11+) and its venv module: the official python:3.11-slim by
# default, or one made from Debian's packages where no registry is reachable (devtools/image_test.py).
ARG BASE=python:3.11-slim

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
COPY console ./console
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . && /opt/venv/bin/pip check
# Checked complete: the build tools (the lock's setuptools, the venv's pip) have done their part.
RUN /opt/venv/bin/python -m pip uninstall --yes setuptools pip

# Runtime stage: the base plus the venv; the sources, the build tree and pip's temporary files stay behind.
FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
RUN groupadd --gid 10001 rolesync && useradd --create-home --uid 10001 --gid 10001 rolesync
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY plans.toml ./plans.toml
USER 10001
EXPOSE 8000 9191
CMD ["rolesync", "--help"]
