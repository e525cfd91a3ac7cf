"""The two servers under test: uvicorn processes on loopback with the same command line."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0

# One worker process (uvicorn's default), uvloop and httptools when installed ("auto").
UVICORN_OPTIONS = ("--host", HOST, "--no-access-log", "--log-level", "warning")


class ServerFailed(Exception):
    """A server process did not come up."""


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    pid: int
    base_url: str
    log: Path

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"


def server_environment(database_url: str, *, pool_size: int) -> dict[str, str]:
    """Production-like settings, the same for both servers; no Redis (embedded runtime).

    The pool holds a connection per concurrent request, as a deployment sized for the load
    would: a smaller one would close and reopen overflow connections all through the run.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KIZUKI_")}
    environment.update(
        KIZUKI_DATABASE_URL=database_url,
        KIZUKI_POOL_SIZE=str(pool_size),
        KIZUKI_ENVIRONMENT="production",
        KIZUKI_GRAPHIQL="false",
        KIZUKI_LOG_LEVEL="WARNING",
        KIZUKI_SECRET_KEY="kizuki-bench-secret-not-for-real-data",
        PYTHONPATH=str(ROOT),
    )
    return environment


def uvicorn_command(factory: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--port",
        str(port),
        *UVICORN_OPTIONS,
    ]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_ready(process: "subprocess.Popen[bytes]", base_url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerFailed(f"exited with {process.returncode}:\n{log_tail(log)}")
            try:
                if client.get(f"{base_url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise ServerFailed(f"not ready after {READY_TIMEOUT_SECONDS:.0f} s:\n{log_tail(log)}")


@contextmanager
def serve(
    name: str, factory: str, environment: Mapping[str, str], log_dir: Path
) -> Iterator[Server]:
    """Run `uvicorn --factory <factory>` until the block ends; its output goes to a log."""
    port = free_port()
    log = log_dir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            uvicorn_command(factory, port),
            cwd=ROOT,
            env=dict(environment),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://{HOST}:{port}"
        try:
            _wait_ready(process, base_url, log)
        except ServerFailed as error:
            raise ServerFailed(f"{name} server: {error}") from None
        yield Server(name=name, pid=process.pid, base_url=base_url, log=log)
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux `/proc`), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
