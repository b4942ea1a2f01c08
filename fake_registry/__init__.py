"""A fake quality registry: places orders through its target (ePROX or ePROM) and records every callback."""
