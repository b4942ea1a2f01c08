"""A production proxy process freezes what it built at start-up (proxy/production.py): those objects live
as long as the process, and the garbage collector's full passes then walk only what came after (measured:
about 1 ms instead of 12-26 ms, a pause of every request in flight). Run in a process of its own, as a
server runs it: freezing the test runner's heap would keep the rest of the suite's garbage alive."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from proxy_world import REPO

PROBE = textwrap.dedent("""
    import gc, sys
    from pathlib import Path
    from proxy.config import ProxyConfig
    from proxy.production import ProductionProxy

    before = gc.get_freeze_count()
    proxy = ProductionProxy(ProxyConfig(eprom_url="http://127.0.0.1:9", eprom_api_key="eprox-key",
                                        registries=[], state_dir=Path(sys.argv[1]), log_level="WARNING"))
    frozen = gc.get_freeze_count()
    gc.collect()  # a full pass, with the proxy and its pump running
    after_full_pass, walked = gc.get_freeze_count(), len(gc.get_objects(generation=2))
    proxy.close()
    print(before, frozen, after_full_pass, walked)
""")


def test_a_production_proxy_freezes_its_start_up_objects(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    before, frozen, after_full_pass, walked = map(int, result.stdout.split())
    assert before == 0
    assert frozen > 20_000, "the modules, the Flask app and the compiled schemas are frozen"
    assert after_full_pass == frozen, "a full pass leaves them frozen"
    assert walked < frozen / 4, "a full pass walks a small part of what the process holds"
