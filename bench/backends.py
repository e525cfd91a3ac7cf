"""The PostgreSQL backends serving one server process, and the CPU time they use (Linux only).

A server's connections are found from its sockets: the local ports of its TCP connections to
PostgreSQL are the `client_port`s that `pg_stat_activity` lists for their backends.
"""

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.servers import cpu_seconds

POSTGRES_PORT = 5432


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        pass
    return inodes


def client_ports(pid: int, server_port: int = POSTGRES_PORT) -> set[int]:
    """Local ports of the process's TCP connections to `server_port`."""
    inodes = _socket_inodes(pid)
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


async def backend_pids(database_url: str, server_pid: int) -> set[int]:
    """PIDs of the PostgreSQL backends connected to the server process."""
    ports = client_ports(server_pid)
    if not ports:
        return set()
    engine = create_async_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE client_port = ANY(:ports)"),
                {"ports": sorted(ports)},
            )
            return {int(row[0]) for row in rows}
    finally:
        await engine.dispose()


def backends_cpu(pids: set[int]) -> dict[int, float]:
    """CPU seconds so far of each backend still running."""
    found: dict[int, float] = {}
    for pid in pids:
        seconds = cpu_seconds(pid)
        if seconds is not None:
            found[pid] = seconds
    return found
