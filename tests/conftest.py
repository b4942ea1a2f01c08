"""Test helpers shared across test folders live in tests/support/ (e.g. `import proxy_world`)."""
import sys
from pathlib import Path

SUPPORT = str(Path(__file__).with_name("support"))
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)
