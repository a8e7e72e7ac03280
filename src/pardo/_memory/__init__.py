"""Disk caching of function results (``pardo.Memory``); knows nothing of backends or Parallel."""
