"""Synthesis of a generated firmware tree with the open tools, for ``nnfpga report --synth``.

* `yosys`: one Yosys ``synth_xilinx`` run as a subprocess with a time and memory limit,
  and reading the netlist it writes;
* `firmware`: both runs of a firmware tree (the Verilog, and the VHDL through
  ``ghdl --synth``), the resources and logic depth counted from their netlists.

Beside `nnfpga.sim` (the simulators): both run external tools on what the backends wrote,
so neither is imported by a backend.
"""
