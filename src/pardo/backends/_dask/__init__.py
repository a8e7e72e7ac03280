"""Run batches on a dask.distributed cluster: ``parallel_config(backend="dask")``.

One batch is one dask task (``_backend``). Arguments large by ``dask.sizeof`` are scattered once
per call and replaced in each batch by a placeholder (``_remote``), so an array shared by many
tasks crosses the network once. Results come back through the dask Future's done-callback:
``submit`` never waits. A ``Parallel`` nested in a dask task runs inside ``worker_client()``,
which takes the waiting thread out of the worker's pool (secede/rejoin), so nesting cannot
deadlock the cluster. Needs ``pardo[dask]`` where ``Parallel`` runs, and pardo on the workers.
Importing this package imports neither dask nor distributed; constructing the backend does.
"""

from pardo.backends._dask._backend import SUBMIT_KEYS, DaskBackend, backend_class
from pardo.backends._dask._remote import SCATTER_NBYTES

__all__ = ["SCATTER_NBYTES", "SUBMIT_KEYS", "DaskBackend", "backend_class"]
