"""Set up every Dask worker a cohort runs on, including those started after a worker died.

``client.run(init_worker, ...)`` reaches only the workers alive at that moment. When a worker
is killed mid-run (out of memory, ``kill -9``, a lost node), its nanny starts a fresh one and
the scheduler retries the task there: without a plugin that worker would run the rest of the
cohort with the libraries' default thread counts (oversubscribing the node) and Dask's tiny
malloc trim threshold (about 3 s slower per subject). A :class:`WorkerSetup` plugin runs
:func:`wmhkit.cohort.worker.init_worker` on every worker that joins, now or later.

Only imported when a run uses Dask (``distributed`` is an optional dependency).
"""

from __future__ import annotations

from distributed import WorkerPlugin

from wmhkit.cohort.worker import init_worker

__all__ = ["WorkerSetup", "PLUGIN_NAME"]

#: Name under which the plugin is registered (registering again replaces it).
PLUGIN_NAME = "wmhkit-worker-setup"


class WorkerSetup(WorkerPlugin):
    """Run :func:`~wmhkit.cohort.worker.init_worker` on each Dask worker as it starts.

    Parameters
    ----------
    method : {"model", "baseline"}
        Segmentation method (the model is loaded once per worker process).
    model : str
        Model name or path.
    threads : int, default 1
        Torch and BLAS threads per worker (one per Dask worker thread).
    """

    idempotent = False  # a later run with another model replaces it

    def __init__(self, method: str, model: str, threads: int = 1) -> None:
        self.method, self.model, self.threads = method, model, threads

    def setup(self, worker) -> None:  # noqa: D102 - WorkerPlugin interface
        init_worker(self.method, self.model, self.threads)
