"""Bounds on the counts a user gives (command line and configuration file alike)."""

#: The largest reuse factor, DSP budget, II limit or Yosys job count: far beyond any
#: design, small enough to keep the searches' arithmetic ordinary.
MAX_COUNT = 1_000_000
