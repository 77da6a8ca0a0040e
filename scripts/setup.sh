#!/usr/bin/env bash
# Creates .venv with every Python package the project needs (pinned in requirements.txt)
# and installs the Debian simulators (iverilog, ghdl, yosys) and chromium (the slow test
# that renders report.html headless) when missing and possible.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debian=()
# command:package (tclsh runs the HLS build script's test; make drives Verilator's build)
for pair in iverilog:iverilog ghdl:ghdl yosys:yosys chromium:chromium tclsh:tcl make:make g++:g++; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_debian+=("${pair#*:}")
done
if [ ${#need_debian[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${need_debian[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_debian[@]}" >/dev/null
  else
    echo "setup: warning: ${need_debian[*]} missing and cannot be installed here (need root and apt-get);" \
         "the simulations that need them will fail" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
echo "setup: installing Python packages (pinned; first run takes a few minutes)"
# (pip.conf on these machines names local index folders that lack most packages: pip
#  warns once per package about them, which is noise; pipefail keeps pip's exit status)
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
# .venv-peers (HGQ2, Keras 3, JAX: they cannot share .venv): the HGQ2 tests build their
# models with it (tests/test_hgq2.py), as the peer benchmark runs da4ml in it
if [ ! -f .venv-peers/.installed ]; then
  bash scripts/setup-peers.sh
fi
touch .venv/.installed
echo "setup: done"
