#!/usr/bin/env bash
# The compose stack, really run: builds the images from packaging/docker/ as users build them,
# brings up compose/docker-compose.yml, and drives it with the public CLI from this machine.
#
#   scripts/compose-check.sh        # as root, on Debian 12 (CI: .ci/run, after scripts/test.sh)
#
# On the 2-core development machine: about 13 min cold (Docker from apt, the base and project
# images built), 5 to 9 min with the cache below (images built; a quiet or a busy machine);
# docs/deploy.md has the stage times.
#
# What it does, one line per check, and how long each stage took:
#  - installs Docker (docker.io, docker-compose 1.29) and mmdebstrap from apt if missing;
#  - starts a private dockerd: its own data root (the cache below), socket, exec root and bridge,
#    stopped by its PID at the end; it never talks to a daemon it did not start (Debian's
#    /usr/bin/docker with DOCKER_HOST, whatever `docker` is first on PATH);
#  - makes the base images locally (no registry is reachable here): Debian bookworm with
#    mmdebstrap, and from it a stand-in for python:3.11-slim-bookworm (scripts/compose-check/),
#    which also carries this machine's extra CA certificates (its build context, never the
#    project's Dockerfiles); RabbitMQ, Redis and LocalStack's S3 (for MinIO) from Debian and PyPI;
#  - builds subtone/api, subtone/worker and subtone/triton-cpu from packaging/docker/ with the
#    base image as a build argument;
#  - checks the GPU override as far as a CPU allows: `docker-compose config` of both files, and
#    Triton's CPU image loading the GPU model configs with their instance kind swapped to CPU;
#  - brings up compose/docker-compose.yml with scripts/compose-check/docker-compose.check.yml
#    (only the images above swapped), waits for every service healthy and minio-init exited 0;
#  - creates a token (`docker-compose exec api subtone token create`), then with the CLI on this
#    machine: encode and decode a 100 MB cover, bytes compared; SIGKILL the worker while its job
#    is running, twice (`docker kill -s KILL`, and its process killed as the OOM killer would):
#    the job, followed by its id, still succeeds, run again, once the worker is back; RabbitMQ
#    and Redis restarted with jobs queued (none lost); the API and S3 ports published on
#    127.0.0.1 only; no container runs as root; the named volumes (and the jobs in them) survive
#    `down` and `up`. Questions about jobs go to the API (scripts/compose-check/jobs.py), and an
#    API that does not answer is a failure, never "no jobs".
# A failure stops with the last log lines of the containers concerned, and leaves nothing
# running (the stack down, its volumes removed, dockerd stopped).
#
# Settings (environment):
#   SUBTONE_COMPOSE_CACHE  the cache (dockerd's data root, the Debian rootfs):
#                          /var/tmp/subtone-compose-cache; delete it for a cold run
#   SUBTONE_CLI            the CLI command (default: .venv/bin/subtone, else `subtone`)
#   SUBTONE_COVER_MB       the cover's size for the round trip (100)
#   SUBTONE_KILL_COVER_MB  the cover's size for the killed-worker jobs (16)
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/scripts/compose-check
CACHE=${SUBTONE_COMPOSE_CACHE:-/var/tmp/subtone-compose-cache}
COVER_MB=${SUBTONE_COVER_MB:-100}
KILL_COVER_MB=${SUBTONE_KILL_COVER_MB:-16}
if [ -n "${SUBTONE_CLI:-}" ]; then
  read -r -a CLI <<<"$SUBTONE_CLI"
elif [ -x "$ROOT/.venv/bin/subtone" ]; then
  CLI=("$ROOT/.venv/bin/subtone")
else
  CLI=(subtone)
fi
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
COMPOSE_BIN=/usr/bin/docker-compose
PROJECT=subtone-check
BRIDGE=subtone-ck0
BRIDGE_CIDR=10.213.0.1/24
ADDRESS_POOL=10.214.0.0/16
PYTHON_BASE=subtone-check/python:3.11-slim-bookworm
DEBIAN_BASE=subtone-check/debian:bookworm
PORTS=(8600 9000 9001 15672)

WORK=$(mktemp -d /tmp/subtone-compose.XXXXXX)
export DOCKER_HOST=unix://$WORK/docker.sock
# BuildKit, through Debian's docker client (compose's builds too: COMPOSE_DOCKER_CLI_BUILD),
# which must come before any other `docker` on PATH.
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
export PATH=/usr/bin:/usr/sbin:$PATH
# The CLI's settings, upload sessions and downloads stay in the work folder.
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share \
  XDG_CACHE_HOME=$WORK/home/.cache XDG_STATE_HOME=$WORK/home/.local/state
mkdir -p "$HOME"
DOCKERD_PID=
STACK_UP=
PAUSED=

T_START=$(date +%s)
STAGE=
STAGE_T=$T_START
declare -a TIMES=()

stage() {
  local now
  now=$(date +%s)
  if [ -n "$STAGE" ]; then
    TIMES+=("$(printf '%-22s %4ds' "$STAGE" $((now - STAGE_T)))")
    printf 'time  %-22s %4ds\n' "$STAGE" $((now - STAGE_T))
  fi
  STAGE=$1
  STAGE_T=$now
  [ -n "$STAGE" ] && printf '\n== %s\n' "$STAGE"
  return 0
}
ok() { printf 'ok    %s\n' "$*"; }
note() { printf '      %s\n' "$*"; }

compose() {
  "$COMPOSE_BIN" --ansi never -p "$PROJECT" --env-file "$WORK/env" \
    -f "$ROOT/compose/docker-compose.yml" -f "$HERE/docker-compose.check.yml" "$@"
}
docker() { "$DOCKER" "$@"; }
# The effective uid and command line of each process of container $1, read from this host's
# /proc (the processes in the container's PID namespace). Not `docker top`: it runs ps over the
# host and parses its output, and failed now and then ("Couldn't find PID field in ps output")
# while the health checks' short-lived processes came and went. A process gone meanwhile is
# skipped; a container whose processes cannot be read at all is an error (the caller's).
container_processes() {
  local init ns dir uid args
  init=$(docker inspect -f '{{.State.Pid}}' "$1") || return 1
  ns=$(readlink "/proc/$init/ns/pid") || return 1
  for dir in /proc/[0-9]*; do
    [ "$(readlink "$dir/ns/pid" 2>/dev/null)" = "$ns" ] || continue
    uid=$(awk '/^Uid:/ {print $3; exit}' "$dir/status" 2>/dev/null) || continue
    args=$(tr '\0' ' ' < "$dir/cmdline" 2>/dev/null) || continue
    [ -n "$uid" ] && [ -n "$args" ] && printf '%s %s\n' "$uid" "$args"
  done
  return 0
}
# compose 1.29's `up` waits for health-checked dependencies without end while one restarts.
compose_up() { timeout 300 "$COMPOSE_BIN" --ansi never -p "$PROJECT" --env-file "$WORK/env" \
  -f "$ROOT/compose/docker-compose.yml" -f "$HERE/docker-compose.check.yml" up -d --no-build; }

# fail MESSAGE [SERVICE...]: the message, the services' last log lines (all of them if none
# named), then exit (the trap stops everything).
fail() {
  local message=$1
  shift
  trap - ERR
  printf 'FAIL  %s (stage: %s)\n' "$message" "$STAGE" >&2
  # In a command substitution: the script that runs it reports the failure, logs and all.
  [ "$BASH_SUBSHELL" -eq 0 ] || exit 1
  if [ -s "$WORK/api-errors.log" ]; then
    printf -- '---- the last errors of scripts/compose-check/jobs.py\n' >&2
    tail -n 5 "$WORK/api-errors.log" >&2
  fi
  if [ -n "$STACK_UP" ]; then
    local services=("$@")
    [ ${#services[@]} -gt 0 ] || services=("${LONG_RUNNING[@]}" minio-init)
    compose ps >&2 || true
    for s in "${services[@]}"; do
      printf -- '---- %s: last log lines\n' "$s" >&2
      compose logs --no-color --tail 40 "$s" >&2 || true
    done
  fi
  exit 1
}

cleanup() {
  local rc=$?
  trap - ERR
  set +e
  [ -z "$PAUSED" ] || "$DOCKER" unpause "$PAUSED" >/dev/null 2>&1
  if [ -n "$STACK_UP" ]; then
    compose down -v --remove-orphans >/dev/null 2>&1
  fi
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    kill "$DOCKERD_PID"
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$DOCKERD_PID" 2>/dev/null && kill -9 "$DOCKERD_PID"
  fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE"; fi
  for job in $(jobs -p); do kill "$job" 2>/dev/null; done
  rm -rf "$WORK"
  if [ $rc -eq 0 ]; then
    printf '\nall checks passed in %ds\n' $(($(date +%s) - T_START))
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Any other command that fails stops the check the same way, with the containers' last lines.
trap 'fail "line $LINENO: $BASH_COMMAND"' ERR

# wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 1
  done
}

# wait_pid PID SECONDS: PID's exit status, or 124 (and PID killed) after SECONDS.
wait_pid() {
  local deadline=$(($(date +%s) + $2))
  while kill -0 "$1" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      kill "$1" 2>/dev/null
      wait "$1" 2>/dev/null
      return 124
    fi
    sleep 1
  done
  wait "$1"
}

container() { compose ps -q "$1"; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$(container "$1")"; }
healthy() { [ "$(health "$1")" = healthy ]; }
LONG_RUNNING=(rabbitmq redis minio triton api worker)
all_healthy() {
  local s
  for s in "${LONG_RUNNING[@]}"; do healthy "$s" || return 1; done
}
wait_healthy() {
  local s
  for s in "$@"; do
    wait_for 240 "$s healthy" healthy "$s" || fail "$s is not healthy: $(health "$s")" "$s"
  done
}

cli() { "${CLI[@]}" "$@"; }

# api_jobs ARGS...: scripts/compose-check/jobs.py (this token's jobs, from the API); it fails,
# its reason kept in api-errors.log (fail prints it), when the API gives no answer.
api_jobs() { python3 "$HERE/jobs.py" "$@" 2>>"$WORK/api-errors.log"; }

make_wav() { # make_wav PATH MEGABYTES: 16-bit stereo 44.1 kHz noise
  python3 - "$1" "$2" <<'PY'
import os, sys, wave
path, mb = sys.argv[1], int(sys.argv[2])
frames = mb * 1_000_000 // 4
with wave.open(path, "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(44100)
    chunk = 1 << 20
    left = frames
    while left:
        n = min(chunk, left)
        w.writeframes(os.urandom(n * 4))
        left -= n
PY
}

# ------------------------------------------------------------------------------------------------
stage "tools"
need=()
[ -x "$DOCKERD" ] && [ -x "$DOCKER" ] || need+=(docker.io)
[ -x "$COMPOSE_BIN" ] || need+=(docker-compose)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
  note "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
ok "tools: $("$DOCKERD" --version | cut -d, -f1), $("$COMPOSE_BIN" version --short 2>/dev/null), CLI ${CLI[*]}"
for port in "${PORTS[@]}"; do
  if ss -Hltn "sport = :$port" | grep -q .; then fail "port $port is taken on this machine"; fi
done
"${CLI[@]}" --help >/dev/null || fail "the CLI (${CLI[*]}) does not run: set SUBTONE_CLI"

# ------------------------------------------------------------------------------------------------
stage "dockerd"
mkdir -p "$CACHE/docker"
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  ip link set "$BRIDGE" up
fi
"$DOCKERD" --data-root "$CACHE/docker" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
  --host "$DOCKER_HOST" --bridge "$BRIDGE" --default-address-pool "base=$ADDRESS_POOL,size=24" \
  --storage-driver overlay2 --log-level warn >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
if ! wait_for 60 dockerd docker info; then
  tail -n 30 "$WORK/dockerd.log" >&2
  fail "dockerd did not start"
fi
ok "dockerd $(docker version -f '{{.Server.Version}}') (pid $DOCKERD_PID) on $DOCKER_HOST, data root $CACHE/docker"
# Left over by an interrupted run.
STACK_UP=1
compose down -v --remove-orphans >/dev/null 2>&1 || true
STACK_UP=

# ------------------------------------------------------------------------------------------------
stage "base images"
if ! docker image inspect "$DEBIAN_BASE" >/dev/null 2>&1; then
  if [ ! -s "$CACHE/bookworm-minbase.tar" ]; then
    mmdebstrap --quiet --format=tar --variant=minbase bookworm "$CACHE/bookworm-minbase.tar.part" \
      http://deb.debian.org/debian
    mv "$CACHE/bookworm-minbase.tar.part" "$CACHE/bookworm-minbase.tar"
  fi
  docker import "$CACHE/bookworm-minbase.tar" "$DEBIAN_BASE" >/dev/null
fi
ok "base image $DEBIAN_BASE (mmdebstrap --variant=minbase bookworm)"

# The stand-ins' context: scripts/compose-check/, with this machine's extra CA certificates.
CONTEXT=$WORK/context
cp -r "$HERE" "$CONTEXT"
mkdir -p "$CONTEXT/ca"
cp /usr/local/share/ca-certificates/*.crt "$CONTEXT/ca/" 2>/dev/null || true
build_local() { # build_local DOCKERFILE TAG [ARGS...]
  local file=$1 tag=$2
  shift 2
  docker build -q -f "$CONTEXT/$file" -t "$tag" --build-arg "DEBIAN_IMAGE=$DEBIAN_BASE" \
    --build-arg "BASE_IMAGE=$PYTHON_BASE" "$@" "$CONTEXT" >"$WORK/build.log" 2>&1 \
    || { tail -n 40 "$WORK/build.log" >&2; fail "docker build $file"; }
}
build_local python.Dockerfile "$PYTHON_BASE"
ok "base image $PYTHON_BASE: $(docker run --rm "$PYTHON_BASE" python --version) (stand-in for python:3.11-slim-bookworm)"
build_local rabbitmq.Dockerfile subtone-check/rabbitmq:local
build_local redis.Dockerfile subtone-check/redis:local
# LocalStack needs Python 3.13: pyenv's, from this machine, copied into the build.
PY313=${SUBTONE_PYTHON313:-$(ls -d /root/.pyenv/versions/3.13.* 2>/dev/null | sort -V | tail -n 1)}
[ -x "$PY313/bin/python3.13" ] || fail "no Python 3.13 for LocalStack (set SUBTONE_PYTHON313)"
tar -C "$PY313" --exclude=./lib/python3.13/test --exclude='*.a' --exclude=__pycache__ \
  --exclude=./lib/python3.13/site-packages -cf "$CONTEXT/python3.13.tar" .
build_local localstack.Dockerfile subtone-check/localstack:local
ok "stand-in images: rabbitmq $(docker run --rm --entrypoint dpkg-query subtone-check/rabbitmq:local -W -f '${Version}' rabbitmq-server), redis $(docker run --rm --entrypoint dpkg-query subtone-check/redis:local -W -f '${Version}' redis-server), localstack $(docker run --rm --entrypoint python3 subtone-check/localstack:local -c 'import importlib.metadata as m; print(m.version("localstack-core"))')"

# ------------------------------------------------------------------------------------------------
stage "env"
cp "$ROOT/compose/.env.example" "$WORK/env"
for v in RABBITMQ_DEFAULT_PASS MINIO_ROOT_PASSWORD SUBTONE_S3_SECRET_KEY SUBTONE_SIGNING_SECRET; do
  sed -i "s|^$v=.*|$v=$(openssl rand -hex 24)|" "$WORK/env"
done
sed -i "s|^COMPOSE_PROJECT_NAME=.*|COMPOSE_PROJECT_NAME=$PROJECT|" "$WORK/env"
# LocalStack checks pre-signed URLs against the secret key "test" (it has no users of ours).
sed -i "s|^SUBTONE_S3_SECRET_KEY=.*|SUBTONE_S3_SECRET_KEY=test|" "$WORK/env"
ok "compose/.env from compose/.env.example with fresh secrets (the S3 key LocalStack's)"

# ------------------------------------------------------------------------------------------------
stage "project images"
# As users build them (`up --build`): compose builds subtone/api, subtone/worker and
# subtone/triton-cpu from packaging/docker/; the check's override only names the base image.
timeout 1500 "$COMPOSE_BIN" --ansi never -p "$PROJECT" --env-file "$WORK/env" \
  -f "$ROOT/compose/docker-compose.yml" -f "$HERE/docker-compose.check.yml" build \
  --build-arg "PYTHON_IMAGE=$PYTHON_BASE" triton api worker >"$WORK/build.log" 2>&1 \
  || { tail -n 60 "$WORK/build.log" >&2; fail "docker-compose build"; }
for image in subtone/api:0.1.0 subtone/worker:0.1.0 subtone/triton-cpu:0.1.0; do
  docker image inspect "$image" >/dev/null 2>&1 || fail "docker-compose build made no $image"
  ok "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1 / 1e6}')) from packaging/docker/ with PYTHON_IMAGE=$PYTHON_BASE"
done

# ------------------------------------------------------------------------------------------------
stage "gpu override"
gpu_config=$("$COMPOSE_BIN" --env-file "$WORK/env" -f "$ROOT/compose/docker-compose.yml" \
  -f "$ROOT/docker-compose.gpu.yml" config) || fail "docker-compose config of both files"
grep -q 'dockerfile: packaging/docker/triton.Dockerfile' <<<"$gpu_config" \
  && grep -q 'driver: nvidia' <<<"$gpu_config" && grep -q -- '--model-repository=/models-gpu' <<<"$gpu_config" \
  || fail "the GPU override does not give Triton NVIDIA's image, the GPU and /models-gpu"
ok "docker-compose config of compose/docker-compose.yml + docker-compose.gpu.yml: triton.Dockerfile, one nvidia GPU, /models-gpu"
# The GPU configs, instance kind swapped to CPU, loaded by the CPU image's Triton.
mkdir -p "$WORK/models-gpu-on-cpu"
cp -r "$ROOT/model_repository/." "$WORK/models-gpu-on-cpu/"
cp -r "$ROOT/packaging/triton/gpu/." "$WORK/models-gpu-on-cpu/"
sed -i 's/KIND_GPU/KIND_CPU/' "$WORK/models-gpu-on-cpu"/*/config.pbtxt
chmod -R a+rX "$WORK/models-gpu-on-cpu"
docker run -d --name subtone-check-gpu-configs --shm-size 512m \
  -v "$WORK/models-gpu-on-cpu:/models-gpu-on-cpu:ro" subtone/triton-cpu:0.1.0 \
  --model-repository=/models-gpu-on-cpu >/dev/null
gpu_ready() { docker exec subtone-check-gpu-configs python3 /usr/local/bin/subtone-healthcheck url http://127.0.0.1:8000/v2/health/ready; }
if ! wait_for 120 "triton ready" gpu_ready; then
  docker logs --tail 40 subtone-check-gpu-configs >&2
  docker rm -f subtone-check-gpu-configs >/dev/null
  fail "Triton did not load the GPU model configs (instance kind CPU)"
fi
loaded=$(docker logs subtone-check-gpu-configs 2>&1 | grep -c "successfully loaded" || true)
docker rm -f subtone-check-gpu-configs >/dev/null
ok "Triton (CPU image) loaded packaging/triton/gpu/ configs with KIND_GPU -> KIND_CPU: ready, $loaded models loaded"

# ------------------------------------------------------------------------------------------------
stage "stack up"
STACK_UP=1
compose_up >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "docker-compose up" rabbitmq redis minio minio-init triton; }
wait_healthy "${LONG_RUNNING[@]}"
ok "every service healthy: ${LONG_RUNNING[*]}"
init_state=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(compose ps -q minio-init)")
[ "$init_state" = "exited 0" ] || fail "minio-init: $init_state" minio-init
ok "minio-init exited 0 ($(compose logs --no-color minio-init | grep -o 's3-init: .*' | tail -n 1))"

# ------------------------------------------------------------------------------------------------
stage "token"
token=$(compose exec -T api subtone token create ci | grep -o -E '[A-Za-z0-9_.~-]{32,}' | tail -n 1) \
  || fail "subtone token create" api
[ -n "$token" ] || fail "no token in the output of subtone token create" api
export SUBTONE_URL=http://127.0.0.1:8600 SUBTONE_TOKEN=$token SUBTONE_PASSPHRASE=compose-check-passphrase
ok "docker-compose exec api subtone token create ci: a token of ${#token} characters"

# ------------------------------------------------------------------------------------------------
stage "round trip"
DATA=$WORK/data
mkdir -p "$DATA"
make_wav "$DATA/cover.wav" "$COVER_MB"
head -c 300000 /dev/urandom >"$DATA/secret.bin"
t0=$(date +%s)
cli encode "$DATA/cover.wav" "$DATA/secret.bin" -o "$DATA/stego.wav" >"$WORK/encode.log" 2>&1 \
  || { cat "$WORK/encode.log" >&2; fail "subtone encode" worker api triton minio; }
t1=$(date +%s)
[ "$(stat -c %s "$DATA/stego.wav")" = "$(stat -c %s "$DATA/cover.wav")" ] || fail "the stego file's size differs from the cover's"
cmp -s "$DATA/stego.wav" "$DATA/cover.wav" && fail "the stego file is the cover, unchanged"
mkdir -p "$DATA/out"
cli decode "$DATA/stego.wav" -o "$DATA/out/secret.bin" >"$WORK/decode.log" 2>&1 \
  || { cat "$WORK/decode.log" >&2; fail "subtone decode" worker api triton minio; }
t2=$(date +%s)
cmp "$DATA/secret.bin" "$DATA/out/secret.bin" >&2 || fail "the decoded secret differs from the secret"
ok "subtone encode of a $(($(stat -c %s "$DATA/cover.wav") / 1000000)) MB cover ($((t1 - t0)) s) and decode ($((t2 - t1)) s): secret bytes identical"

# ------------------------------------------------------------------------------------------------
stage "worker killed"
# kill_during_job HOW N: SIGKILL the worker while it runs a job, bring it back, and the job
# (the CLI waiting on it) still succeeds, with the right bytes.
#   docker    `docker kill -s KILL`: Docker counts that as a manual stop and its restart policy
#             leaves the container down; `docker-compose up -d worker` restarts it;
#   process   the worker's main process SIGKILLed from the host, as the kernel's OOM killer
#             would: `restart: unless-stopped` restarts the container by itself.
# A job of the plane protocol takes a second or two, less than it takes to see it running and
# kill the worker. So Triton is paused (`docker pause`, its processes frozen) while the job
# starts: the job is running, holds its lease and waits on its first window, and cannot finish
# before the kill, whatever the machine's speed. Triton is let go right after the kill, before
# the worker is back. (Pausing a container marks it unhealthy until its next health check
# passes: compose starts the worker only once Triton is healthy again.)
kill_during_job() {
  local how=$1 n=$2 c pid restarts job state encode_pid
  c=$(container worker)
  restarts=$(docker inspect -f '{{.RestartCount}}' "$c")
  api_jobs ids >"$WORK/known-jobs" || fail "GET /v1/jobs" api
  PAUSED=$(container triton)
  docker pause "$PAUSED" >/dev/null
  cli encode "$DATA/kill.wav" "$DATA/secret.bin" -o "$DATA/killed$n.wav" >"$WORK/killed$n.log" 2>&1 &
  encode_pid=$!
  job=$(api_jobs wait-running "$WORK/known-jobs" 180) \
    || { cat "$WORK/killed$n.log" >&2; fail "the encode's job did not start running" worker api; }
  if [ "$how" = docker ]; then
    docker kill -s KILL "$c" >/dev/null
    [ "$(docker inspect -f '{{.State.Status}}' "$c")" = exited ] || fail "the killed worker is not down" worker
  else
    pid=$(docker inspect -f '{{.State.Pid}}' "$c")
    kill -KILL "$pid"
  fi
  # Nothing settles the job now but a worker: the state it was killed in.
  state=$(api_jobs show "$job") || fail "GET /v1/jobs/$job" api
  docker unpause "$PAUSED" >/dev/null
  PAUSED=
  wait_healthy triton
  [ "${state%% *}" = running ] || fail "job $job was $state when the worker was killed, not running" worker
  if [ "$how" = docker ]; then
    ok "docker kill -s KILL the worker while job $job ran (Triton paused): the job left $state"
    compose up -d --no-build worker >/dev/null 2>&1 || fail "docker-compose up -d worker" worker
    note "docker left it down (a kill is a manual stop); docker-compose up -d worker restarted it"
  else
    ok "kill -KILL the worker's main process (pid $pid on this machine) while job $job ran (Triton paused): the job left $state"
    restarted() { [ "$(docker inspect -f '{{.RestartCount}}' "$c")" -gt "$restarts" ]; }
    wait_for 60 "worker restarted" restarted || fail "restart: unless-stopped did not restart the worker" worker
    note "restart: unless-stopped restarted it (restart count $restarts -> $(docker inspect -f '{{.RestartCount}}' "$c"))"
  fi
  wait_pid "$encode_pid" 240 \
    || { cat "$WORK/killed$n.log" >&2; fail "the job did not survive the killed worker" worker; }
  state=$(api_jobs show "$job") || fail "GET /v1/jobs/$job" api
  [ "${state%% *}" = succeeded ] && [ "${state##*attempts=}" -ge 2 ] \
    || fail "job $job after the killed worker: $state (expected succeeded, run again)" worker
  cli decode "$DATA/killed$n.wav" -o "$DATA/out/killed$n.bin" >"$WORK/decode-killed$n.log" 2>&1 \
    || { cat "$WORK/decode-killed$n.log" >&2; fail "decode after the killed worker" worker; }
  cmp "$DATA/secret.bin" "$DATA/out/killed$n.bin" >&2 || fail "the secret differs after the killed worker"
  rm -f "$DATA/killed$n.wav"
  ok "job $job, running when the worker was killed ($how), $state once the worker was back: secret bytes identical"
}
make_wav "$DATA/kill.wav" "$KILL_COVER_MB"
kill_during_job docker 1
kill_during_job process 2
rm -f "$DATA/kill.wav"

# ------------------------------------------------------------------------------------------------
stage "broker and store restart"
compose stop worker >/dev/null 2>&1 || fail "docker-compose stop worker" worker
# Three covers, one per job (three encodes of one file at once failed once: docs/deploy.md).
for i in 1 2 3; do make_wav "$DATA/small$i.wav" 8; done
api_jobs ids >"$WORK/known-jobs" || fail "GET /v1/jobs" api
pids=()
for i in 1 2 3; do
  cli encode "$DATA/small$i.wav" "$DATA/secret.bin" -o "$DATA/queued$i.wav" >"$WORK/queued$i.log" 2>&1 &
  pids+=($!)
done
new_in() { api_jobs new "$WORK/known-jobs" | grep -c " $1 " || true; }
three_queued() { [ "$(new_in queued)" -eq 3 ]; }
if ! wait_for 180 "3 jobs queued" three_queued; then
  tail -n 20 "$WORK"/queued*.log >&2
  api_jobs new "$WORK/known-jobs" >&2
  fail "the 3 jobs were not queued" api
fi
ok "3 jobs queued, no worker running: $(api_jobs new "$WORK/known-jobs" | cut -d' ' -f1 | tr '\n' ' ')"
compose restart rabbitmq redis >/dev/null 2>&1 || fail "docker-compose restart rabbitmq redis" rabbitmq redis
wait_healthy rabbitmq redis
ok "RabbitMQ and Redis restarted with the jobs queued"
wait_for 30 "the API back on Redis" three_queued \
  || fail "queued jobs lost from Redis: $(api_jobs new "$WORK/known-jobs" | tr '\n' ' ')" redis api
compose start worker >/dev/null 2>&1 || fail "docker-compose start worker" worker
for i in 1 2 3; do
  wait_pid "${pids[$((i - 1))]}" 240 \
    || { cat "$WORK/queued$i.log" >&2; fail "queued job $i did not succeed" worker rabbitmq redis; }
done
[ "$(new_in succeeded)" -eq 3 ] || fail "the 3 jobs: $(api_jobs new "$WORK/known-jobs" | tr '\n' ' ')" worker
cli decode "$DATA/queued3.wav" -o "$DATA/out/secret3.bin" >"$WORK/decode3.log" 2>&1 \
  || { cat "$WORK/decode3.log" >&2; fail "decode of a queued job's result" worker; }
cmp "$DATA/secret.bin" "$DATA/out/secret3.bin" >&2 || fail "the secret differs after the restarts"
ok "all 3 queued jobs succeeded once a worker was back (none lost), secret bytes identical"

# ------------------------------------------------------------------------------------------------
stage "isolation"
published=$(for s in api minio rabbitmq; do
  docker inspect -f '{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{$p}}={{.HostIp}}:{{.HostPort}} {{end}}{{end}}' "$(container "$s")"
done | tr '\n' ' ')
for binding in $published; do
  [ "${binding#*=}" = "${binding#*=127.0.0.1:}" ] && fail "published beyond 127.0.0.1: $binding"
done
ss -Hltn | grep -E ':(8600|9000)\b' | grep -q -v '127.0.0.1:' && fail "8600 or 9000 listens beyond 127.0.0.1 on this machine"
ok "published ports on 127.0.0.1 only: $published"
for s in "${LONG_RUNNING[@]}"; do
  c=$(container "$s")
  # Health checks (docker exec) are the image's user too, but RabbitMQ's and Redis's stand-ins
  # start as root and drop to their user, as the official images do: only the service counts.
  processes=$(container_processes "$c") || fail "cannot read the processes of $s" "$s"
  [ -n "$processes" ] || fail "no process of $s found in /proc" "$s"
  uids=$(awk '$0 !~ /subtone-healthcheck|rabbitmq-diagnostics|redis-cli|python3 -c/ {print $1}' <<<"$processes" | sort -u | tr '\n' ' ')
  case " $uids " in *" 0 "*) fail "$s runs a process as root: $processes" "$s" ;; esac
  user=$(docker inspect -f '{{.Config.User}}' "$c")
  note "$s: processes run as uid ${uids% } (image user ${user:-root, dropped by its entrypoint})"
done
ok "no container runs a process as root"

# ------------------------------------------------------------------------------------------------
stage "volumes"
# The stack's three (docker-compose 1.29 also makes the observability profile's two, unused).
volumes="${PROJECT}_rabbitmq-data ${PROJECT}_redis-data ${PROJECT}_minio-data"
for v in $volumes; do
  docker volume inspect "$v" >/dev/null 2>&1 || fail "no volume $v: $(docker volume ls -q | tr '\n' ' ')"
done
# A marker in each volume (on this machine, under the daemon's data root): the same volume,
# not a new empty one, after down and up. (A local volume's CreatedAt is its folder's mtime.)
marker=compose-check-$(openssl rand -hex 8)
for v in $volumes; do touch "$(docker volume inspect -f '{{.Mountpoint}}' "$v")/.$marker"; done
succeeded_before=$(api_jobs count succeeded) || fail "GET /v1/jobs" api
compose down >/dev/null 2>&1 || fail "docker-compose down"
left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
[ "$left" -eq 0 ] || fail "docker-compose down left $left containers"
ok "docker-compose down: no container left, volumes kept: $volumes"
compose_up >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "docker-compose up again"; }
wait_healthy "${LONG_RUNNING[@]}"
for v in $volumes; do
  [ -e "$(docker volume inspect -f '{{.Mountpoint}}' "$v")/.$marker" ] || fail "the volume $v was re-created"
done
succeeded_after=$(api_jobs count succeeded) || fail "GET /v1/jobs after down and up" api
[ "$succeeded_after" -eq "$succeeded_before" ] && [ "$succeeded_after" -ge 10 ] \
  || fail "jobs after down/up: $succeeded_after succeeded, $succeeded_before before" redis api
queues=$(compose exec -T rabbitmq rabbitmqctl -q list_queues name durable | awk '$2 == "true" {print $1}' | sort | tr '\n' ' ') \
  || fail "rabbitmqctl list_queues" rabbitmq
[ "$queues" = "subtone-jobs subtone-jobs.DQ subtone-jobs.XQ " ] || fail "RabbitMQ's durable queues after down and up: $queues" rabbitmq
ok "docker-compose up again: same volumes, the token and its $succeeded_after succeeded jobs still there (Redis AOF), RabbitMQ's durable queues $queues"

stage ""
printf '\nstage times:\n'
printf '  %s\n' "${TIMES[@]}"
