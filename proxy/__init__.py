"""ePROX: one ordering system at ePROM that lets several registries share one order (SPEC §3)."""
