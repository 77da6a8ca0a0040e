"""The error every simulator runner raises."""


class SimulationError(RuntimeError):
    """A simulator failed to build or run, or the design broke its timing contract."""
