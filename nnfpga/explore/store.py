"""The results folder of ``nnfpga explore``: one JSON line per finished point, written
and flushed to disk the moment the point finishes, and the table of the current
exploration.

Each point is keyed by a hash of what decides its result (`point_key`: the model's and
the configuration's bytes, the options, the data, the tool versions), so a rerun reuses
every point it finds and computes only the others: a killed run resumes, and a wider
sweep reuses the points of a narrower one.  A line cut short by a kill is dropped when
the folder is opened again.

Files:

* ``points.jsonl``: every finished point ever computed here, with its run data
  (seconds, worker, time);
* ``points.csv``: the points of the current exploration in grid order, without run
  data, so two runs of one exploration give the same table;
* ``explore.json``: marks the folder as nnfpga's and records the last run's settings.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import os
import secrets
from pathlib import Path

from nnfpga.core.errors import UserError
from nnfpga.explore.evaluate import FIGURES, RUN_FIELDS

POINTS_FILE = "points.jsonl"
TABLE_FILE = "points.csv"
MARKER_FILE = "explore.json"


def digest(data: bytes | str | None) -> str | None:
    if data is None:
        return None
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def point_key(fields: dict) -> str:
    """16 hex digits of the hash of ``fields`` (JSON with sorted keys)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace ``path`` by ``data`` (text as UTF-8) in one step: a temporary file beside
    it, flushed to disk, then renamed; a kill leaves the old file or the new one."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ResultStore:
    """The finished points of a results folder, by key."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._check_folder()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / POINTS_FILE
        self.finished: dict[str, dict] = {}
        self.dropped = 0
        self._load()

    def _check_folder(self) -> None:
        f = self.folder
        if f.exists() and not f.is_dir():
            raise UserError(f"-o {f}: exists and is not a folder")
        if f.is_dir() and any(f.iterdir()) and not (f / MARKER_FILE).is_file():
            raise UserError(f"-o {f}: the folder holds files that nnfpga explore did not write (no {MARKER_FILE}); "
                            "give a new or empty folder, or the results folder of an earlier exploration")

    def _load(self) -> None:
        if not self.path.is_file():
            return
        good = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                key = record["key"]
            except (ValueError, KeyError, TypeError):
                self.dropped += 1
                continue
            self.finished[key] = record
            good.append(line)
        if self.dropped:  # a line cut short by a kill: rewrite without it, so appends stay whole lines
            write_atomic(self.path, "".join(f"{line}\n" for line in good))

    def add(self, record: dict) -> None:
        record = dict(record)
        record["finished_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        line = json.dumps(record, sort_keys=True, default=_plain)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.finished[record["key"]] = record

    def write_marker(self, settings: dict) -> None:
        write_atomic(self.folder / MARKER_FILE, json.dumps(settings, indent=2, sort_keys=True, default=str) + "\n")


def _plain(value):
    """numpy scalars in a record, as JSON numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def table_columns(param_names: list[str]) -> list[str]:
    return ["index", "key", "status"] + [f"p.{n}" for n in param_names] + list(FIGURES) + ["command", "error"]


def table_text(records: list[dict], param_names: list[str]) -> str:
    """The CSV table of ``records`` (grid order), without the run data."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table_columns(param_names))
    for r in sorted(records, key=lambda r: r["index"]):
        row = [r["index"], r["key"], r["status"]] + [r["params"].get(n) for n in param_names]
        row += [r.get(c) for c in FIGURES] + [r.get("command"), r.get("error")]
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def deterministic(record: dict) -> dict:
    """``record`` without what only the run decides."""
    return {k: v for k, v in record.items() if k not in RUN_FIELDS and k != "finished_utc"}
