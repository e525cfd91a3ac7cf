"""A process's own peak memory, for benchmarks that measure in a child process.

`getrusage(RUSAGE_SELF).ru_maxrss` is the wrong number there: Linux keeps the maximum across
`execve`, and a child started by `subprocess` (vfork, then exec) starts with its parent's peak.
A bench parent that had just seeded a million customers in memory made its child's recompute
report 2.9 GiB while the recompute itself peaked at 1.5 GiB. `VmHWM` is the high-water mark of
the process's current address space only, which exec replaces.
"""

import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")


def peak_rss_mib() -> float:
    """This process's peak resident memory since it was exec'd, in MiB."""
    if _STATUS.exists():
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    # Elsewhere: the rusage maximum (kB on Linux, bytes on macOS; only Linux is measured here).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
