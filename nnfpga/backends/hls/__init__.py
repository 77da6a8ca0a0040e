"""HLS C++ backend (Vitis HLS / Vivado HLS): `write_hls` writes a firmware tree whose
C-simulation (`nnfpga.sim.csim.run_csim`) is bit-exact with the golden emulator."""

from nnfpga.backends.hls.writer import write_hls  # noqa: F401

__all__ = ["write_hls"]
