# Triton on the CPU, for the CPU compose stack (compose/docker-compose.yml): the tritonserver
# that the nvidia-pytriton wheel ships (Triton 2.51, as `subtone standalone` runs it) on the plain
# Python image, a few hundred MB instead of NVIDIA's image of many GB. From the repository root:
#   docker build -f packaging/docker/triton-cpu.Dockerfile -t subtone/triton-cpu:0.1.0 .
# The GPU stack (docker-compose.gpu.yml) uses triton.Dockerfile, on NVIDIA's image.
#
# The python backend's stub embeds the image's libpython3.11 and takes its prefix from the first
# `python3` on PATH, so the models find numpy and the project in the image's site-packages
# (server/integrations/tritonserver.py explains the same set-up for standalone mode). The
# backend and the stub are copied where Triton looks for them; LD_LIBRARY_PATH names the
# wheel's libraries. PYTHON_IMAGE is the base image of both stages.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- wheel: the project as a wheel ---------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY packaging/docker/build-requirements.txt /tmp/
RUN pip install --only-binary=:all: -r /tmp/build-requirements.txt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY subtone ./subtone
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# --- triton ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# The wheel's server, its python backend and the stub for this Python under /opt/tritonserver
# (where NVIDIA's image has them), and numpy as pinned for the server images (the python backend
# needs numpy<2), numba for the kernel and scipy for the robust mode. Nothing else of pytriton's
# dependencies: only its server binary is used.
RUN groupadd --system --gid 10001 subtone \
    && useradd --system --uid 10001 --gid subtone --create-home --home-dir /home/subtone \
       --shell /usr/sbin/nologin subtone \
    && pip install --no-deps --only-binary=:all: "nvidia-pytriton==0.7.0" "numpy==1.26.4" \
       "numba==0.68.1" "llvmlite==0.50.0" "scipy==1.17.1" \
    && site=$(python3 -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("pytriton").origin).rsplit("/", 1)[0])') \
    && version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
    && server="$site/pytriton/tritonserver" \
    && mkdir -p /opt/tritonserver/bin /opt/tritonserver/backends/python \
    && ln -s "$server/bin/tritonserver" /opt/tritonserver/bin/tritonserver \
    && ln -s "$site/nvidia_pytriton.libs" /opt/tritonserver/lib \
    && cp "$server/backends/python/libtriton_python.so" \
          "$server/backends/python/triton_python_backend_utils.py" \
          "$server/python_backend_stubs/$version/triton_python_backend_stub" \
          /opt/tritonserver/backends/python/
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
# The models compile the numba kernel when they load (subtone.stego.kernel.warm_up): about a
# minute on two busy cores, at every start of a new container. Compiled once here instead, into
# NUMBA_CACHE_DIR, which the models load in a second or two. numba keys its cache by CPU: on
# a machine of another CPU the models compile it at start, into the same folder (the server's
# user may write there).
ENV NUMBA_CACHE_DIR=/var/cache/subtone-numba
RUN python3 -c "from subtone.stego.kernel import warm_up; warm_up()" \
    && chown -R 10001:10001 "$NUMBA_CACHE_DIR"
COPY packaging/docker/healthcheck.py /usr/local/bin/subtone-healthcheck
COPY model_repository /models
COPY model_repository /models-gpu
COPY packaging/triton/gpu /models-gpu
ENV PATH=/opt/tritonserver/bin:$PATH \
    LD_LIBRARY_PATH=/opt/tritonserver/lib
USER 10001:10001
# HTTP (health, /v2), gRPC (the worker's inference calls), Prometheus metrics.
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python3", "/usr/local/bin/subtone-healthcheck", "url", "http://127.0.0.1:8000/v2/health/ready"]
# As triton.Dockerfile: 64 MiB of python-backend shared memory per model instance, in-flight
# inferences get 30 s after SIGTERM, every model loaded at start under explicit model control
# (the worker reloads a model whose stub crashed). "Failed to initialize NVML" is harmless.
ENTRYPOINT ["tritonserver", \
    "--backend-directory=/opt/tritonserver/backends", \
    "--backend-config=python,shm-default-byte-size=67108864", \
    "--backend-config=python,shm-growth-byte-size=16777216", \
    "--disable-auto-complete-config", \
    "--allow-gpu-metrics=false", \
    "--model-control-mode=explicit", "--load-model=*", \
    "--exit-timeout-secs=30"]
CMD ["--model-repository=/models"]
