"""Locks that hold across threads *and* processes sharing one proxy database (gunicorn workers): a per
(patient, form) lock for the linking decision, one writer at a time on the database, a marker of calls to
ePROM in flight, and a liveness token per running proxy that tells whether the owner of a delivery lease
or a hold is still alive. All are flock(2) locks on small files beside the database, so the kernel
releases them the instant their process dies, even by SIGKILL."""
from __future__ import annotations

import errno
import hashlib
import os
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: one process only, see docs/PROXY.md
    fcntl = None  # type: ignore[assignment]

#: Stripes of the per-(patient, form) lock. Two keys share a stripe with probability 1/STRIPES; they then
#: wait for each other, which is only slower, never wrong.
STRIPES = 4096


def side_dir(database: Path, suffix: str) -> Path:
    """A directory beside the database file for the proxy's lock files, e.g. eprox.sqlite3.locks/."""
    directory = database.parent / f"{database.name}.{suffix}"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class StripedLocks:
    """An exclusive lock per key that works between threads of one process and between processes: each
    hold opens its own descriptor of the key's stripe file and flock()s it, so the kernel does the waiting
    (no polling) and lets go if the holder dies."""

    def __init__(self, directory: Path, stripes: int = STRIPES):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stripes = stripes
        self._fallback = [threading.Lock() for _ in range(64)] if fcntl is None else None

    def stripe(self, *key: str) -> int:
        digest = hashlib.blake2b("\x1f".join(key).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.stripes

    @contextmanager
    def hold(self, *key: str) -> Iterator[None]:
        stripe = self.stripe(*key)
        if self._fallback is not None:  # pragma: no cover - non-POSIX
            with self._fallback[stripe % len(self._fallback)]:
                yield
            return
        fd = os.open(self.directory / f"{stripe:04x}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks in the kernel; the GIL is released meanwhile
            yield
        finally:
            os.close(fd)  # closing the only descriptor releases the flock


class WriteGate:
    """One writer at a time on the database, across threads and processes, queued by the kernel.

    SQLite lets a second writer wait by sleeping in steps of up to 100 ms (its busy handler); under load that
    makes the slowest orders hundreds of milliseconds late. Taking this flock() first, each writer waits
    exactly as long as the writer before it needs. Each thread has its own descriptor (flock is per open
    file description), so threads of one process queue here too."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._fallback = threading.Lock() if fcntl is None else None

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self._fallback is not None:  # pragma: no cover - non-POSIX
            with self._fallback:
                yield
            return
        handle = getattr(self._local, "handle", None)
        if handle is None:  # a file object: closed when its thread ends and the thread-local goes
            handle = self._local.handle = open(self.path, "a+b")
        fd = handle.fileno()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


class CallsInFlight:
    """Whether any process sharing the database has a call to ePROM in flight. Each call holds a shared
    flock() on one file while it runs; a non-blocking exclusive try tells whether anyone holds it. No
    database write per call, and the kernel drops the marker of a process that dies."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._count = 0  # without flock: calls of this process only
        self._count_lock = threading.Lock()

    @contextmanager
    def calling(self) -> Iterator[None]:
        if fcntl is None:  # pragma: no cover - non-POSIX
            with self._count_lock:
                self._count += 1
            try:
                yield
            finally:
                with self._count_lock:
                    self._count -= 1
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # shared: calls never wait for each other, only for a probe
            yield
        finally:
            os.close(fd)

    def any(self) -> bool:
        if fcntl is None:  # pragma: no cover - non-POSIX
            with self._count_lock:
                return self._count > 0
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False  # nobody holds it (closing the descriptor lets go at once)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return True
            raise
        finally:
            os.close(fd)


class OwnerToken:
    """Who this running proxy is, for leases and holds it writes into the shared database, and whether the
    writer of some other token is still running: a token is alive exactly while its file is flock()ed."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._path = self.directory / f"{self.id}.lock"
        self._fd: int | None = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._known_dead: set[str] = set()

    def is_alive(self, owner: str) -> bool:
        if owner == self.id:
            return self._fd is not None
        if fcntl is None:  # pragma: no cover - without flock: trust the lease's expiry alone
            return True
        if owner in self._known_dead:
            return False
        path = self.directory / f"{owner}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            self._known_dead.add(owner)
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return True
                raise
            path.unlink(missing_ok=True)  # its process is gone: tidy up after it
            self._known_dead.add(owner)
            return False
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._fd is not None:
            self._path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None
