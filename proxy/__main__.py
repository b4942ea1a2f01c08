"""`python -m proxy COMMAND`: serve the proxy, or operate its delivery outbox (see proxy/cli.py)."""
from .cli import main

raise SystemExit(main())
