"""A fake ePROM: the ePROM v2 form-order API with simulated patients, answers, expiries and callbacks.

Build it with `fake_eprom.app.create_app(EpromConfig(...), runtime)`; see docs/DESIGN.md."""
from .config import EpromConfig, OrderingSystem
from .forms import Form, default_catalog

__all__ = ["EpromConfig", "OrderingSystem", "Form", "default_catalog"]
