"""Run the real ``tritonserver`` binary that ships in the ``nvidia-pytriton`` wheel.

The wheel holds Triton (``pytriton/tritonserver/bin/tritonserver``), the python backend
(``backends/python``), one python-backend stub per Python version
(``python_backend_stubs/3.X/triton_python_backend_stub``) and the shared libraries both need
(``nvidia_pytriton.libs/``, next to the ``pytriton`` package). To serve our
``model_repository`` on CPU it needs:

* a backend directory whose ``python/`` folder holds the backend *and* the stub for the Python
  running us (:func:`prepare_backend_directory`);
* ``LD_LIBRARY_PATH`` with ``nvidia_pytriton.libs/`` (the copied stub loses its relative
  rpath to it) (:func:`build_environment`);
* the repository root (the models import ``subtone.stego.kernel``) and this interpreter's
  site-packages (numpy) on the stub's ``sys.path``. The stub embeds the system's
  ``libpython3.X`` in an *isolated* configuration: it ignores ``PYTHONPATH`` and knows
  nothing of our virtual environment. It takes ``sys.executable`` from the first ``python3``
  on ``PATH``, though, and ``site`` then looks for a ``pyvenv.cfg`` beside it. So
  :func:`prepare_backend_directory` makes the backend directory a minimal virtual
  environment for the stub (``bin/python3``, a link to the stub, never run; ``pyvenv.cfg``
  without ``home``, so the standard library stays the one the linked ``libpython``
  was built for; one ``.pth`` in ``lib/python3.X/site-packages`` adding the repository root
  and ``site.addsitedir``-ing our site-packages, their ``.pth`` files included), and
  :func:`build_environment` puts its ``bin`` first on ``PATH``. Nothing is written outside
  the backend directory, and the model files need no path tricks;
* its own ports and its own shared-memory prefix, so several servers can run at once
  (:func:`build_command`).

Without a GPU Triton logs "Failed to initialize NVML" and "DCGM unable to start": harmless.
:class:`TritonProcess` starts it, waits for ``/v2/health/ready`` and stops it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

import httpx

from subtone.errors import SubtoneError

__all__ = [
    "DEFAULT_SHM_BYTES",
    "MODEL_REPOSITORY",
    "REPO_ROOT",
    "TritonInstall",
    "TritonPorts",
    "TritonProcess",
    "TritonStartError",
    "build_command",
    "build_environment",
    "clear_shared_memory",
    "find_install",
    "free_port",
    "prepare_backend_directory",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: what the models need on their path to import ``server``."""
MODEL_REPOSITORY = REPO_ROOT / "model_repository"

BACKEND_NAME = "python"
STUB_NAME = "triton_python_backend_stub"
BACKEND_LIBRARY = "libtriton_python.so"
BACKEND_UTILS = "triton_python_backend_utils.py"
LIBS_DIR_NAME = "nvidia_pytriton.libs"
SHM_PREFIX_BASE = "subtone"
SHM_DIR = Path("/dev/shm")  # noqa: S108 (POSIX shared memory; only our own prefix is removed)
VENV_CONFIG = "pyvenv.cfg"
VENV_BIN = "bin"
VENV_EXECUTABLE = "python3"
PTH_NAME = "subtone-triton.pth"

MIB = 1 << 20
DEFAULT_SHM_BYTES = 64 * MIB
"""Python-backend shared memory per model instance: a batch of 16 windows in and out
(16 x 1 MiB of int32 samples each way) with room to spare; Triton's default is 1 MiB."""
SHM_GROWTH_BYTES = 16 * MIB
LOCALHOST = "127.0.0.1"
READY_PATH = "/v2/health/ready"
HTTP_OK = 200

DEFAULT_READY_TIMEOUT_SECONDS = 60.0
READY_POLL_SECONDS = 0.1
READY_PROBE_TIMEOUT_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 10.0
KILL_TIMEOUT_SECONDS = 5.0
EXIT_TIMEOUT_SECONDS = 5
"""Triton's own grace for in-flight requests on SIGTERM (``--exit-timeout-secs``)."""
LOG_TAIL_BYTES = 8000


class TritonStartError(SubtoneError):
    """The Triton server could not be found, prepared or started."""

    code = "triton_start_failed"
    status = 503


@dataclass(frozen=True)
class TritonInstall:
    """The pieces of Triton the ``nvidia-pytriton`` wheel installs."""

    binary: Path
    backend: Path
    """``backends/python``: ``libtriton_python.so`` and ``triton_python_backend_utils.py``."""
    stub: Path
    """The python-backend stub built for this interpreter's ``major.minor``."""
    libs: Path
    """``nvidia_pytriton.libs/``: the shared libraries for ``LD_LIBRARY_PATH``."""
    python_version: str
    """``major.minor`` of the stub's Python."""


@dataclass(frozen=True)
class TritonPorts:
    http: int
    grpc: int
    metrics: int


def find_install(python_version: str | None = None) -> TritonInstall:
    """Locate tritonserver, the python backend and the stub for ``python_version`` ("3.11")."""
    version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        import pytriton
    except ImportError as e:
        raise TritonStartError("nvidia-pytriton is not installed: install subtone[server].") from e
    package = Path(pytriton.__file__).resolve().parent
    root = package / "tritonserver"
    install = TritonInstall(
        binary=root / "bin" / "tritonserver",
        backend=root / "backends" / BACKEND_NAME,
        stub=root / "python_backend_stubs" / version / STUB_NAME,
        libs=package.parent / LIBS_DIR_NAME,
        python_version=version,
    )
    for path in (install.binary, install.backend / BACKEND_LIBRARY, install.stub, install.libs):
        if not path.exists():
            raise TritonStartError(f"the nvidia-pytriton wheel has no {path}")
    return install


def _site_packages() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys((paths["purelib"], paths["platlib"])))


def prepare_backend_directory(
    destination: Path,
    install: TritonInstall,
    *,
    python_paths: Sequence[Path] = (REPO_ROOT,),
    site_dirs: Sequence[str] | None = None,
) -> Path:
    """Fill ``destination`` as tritonserver's ``--backend-directory``; return it.

    ``destination/python/`` gets the python backend and the stub. ``destination`` itself
    becomes a minimal virtual environment for the stub's interpreter (see the module's
    docstring) whose path holds ``python_paths`` and ``site_dirs`` (by default this
    interpreter's site-packages).
    """
    target = destination / BACKEND_NAME
    target.mkdir(parents=True, exist_ok=True)
    for name in (BACKEND_LIBRARY, BACKEND_UTILS):
        shutil.copy2(install.backend / name, target / name)
    stub = target / STUB_NAME
    shutil.copy2(install.stub, stub)
    bin_dir = destination / VENV_BIN
    bin_dir.mkdir(exist_ok=True)
    executable = bin_dir / VENV_EXECUTABLE
    executable.unlink(missing_ok=True)
    executable.symlink_to(stub)
    (destination / VENV_CONFIG).write_text(
        "include-system-site-packages = false\n", encoding="utf-8"
    )
    site_packages = destination / "lib" / f"python{install.python_version}" / "site-packages"
    site_packages.mkdir(parents=True, exist_ok=True)
    lines = [str(Path(p).resolve()) for p in python_paths]
    lines += [f"import site; site.addsitedir({d!r})" for d in (site_dirs or _site_packages())]
    (site_packages / PTH_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return destination


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nothing listens on now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def free_ports(host: str = LOCALHOST) -> TritonPorts:
    """Three distinct free ports."""
    ports: set[int] = set()
    while len(ports) < len(TritonPorts.__dataclass_fields__):
        ports.add(free_port(host))
    http, grpc, metrics = sorted(ports)
    return TritonPorts(http=http, grpc=grpc, metrics=metrics)


ALL_MODELS: Final = ("*",)
"""``load_models`` that loads the whole repository under explicit model control, so that
clients can reload a model (the engine does, when a model's stub crashed)."""


def build_command(
    install: TritonInstall,
    *,
    model_repository: Path,
    backend_directory: Path,
    ports: TritonPorts,
    shm_prefix: str,
    shm_bytes: int = DEFAULT_SHM_BYTES,
    address: str = LOCALHOST,
    load_models: Sequence[str] | None = None,
    log_verbose: int = 0,
) -> list[str]:
    """The tritonserver command line.

    ``load_models`` switches to explicit model control and loads only those models (the
    others stay unloaded until a client asks); ``None`` loads the whole repository.
    """
    command = [
        str(install.binary),
        f"--model-repository={model_repository}",
        f"--backend-directory={backend_directory}",
        f"--http-address={address}",
        f"--http-port={ports.http}",
        f"--grpc-address={address}",
        f"--grpc-port={ports.grpc}",
        f"--metrics-address={address}",
        f"--metrics-port={ports.metrics}",
        f"--backend-config={BACKEND_NAME},shm-region-prefix-name={shm_prefix}",
        f"--backend-config={BACKEND_NAME},shm-default-byte-size={shm_bytes}",
        f"--backend-config={BACKEND_NAME},shm-growth-byte-size={SHM_GROWTH_BYTES}",
        "--disable-auto-complete-config",
        "--allow-gpu-metrics=false",
        f"--exit-timeout-secs={EXIT_TIMEOUT_SECONDS}",
        f"--log-verbose={log_verbose}",
    ]
    if load_models is not None:
        command.append("--model-control-mode=explicit")
        command.extend(f"--load-model={name}" for name in load_models)
    return command


def _prepend(value: str | None, *paths: str) -> str:
    parts = [*paths, *(value.split(os.pathsep) if value else [])]
    return os.pathsep.join(dict.fromkeys(p for p in parts if p))


def build_environment(
    install: TritonInstall, backend_directory: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment tritonserver (and the stubs it starts) needs.

    ``LD_LIBRARY_PATH`` gets the wheel's libraries, ``PATH`` the backend directory's ``bin``
    (made by :func:`prepare_backend_directory`). ``PYTHONPATH`` is left alone: the stub
    ignores it.
    """
    env = dict(os.environ if base is None else base)
    env["LD_LIBRARY_PATH"] = _prepend(env.get("LD_LIBRARY_PATH"), str(install.libs))
    env["PATH"] = _prepend(env.get("PATH"), str(backend_directory / VENV_BIN))
    return env


def _tail(path: Path, size: int = LOG_TAIL_BYTES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class TritonProcess:
    """A tritonserver serving ``model_repository``: start, wait until ready, stop.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`). Its working
    directory (backend directory and ``tritonserver.log``) is a temporary one unless
    ``workdir`` is given, and is removed on stop.
    """

    def __init__(
        self,
        model_repository: Path = MODEL_REPOSITORY,
        *,
        ports: TritonPorts | None = None,
        address: str = LOCALHOST,
        shm_bytes: int = DEFAULT_SHM_BYTES,
        load_models: Sequence[str] | None = None,
        ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS,
        workdir: Path | None = None,
        install: TritonInstall | None = None,
    ) -> None:
        self.model_repository = Path(model_repository).resolve()
        self.ports = ports or free_ports()
        self.address = address
        self.shm_bytes = shm_bytes
        self.load_models = load_models
        self.ready_timeout_seconds = ready_timeout_seconds
        self.shm_prefix = f"{SHM_PREFIX_BASE}-{os.getpid()}-{uuid.uuid4().hex[:12]}-"
        self._install = install
        self._given_workdir = workdir
        self._workdir: Path | None = None
        self._log_file: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return LOCALHOST if self.address in ("0.0.0.0", "") else self.address  # noqa: S104

    @property
    def grpc_url(self) -> str:
        """``host:port`` for ``tritonclient.grpc`` (and :class:`TritonEngine`)."""
        return f"{self.host}:{self.ports.grpc}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.ports.http}"

    @property
    def log_path(self) -> Path | None:
        return None if self._workdir is None else self._workdir / "tritonserver.log"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def log(self) -> str:
        """The end of the server's log."""
        return "" if self.log_path is None else _tail(self.log_path)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        if self._process is not None:
            raise RuntimeError("this TritonProcess was already started")
        install = self._install or find_install()
        if self._given_workdir is not None:
            self._given_workdir.mkdir(parents=True, exist_ok=True)
            self._workdir = self._given_workdir
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="subtone-triton-"))
        backends = prepare_backend_directory(self._workdir / "backends", install)
        command = build_command(
            install,
            model_repository=self.model_repository,
            backend_directory=backends,
            ports=self.ports,
            shm_prefix=self.shm_prefix,
            shm_bytes=self.shm_bytes,
            address=self.address,
            load_models=self.load_models,
        )
        assert self.log_path is not None
        self._log_file = self.log_path.open("wb")
        self._process = subprocess.Popen(
            command,
            env=build_environment(install, backends),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self._workdir,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_seconds
        url = f"{self.http_url}{READY_PATH}"
        with httpx.Client(timeout=READY_PROBE_TIMEOUT_SECONDS) as client:
            while True:
                assert self._process is not None
                code = self._process.poll()
                if code is not None:
                    raise TritonStartError(
                        f"tritonserver exited with status {code} before it was ready:\n{self.log()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == HTTP_OK:
                        return
                if time.monotonic() > deadline:
                    raise TritonStartError(
                        f"tritonserver was not ready after {self.ready_timeout_seconds:g} s:\n"
                        f"{self.log()}"
                    )
                time.sleep(READY_POLL_SECONDS)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; remove its shared memory and working files."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    # The stubs are in the server's session: take them down with it.
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(KILL_TIMEOUT_SECONDS)
            for region in SHM_DIR.glob(f"{self.shm_prefix}*"):
                with contextlib.suppress(OSError):
                    region.unlink()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._workdir is not None and self._given_workdir is None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def clear_shared_memory(prefix: str) -> None:
    """Remove the shared-memory regions a server with ``prefix`` left behind (one killed
    outright cannot), so that the next one starts clean."""
    for region in SHM_DIR.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            region.unlink()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m server.standalone.tritonserver --workdir DIR --model-repository DIR
    --http P --grpc P --metrics P --shm-prefix NAME``: prepare the backend directory, clear
    what an earlier run left in shared memory, and become tritonserver (``exec``), so that a
    supervisor that starts this command supervises Triton itself."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m server.standalone.tritonserver")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--model-repository", type=Path, default=MODEL_REPOSITORY)
    parser.add_argument("--http", type=int, required=True)
    parser.add_argument("--grpc", type=int, required=True)
    parser.add_argument("--metrics", type=int, required=True)
    parser.add_argument("--shm-prefix", required=True)
    args = parser.parse_args(argv)
    install = find_install()
    backends = prepare_backend_directory(args.workdir / "backends", install)
    clear_shared_memory(args.shm_prefix)
    command = build_command(
        install,
        model_repository=args.model_repository.resolve(),
        backend_directory=backends,
        ports=TritonPorts(http=args.http, grpc=args.grpc, metrics=args.metrics),
        shm_prefix=args.shm_prefix,
        load_models=ALL_MODELS,  # explicit control: a crashed model reloads
    )
    sys.stdout.flush()
    os.execve(command[0], command, build_environment(install, backends))  # noqa: S606


if __name__ == "__main__":
    main()
