# The API and the worker: one build, two targets. From the repository root:
#   docker build -f packaging/docker/server.Dockerfile --target api -t subtone/api:0.1.0 .
#   docker build -f packaging/docker/server.Dockerfile --target worker -t subtone/worker:0.1.0 .
# Same code, same dependencies; only the command and the health check differ.
# PYTHON_IMAGE: the base of both stages (an image of your own registry or mirror, say).
# No `# syntax=` line: the builder built into Docker reads this file without asking a registry.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: a virtual environment with the pinned dependencies, then the project -----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first: this layer is rebuilt only when the pins change, not with every code change.
# The build tools are pinned too (build-requirements.txt), and the project is built with them
# (--no-build-isolation) rather than with whatever setuptools is newest on the day.
COPY packaging/docker/requirements.txt packaging/docker/build-requirements.txt /tmp/
RUN pip install --only-binary=:all: -r /tmp/requirements.txt -r /tmp/build-requirements.txt
COPY pyproject.toml README.md /src/
COPY subtone /src/subtone
COPY server /src/server
COPY desktop /src/desktop
RUN pip install --no-deps --no-build-isolation /src

# --- runtime: the environment alone, as an unprivileged user ------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 subtone \
    && useradd --system --uid 10001 --gid subtone --create-home --home-dir /home/subtone \
       --shell /usr/sbin/nologin subtone
COPY --from=build /opt/venv /opt/venv
COPY packaging/docker/healthcheck.py /usr/local/bin/subtone-healthcheck
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /home/subtone
USER 10001:10001

# --- worker: `python -m server.worker`, the Dramatiq consumer ------------------------------------
FROM runtime AS worker
# SIGTERM: the worker finishes or hands back its message, then exits (Kubernetes waits
# terminationGracePeriodSeconds, compose stop_grace_period).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["subtone-healthcheck", "worker"]
CMD ["python", "-m", "server.worker"]

# --- api: `python -m server.api`, uvicorn on SUBTONE_API_PORT -----------------------------------
FROM runtime AS api
ENV SUBTONE_API_HOST=0.0.0.0
EXPOSE 8600
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["subtone-healthcheck", "api"]
CMD ["python", "-m", "server.api"]
