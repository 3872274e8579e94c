# Triton on NVIDIA's image, for a GPU (docker-compose.gpu.yml; the CPU stack uses
# triton-cpu.Dockerfile instead: no image of many GB for a CPU). From the repository root:
#   docker build -f packaging/docker/triton.Dockerfile -t subtone/triton:0.1.0 .
# The models import `server.stego` and numpy<2, so the project is installed (without its other
# dependencies) into the Python that the image's python-backend stub embeds. 24.12 is the first
# release on Ubuntu 24.04 with Python 3.12 (24.11 and earlier: Python 3.10, below our >=3.11).
#
# Two model repositories, same models: /models (CPU instance groups, the default) and
# /models-gpu (GPU instance groups, from packaging/triton/gpu/). Pick one with the argument:
#   docker run ... subtone/triton:0.1.0 --model-repository=/models-gpu
# PYTHON_IMAGE (the stage that builds the project's wheel) and TRITON_IMAGE are the base images.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.12-py3

# --- wheel: the project as a wheel, built where our Python is ------------------------------------
FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY packaging/docker/build-requirements.txt /tmp/
RUN pip install --only-binary=:all: -r /tmp/build-requirements.txt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY subtone ./subtone
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# --- triton ---------------------------------------------------------------------------------------
FROM ${TRITON_IMAGE}
# Ubuntu 24.04 marks its Python externally managed; this image's Python is ours to fill.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PYTHONDONTWRITEBYTECODE=1
# An unprivileged user, and the dependencies before our code: numpy as pinned for the server
# images (requirements.txt; the python backend needs numpy<2), from its cp312 wheel; numba for
# the kernel, scipy for the robust mode.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/subtone \
       --shell /usr/sbin/nologin subtone \
    && python3 -m pip install --only-binary=:all: "numpy==1.26.4" "numba==0.68.1" "scipy==1.17.1"
# The kernel's CUDA version (subtone/stego/_kernel_cuda.py) on KIND_GPU instances: NVIDIA's
# numba CUDA target with the CUDA 12 NVVM, runtime and bindings as wheels (the driver comes from
# the host). Without a usable GPU the models run the CPU kernel. Not built here (no GPU, no
# registry): see docs/deploy.md.
RUN python3 -m pip install --only-binary=:all: "numba-cuda[cu12]==0.30.4"
ENV NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0
COPY --from=wheel /wheels /tmp/wheels
RUN python3 -m pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
COPY packaging/docker/healthcheck.py /usr/local/bin/subtone-healthcheck
COPY model_repository /models
COPY model_repository /models-gpu
COPY packaging/triton/gpu /models-gpu
USER 10001:10001
# HTTP (health, /v2), gRPC (the worker's inference calls), Prometheus metrics.
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python3", "/usr/local/bin/subtone-healthcheck", "url", "http://127.0.0.1:8000/v2/health/ready"]
# Python-backend shared memory: 64 MiB per model instance (a batch of 16 one-MiB windows in and
# out, as server/integrations/tritonserver.py sizes it); the container's /dev/shm must hold it.
# --exit-timeout-secs: in-flight inferences get this long after SIGTERM.
# Explicit model control, every model loaded at start: the worker reloads a model whose stub
# crashed (Triton's python backend does not restart a dead stub, and still answers healthy).
ENTRYPOINT ["/opt/nvidia/nvidia_entrypoint.sh", "tritonserver", \
    "--backend-config=python,shm-default-byte-size=67108864", \
    "--backend-config=python,shm-growth-byte-size=16777216", \
    "--disable-auto-complete-config", \
    "--model-control-mode=explicit", "--load-model=*", \
    "--exit-timeout-secs=30"]
CMD ["--model-repository=/models"]
