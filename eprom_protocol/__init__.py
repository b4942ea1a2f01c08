"""The ePROM v2 wire contract: enums, national ids, JSON Schemas and exact error texts (no Flask, no I/O)."""
