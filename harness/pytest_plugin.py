"""pytest plugin (entry point `pytest11`): black-box fixtures that run `eprox-harness up` as a real
process and drive it over HTTP and its ready file only. Needs pytest, not pytest-bdd."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

from .client import ControlError, HarnessClient

__all__ = ["ControlError", "HarnessClient", "HarnessProcess", "HarnessProcessError"]

READY_TIMEOUT = 60.0  # seconds for every server to come up
STOP_TIMEOUT = 30.0  # seconds for a clean exit after SIGTERM/SIGINT
POLL = 0.05  # seconds between looks for the ready file (waiting for a file, not for behaviour)


class HarnessProcessError(RuntimeError):
    pass


def wait_for_ready_file(path: Path, proc: subprocess.Popen, timeout: float, output: Callable[[], str],
                        name: str, kill: Callable[[], None] | None = None) -> None:
    """Until a process announces itself in its ready file, looking every POLL seconds and noticing when it
    exits first: waiting for a process to start, not for behaviour. Raises HarnessProcessError with the
    process's output; a process that never gets ready is killed (proc.kill() unless `kill` is given)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        try:
            code = proc.wait(timeout=POLL)
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                (kill or proc.kill)()
                raise HarnessProcessError(f"no ready file after {timeout:g} s\n{output()}") from None
            continue
        raise HarnessProcessError(f"{name} exited with {code} before it was ready\n{output()}")


class HarnessProcess:
    """One `eprox-harness up --ready-file` subprocess; its output goes to files in `workdir`."""

    def __init__(self, workdir: Path, config: str | Path | None = None, extra_args: Sequence[str] = ()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ready_file = self.workdir / "ready.json"
        self.stdout_path = self.workdir / "stdout.txt"
        self.stderr_path = self.workdir / "stderr.txt"
        self.args = [sys.executable, "-m", "harness", "up", "--ready-file", str(self.ready_file)]
        if config is not None:
            self.args += ["--config", str(config)]
        self.args += list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.info: dict | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> dict:
        """Start the process and return the ready file's content once it appears."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        wait_for_ready_file(self.ready_file, self.proc, timeout, self.output, "eprox-harness up", self.kill)
        self.info = json.loads(self.ready_file.read_text(encoding="utf-8"))
        return self.info

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send sig (unless it has exited already) and return the exit code."""
        if self.proc is None:
            raise HarnessProcessError("the harness process was never started")
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise HarnessProcessError(f"no exit {timeout:g} s after signal {sig}\n{self.output()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace") if self.stderr_path.exists() else ""

    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout()[-4000:]}\n--- stderr ---\n{self.stderr()[-4000:]}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eprox-harness")
    group.addoption("--eprox-harness-config", metavar="FILE", default=None,
                    help="topology file for the harness_process fixture (default: two registries)")


@pytest.fixture
def harness_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict]:
    """A fresh `eprox-harness up` process; yields its ready file's content and, on teardown, stops it
    with SIGTERM and asserts a clean exit (code 0)."""
    process = HarnessProcess(tmp_path / "eprox-harness", config=request.config.getoption("--eprox-harness-config"))
    try:
        info = process.start()
    except HarnessProcessError as err:
        pytest.fail(f"the harness did not start: {err}")
    try:
        yield info
    finally:
        code = process.stop()
        assert code == 0, f"eprox-harness up exited with {code} after SIGTERM\n{process.output()}"


@pytest.fixture
def harness_client(harness_process: dict) -> Iterator[HarnessClient]:
    """An HTTP client for the harness_process (ready file and HTTP only)."""
    client = HarnessClient(harness_process)
    try:
        yield client
    finally:
        client.close()
