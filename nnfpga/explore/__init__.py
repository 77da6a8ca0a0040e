"""Design-space exploration (``nnfpga explore``): many compiles of one model on Dask,
their table and Pareto front.  `nnfpga.explore.run.explore` is the entry point."""
