"""The bottom of the package: what every layer may use and nothing of nnfpga's own below it.

* `errors`: `UserError`, a mistake in the user's input (the CLI prints it, exit code 2);
* `parts`: the FPGA part table (``parts.yaml``) and each family's Yosys name;
* `clock`: reading a clock frequency (``240MHz``, ``4ns``);
* `samples`: reading the sample files (``.npy`` / ``.npz``) that emulate, verify and
  calibration take;
* `version`: the package version written into every generated file.

Modules here import only the standard library, numpy, yaml and each other
(`tests/test_layering.py` checks it).
"""
