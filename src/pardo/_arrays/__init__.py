"""Large arrays: the private temp folder, the memmapping reducers, and ``dump``/``load``."""
