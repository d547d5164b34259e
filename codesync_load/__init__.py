"""codesync-load: load generation and telemetry verification for CodeSync.

The shared core (contract, stack, CLI) lives here; the promised top-level packages
(`twin`, `scenarios`, `verify`, `reports`) build on it.
"""

__version__ = "0.1.0"
