# One slim, non-root image for ingest, worker, read API, sandbox and the on-call CLI; the compose file picks the
# command. Only what runs in production is copied: bench/, chaos/ and tests/ stay out (tests/common/test_imports.py).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
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
RUN pip install . && useradd --create-home --uid 10001 rolesync
COPY plans.toml ./plans.toml
USER 10001
EXPOSE 8000 9191
CMD ["rolesync", "--help"]
