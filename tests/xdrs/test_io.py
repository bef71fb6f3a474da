"""File boundary helpers: bounded reads and atomic writes name the user's file."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from xdrs._io import MAX_INPUT_BYTES, atomic_write, read_bounded, write_all
from xdrs.errors import SnapshotError


def test_reads_a_file_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, limit=100) == b"x" * 100
    assert MAX_INPUT_BYTES == 1 << 30


def test_a_regular_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 101)
    with pytest.raises(
        SnapshotError, match=f"^{re.escape(str(path))}: larger than the input limit of 100 bytes"
    ):
        read_bounded(path, limit=100)


def test_dev_zero_is_refused_at_once() -> None:
    with pytest.raises(
        SnapshotError, match=r"^/dev/zero: not a text file \(NUL byte at offset 0\)"
    ):
        read_bounded("/dev/zero")


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[tuple[Path, threading.Event]]:
    """A named pipe fed with spaces until the reader closes it (``/dev/zero`` of text)."""
    path = tmp_path / "endless.json"
    os.mkfifo(path)
    stop = threading.Event()

    def feed() -> None:
        with open(path, "wb", buffering=0) as f:
            try:
                while not stop.is_set():
                    f.write(b" " * 65536)
            except BrokenPipeError:
                pass  # the reader gave up: what the test wants

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    yield path, stop
    stop.set()
    t.join(timeout=10)
    assert not t.is_alive()


def test_an_endless_stream_is_cut_at_the_limit(fifo: tuple[Path, threading.Event]) -> None:
    path, _ = fifo
    limit = 3 * (1 << 20) + 5  # more than two chunks
    with pytest.raises(
        SnapshotError, match=f"^{re.escape(str(path))}: larger than the input limit of 3 MiB"
    ):
        read_bounded(path, limit=limit)


def test_a_nul_byte_late_in_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b"{}" + b" " * 5000 + b"\0")
    with pytest.raises(SnapshotError, match=r"NUL byte at offset 5002"):
        read_bounded(path)


def test_a_missing_file_raises_oserror_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        read_bounded(tmp_path / "nope.json")
    assert err.value.filename == str(tmp_path / "nope.json")


def test_write_errors_name_the_target_not_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "out.json"
    with pytest.raises(FileNotFoundError) as err:
        atomic_write(target, b"{}")
    assert err.value.filename == str(target)
    (tmp_path / "a-dir").mkdir()
    with pytest.raises(IsADirectoryError) as err2:
        atomic_write(tmp_path / "a-dir", b"{}")
    assert err2.value.filename == str(tmp_path / "a-dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-dir"]  # no temporary file left


@pytest.mark.parametrize("failing", [1, 2])
def test_a_failed_rename_puts_back_what_the_earlier_targets_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    """All or none, even past staging. A rename that fails after staging succeeded cannot
    be caused at will on a local file system, so this one rename is made to fail (the only
    fault injected; every other call is the real one)."""
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_bytes(b"old a")  # b does not exist yet: it must not exist afterwards either
    c.write_bytes(b"old c")
    real, calls = os.replace, []

    def replace(src: str, dst: str | os.PathLike[str]) -> None:
        calls.append(dst)
        if len(calls) == failing + 1:
            raise PermissionError(13, "Permission denied", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(PermissionError) as err:
        write_all({a: b"new a", b: b"new b", c: b"new c"})
    monkeypatch.undo()
    assert err.value.filename == str([a, b, c][failing])
    assert a.read_bytes() == b"old a" and not b.exists() and c.read_bytes() == b"old c"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "c.json"]  # nothing left


def test_write_all_replaces_every_target_and_leaves_nothing_else(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_bytes(b"old a")
    write_all({a: b"new a", b: b"new b"})
    assert a.read_bytes() == b"new a" and b.read_bytes() == b"new b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]
