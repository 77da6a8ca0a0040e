"""Design-space exploration (``nnfpga explore``): compile one model at many points of a
sweep (reuse factor, DSP budget, clock, configuration files...), keep every point's figures
and present the Pareto front of latency, resources and accuracy."""
