"""Benchmarks of the ePROX proxy (issue 4 item 9). They print figures; they are not tests.

Run `python -m bench --help` from the repository root. See bench/README.md."""
