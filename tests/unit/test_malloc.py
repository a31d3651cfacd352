"""ctseg._resources.tune_malloc: glibc keeps freed activations mapped; it leaves a user's own
allocator choice, and other C libraries, alone; the ctseg command applies it."""

from __future__ import annotations

import platform
import sys

import pytest

from ctseg import _resources
from ctseg._resources import tune_malloc
from ctseg.cli import main


class _FakeLibc:
    """Stands in for ``ctypes.CDLL(None)``: records ``mallopt`` calls."""

    def __init__(self, glibc: bool = True, accept: bool = True) -> None:
        self.calls: list[tuple[int, int]] = []
        if glibc:
            self.gnu_get_libc_version = lambda: b"2.36"
        libc = self

        class _Mallopt:
            argtypes: list = []
            restype = None

            def __call__(self, param: int, value: int) -> int:
                libc.calls.append((param, value))
                return 1 if accept else 0

        self.mallopt = _Mallopt()


@pytest.fixture
def fake_libc(monkeypatch):
    for name in ("CTSEG_MALLOC", "LD_PRELOAD", *_resources._MALLOC_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")

    def install(**kwargs) -> _FakeLibc:
        libc = _FakeLibc(**kwargs)
        monkeypatch.setattr(_resources.ctypes, "CDLL", lambda name: libc)
        return libc

    return install


def test_glibc_gets_both_thresholds(fake_libc) -> None:
    libc = fake_libc()
    assert tune_malloc() is True
    assert libc.calls == [(-3, 32 << 20), (-1, 256 << 20)]  # M_MMAP_THRESHOLD, then M_TRIM_THRESHOLD


def test_values_are_clamped_to_a_c_int(fake_libc) -> None:
    libc = fake_libc()
    assert tune_malloc(mmap_threshold=1 << 40, trim_threshold=5) is True
    assert libc.calls == [(-3, 2**31 - 1), (-1, 5)]


def test_a_refused_setting_is_reported(fake_libc) -> None:
    fake_libc(accept=False)
    assert tune_malloc() is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CTSEG_MALLOC", "default"),
        ("CTSEG_MALLOC", "off"),
        ("MALLOC_MMAP_THRESHOLD_", "65536"),
        ("MALLOC_TRIM_THRESHOLD_", "0"),
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0"),
        ("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
        ("LD_PRELOAD", "libtcmalloc_minimal.so.4"),
    ],
)
def test_a_users_own_choice_is_left_alone(fake_libc, monkeypatch, name, value) -> None:
    libc = fake_libc()
    monkeypatch.setenv(name, value)
    assert tune_malloc() is False
    assert libc.calls == []


def test_other_c_libraries_and_systems_are_left_alone(fake_libc, monkeypatch) -> None:
    libc = fake_libc(glibc=False)  # e.g. musl, whose mallopt does nothing
    assert tune_malloc() is False
    assert libc.calls == []
    libc = fake_libc()
    monkeypatch.setattr(sys, "platform", "darwin")
    assert tune_malloc() is False
    assert libc.calls == []


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_real_glibc_takes_the_settings(monkeypatch) -> None:
    for name in ("CTSEG_MALLOC", "LD_PRELOAD", *_resources._MALLOC_ENV):
        monkeypatch.delenv(name, raising=False)
    assert tune_malloc() is True


def test_the_ctseg_command_applies_it(monkeypatch, tmp_path) -> None:
    called: list[bool] = []
    monkeypatch.setattr(_resources, "tune_malloc", lambda: called.append(True) or True)
    code = main(["predict", "-i", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "out"), "-m", str(tmp_path / "run")])
    assert code != 0  # the missing input is still refused, after the allocator was set
    assert called == [True]
