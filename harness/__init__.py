"""Wires fake ePROM, ePROX and fake registries together on loopback ports with one simulated clock:
the `eprox-harness` CLI, the topology, the transcript and the pytest plugin."""
