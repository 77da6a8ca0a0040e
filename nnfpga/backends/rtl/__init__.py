"""RTL backend: an RTL description (`netlist`) lowered from the IR (`lowering`) and
printed as VHDL-2008 (`vhdl`) and Verilog-2005 (`verilog`) from the same description, and
simulated by its reference interpreters (`netlist_sim`); what a product costs in DSPs in
`dsp` (the one rule).

Public API: `write_rtl`, `lower`, `RtlConfig`, `Netlist`, `evaluate`, `simulate`,
`RtlUnsupportedError`.
"""

from nnfpga.backends.rtl.lowering import RtlConfig, RtlUnsupportedError, lower
from nnfpga.backends.rtl.netlist import Netlist
from nnfpga.backends.rtl.netlist_sim import evaluate, simulate
from nnfpga.backends.rtl.verilog import print_verilog
from nnfpga.backends.rtl.vhdl import print_vhdl
from nnfpga.backends.rtl.writer import read_summary, write_netlist, write_rtl

__all__ = ["Netlist", "RtlConfig", "RtlUnsupportedError", "evaluate", "lower", "print_verilog",
           "print_vhdl", "read_summary", "simulate", "write_netlist", "write_rtl"]
