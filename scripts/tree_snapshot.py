"""Compile every example and benchmark model in several settings and record a hash of
every generated file: a refactoring that must not change the firmware is checked by
comparing two snapshots.

    python scripts/tree_snapshot.py snap.json            # write a snapshot
    python scripts/tree_snapshot.py new.json --compare snap.json   # and list what differs

The trees themselves are kept under ``--keep DIR`` when given (to diff a changed file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "models"
MUON = ROOT / "benchmarks" / "muon_trigger" / "models"
RINGER = ROOT / "benchmarks" / "electron_ringer" / "models"


def designs() -> list[tuple[str, object, dict]]:
    """(label, model, compile keyword arguments) of every design the snapshot covers."""
    out: list[tuple[str, object, dict]] = []
    for path in sorted(EXAMPLES.iterdir()):
        out.append((f"{path.name}-r1", str(path), {}))
        out.append((f"{path.name}-r4", str(path), {"reuse": 4}))
    out.append(("qmlp-dsp100", str(EXAMPLES / "qmlp.h5"), {"max_dsp": 100}))
    out.append(("qmlp-ii3-320", str(EXAMPLES / "qmlp.h5"), {"ii": 3, "clock": "320MHz"}))
    out.append(("qmlp-wrappers", str(EXAMPLES / "qmlp.h5"),
                {"axi_stream": True, "bunch_crossing": True, "name": "l0_mu", "library": "trig_nn"}))
    out.append(("float_mlp-wrappers-r2", str(EXAMPLES / "float_mlp.h5"),
                {"axi_stream": True, "bunch_crossing": True, "reuse": 2}))
    for path in sorted(MUON.glob("*.h5")):
        out.append((f"muon-{path.name}", str(path), {}))
    out.append(("muon-cnn_pt10-r3", str(MUON / "cnn_pt10.h5"), {"reuse": 3}))
    banked = [str(p) for p in sorted((RINGER / "qkeras").glob("*.h5"))]
    out.append(("ringer-qkeras", banked, {}))
    out.append(("ringer-qkeras-r4", banked, {"reuse": 4}))
    for path in sorted((RINGER / "float").glob("*.h5"))[::6]:  # float nets differ in type: one by one
        out.append((f"ringer-float-{path.stem}", str(path), {}))
        out.append((f"ringer-float-{path.stem}-r4", str(path), {"reuse": 4}))
    return out


#: the tree's one file that records the run (compile time, host, paths), not the firmware
RUN_RECORD = "run.json"


def tree_hashes(outdir: Path) -> dict[str, str]:
    return {str(p.relative_to(outdir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(outdir.rglob("*")) if p.is_file() and p.name != RUN_RECORD}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--compare", type=Path)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--only", help="substring of the design labels to compile")
    args = parser.parse_args(argv)

    import nnfpga

    work = args.keep or Path(tempfile.mkdtemp(prefix="nnfpga-snap-"))
    snapshot: dict[str, dict[str, str]] = {}
    for label, model, kwargs in designs():
        if args.only and args.only not in label:
            continue
        outdir = work / label
        kwargs = {"target": "xcvu9p", "clock": "240MHz", **kwargs}
        try:
            nnfpga.compile(model, outdir=outdir, **kwargs)
            snapshot[label] = tree_hashes(outdir)
        except Exception as err:  # recorded: a design that stops compiling is a difference
            snapshot[label] = {"<error>": f"{type(err).__name__}: {err}"}
        print(f"{label}: {len(snapshot[label])} files", flush=True)
    args.snapshot.write_text(json.dumps(snapshot, indent=1, sort_keys=True))
    if args.compare is None:
        return 0
    old = json.loads(args.compare.read_text())
    differ = 0
    for label in sorted(set(old) | set(snapshot)):
        a, b = old.get(label), snapshot.get(label)
        if a is None or b is None:
            if not args.only:
                print(f"{label}: only in {'new' if a is None else 'old'}")
                differ += 1
            continue
        for f in sorted(set(a) | set(b)):
            if a.get(f) != b.get(f):
                print(f"{label}: {f} differs" if f in a and f in b else
                      f"{label}: {f} only in {'new' if f not in a else 'old'}")
                differ += 1
    print(f"{differ} differences")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
