"""Memory and disk checks made before large work, so that a run stops with a message naming the
setting to change instead of being killed by the operating system halfway."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import InputError

__all__ = ["cpu_threads", "cpu_flags", "cpu_has_bf16_dot", "available_memory_bytes", "free_disk_bytes", "check_memory", "check_disk"]

_GIB = 2**30


def cpu_threads() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


#: CPU flags (Linux /proc/cpuinfo) of instructions that multiply bfloat16 in hardware: AVX-512
#: BF16 (AMD Zen 4 and later, Intel Cooper Lake) and AMX (Intel Sapphire Rapids and later)
BF16_DOT_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first CPU in ``cpuinfo`` (Linux); empty where they cannot be read."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[-1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16_dot(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (a flag of :data:`BF16_DOT_FLAGS`), which is
    where oneDNN's bfloat16 convolutions beat float32; False where the flags cannot be read (other
    systems: bfloat16 stays opt-in there)."""
    return not BF16_DOT_FLAGS.isdisjoint(cpu_flags(cpuinfo))


def available_memory_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo (what can be allocated without swapping), or ``None``
    where it cannot be read (then no memory check is made)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_disk_bytes(folder: str | os.PathLike[str]) -> int:
    """Free bytes on the file system that holds ``folder`` (or its nearest existing parent)."""
    path = Path(folder).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_memory(need_bytes: float, what: str, fix: str) -> None:
    """Refuse ``what`` when it needs more memory than is available; ``fix`` says what to change."""
    available = available_memory_bytes()
    if available is not None and need_bytes > available:
        raise InputError(f"{what} needs about {need_bytes / _GIB:.1f} GiB of memory but {available / _GIB:.1f} GiB is available; {fix}")


def check_disk(folder: str | os.PathLike[str], need_bytes: float, what: str, fix: str) -> None:
    """Refuse ``what`` when ``folder``'s file system has less free space than it needs (plus 5 %)."""
    free = free_disk_bytes(folder)
    if need_bytes * 1.05 > free:
        raise InputError(f"{what} needs about {need_bytes / _GIB:.1f} GiB of disk in {folder} but {free / _GIB:.1f} GiB is free; {fix}")
