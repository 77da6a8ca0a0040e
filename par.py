import sys, time, os
sys.path.insert(0, ".")
from tests.irmodels import random_mlp
from nnfpga.compiler.driver import compile_model
m = random_mlp([64,128,16,5], seed=0, sparsity=0.0, name="dense_ir")
t0 = time.perf_counter(); compile_model(m, "xcvu9p", "240MHz", sys.argv[1]); print(os.environ.get("NNFPGA_JOBS"), time.perf_counter() - t0)
