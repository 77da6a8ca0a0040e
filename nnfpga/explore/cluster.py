"""Running points on Dask (``dask.distributed``).

`open_cluster` connects to an existing scheduler (``--scheduler tcp://HOST:8786`` or
``DASK_SCHEDULER_ADDRESS``) or starts a `LocalCluster` with one single-threaded worker
process per core (compiling is one process's work; Yosys is another process per point).

`run_batch` ships the model and the reference data to the workers once (``scatter``),
submits one task per point and hands each record to ``on_record`` the moment it
arrives, so the caller writes it to disk at once.  A worker that dies mid-point is the
scheduler's business: it reruns the point elsewhere (up to
``distributed.scheduler.allowed-failures`` times).  A point that is lost even so is not
recorded: the run says so and a rerun computes it.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from nnfpga.core.errors import UserError
from nnfpga.explore.evaluate import ModelBytes, PointTask, Reference, evaluate_point

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


@dataclass
class Cluster:
    client: object
    local: bool
    workers: int
    dashboard: str | None


@contextmanager
def open_cluster(scheduler: str | None = None, jobs: int | None = None,
                 say: Callable[[str], None] = print) -> Iterator[Cluster]:
    from distributed import Client, LocalCluster
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if address:
        try:
            client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise UserError(f"cannot reach the Dask scheduler at {address}: {e}; start one with "
                            "`dask scheduler` and workers with `dask worker ADDRESS`") from None
        try:
            workers = len(client.scheduler_info().get("workers", {}))
            if workers == 0:
                say(f"waiting for a worker to join the scheduler at {address}")
                client.wait_for_workers(1, timeout=120)
                workers = len(client.scheduler_info()["workers"])
            yield Cluster(client, False, workers, _dashboard(client))
        finally:
            client.close()
        return
    n = jobs or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        yield Cluster(client, True, n, _dashboard(client))
    finally:
        client.close()
        cluster.close()


def _dashboard(client) -> str | None:
    try:
        return client.dashboard_link
    except Exception:  # no dashboard (bokeh missing): nothing to show
        return None


@dataclass
class BatchOutcome:
    records: list[dict] = field(default_factory=list)
    lost: list[tuple[PointTask, str]] = field(default_factory=list)


def run_batch(cluster: Cluster, tasks: list[PointTask], model: ModelBytes, reference: Reference | None,
              on_record: Callable[[dict], None], on_progress: Callable[[int], None] = lambda running: None
              ) -> BatchOutcome:
    """Evaluate ``tasks`` on the cluster; ``on_record`` gets each record as it arrives,
    ``on_progress`` the number of points running after each one."""
    from distributed import as_completed
    client = cluster.client
    outcome = BatchOutcome()
    if not tasks:
        return outcome
    [model_f] = client.scatter([model], broadcast=True, hash=False)
    ref_f = client.scatter([reference], broadcast=True, hash=False)[0] if reference is not None else None
    futures = {}
    for t in tasks:
        f = client.submit(evaluate_point, t, model_f, ref_f, key=f"nnfpga-point-{t.index}-{t.key}-{os.getpid()}",
                          pure=False)
        futures[f] = t
    on_progress(_running(client))
    for f in as_completed(list(futures)):
        task = futures[f]
        try:
            record = f.result()
        except Exception as e:  # the worker died too often, or the task could not run at all
            outcome.lost.append((task, f"{type(e).__name__}: {e}"))
        else:
            outcome.records.append(record)
            on_record(record)
        on_progress(_running(client))
        f.release()
    return outcome


def _running(client) -> int:
    try:
        return sum(len(v) for v in client.processing().values())
    except Exception:  # the scheduler is busy or gone: progress is not worth failing for
        return 0


def is_terminal() -> bool:
    return sys.stdout.isatty()
