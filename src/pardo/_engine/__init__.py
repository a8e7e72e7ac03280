"""The engine: the loop that turns an iterator of tasks into batches on a backend and results back.

It knows backends only through the ``Backend`` base (``submit() -> Future`` and flags), and it is
handed its policies (batch size, faults, progress reporter) ready-made by the front.
"""
