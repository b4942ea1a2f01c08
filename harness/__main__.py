"""`python -m harness ...` is `eprox-harness ...`."""
from harness.cli import main

raise SystemExit(main())
