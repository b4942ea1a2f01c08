"""The proxy's cross-process locks: the per-(patient, form) stripe lock excludes threads and processes
alike and is released when its holder dies; a liveness token is alive exactly while its process runs."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from proxy.locks import CallsInFlight, OwnerToken, StripedLocks
from proxy.privacy import redact

REPO = Path(__file__).resolve().parents[2]


def child(code: str) -> subprocess.Popen:
    """A Python process that runs `code`, prints READY and waits for its stdin to close."""
    script = textwrap.dedent(code) + "\nprint('READY', flush=True)\nimport sys; sys.stdin.read()\n"
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "READY"
    return proc


def test_one_holder_at_a_time_among_threads(tmp_path):
    locks = StripedLocks(tmp_path)
    inside, most, guard = [0], [0], threading.Lock()
    barrier = threading.Barrier(8)

    def work():
        barrier.wait()
        for _ in range(50):
            with locks.hold("26723916517", "form"):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1


def test_another_process_waits_and_gets_the_lock_when_the_holder_is_killed(tmp_path):
    holder = child(f"""
        from proxy.locks import StripedLocks
        hold = StripedLocks({str(tmp_path)!r}).hold("p", "f")
        hold.__enter__()
    """)
    locks = StripedLocks(tmp_path)
    got = threading.Event()

    def take():
        with locks.hold("p", "f"):
            got.set()

    waiter = threading.Thread(target=take, daemon=True)
    waiter.start()
    assert not got.wait(0.2), "the lock was taken while another process held it"
    other = next(f"patient-{i}" for i in range(100) if locks.stripe(f"patient-{i}", "f") != locks.stripe("p", "f"))
    with locks.hold(other, "f"):  # other keys are free meanwhile
        pass
    holder.kill()
    holder.wait()
    assert got.wait(10), "the lock of a killed process was not released"


def test_a_token_is_alive_while_its_process_runs_and_dead_after_sigkill(tmp_path):
    proc = child(f"""
        from proxy.locks import OwnerToken
        token = OwnerToken({str(tmp_path)!r})
    """)
    me = OwnerToken(tmp_path)
    (other,) = [p.stem for p in tmp_path.glob("*.lock") if p.stem != me.id]
    assert me.is_alive(me.id) and me.is_alive(other)
    proc.kill()
    proc.wait()
    assert not me.is_alive(other)
    assert not (tmp_path / f"{other}.lock").exists(), "a dead token's file is tidied away"
    assert not me.is_alive("never-existed")
    me.close()
    assert not me.is_alive(me.id)


def test_redact_masks_national_ids_and_secrets_only():
    text = "id 26723916517, order 123456789012, key s3cret, date 2025-01-06"
    assert redact(text, secrets=("s3cret",)) == "id 267239*****, order 123456789012, key ***, date 2025-01-06"


def test_calls_in_flight_are_seen_across_threads_and_processes_and_end_with_their_process(tmp_path):
    marker = tmp_path / "calls.lock"
    calls = CallsInFlight(marker)
    assert not calls.any()
    with calls.calling():
        with calls.calling():  # calls never wait for each other
            assert calls.any()
        assert calls.any()
    assert not calls.any()
    proc = child(f"""
        from proxy.locks import CallsInFlight
        held = CallsInFlight({str(marker)!r}).calling()
        held.__enter__()
    """)
    try:
        assert calls.any(), "another process's call in flight"
        proc.kill()  # dies mid-call: the kernel drops its marker
        proc.wait(timeout=10)
        assert not calls.any()
    finally:
        proc.kill()
        proc.wait(timeout=10)
