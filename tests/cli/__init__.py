"""The ``pardo`` command line tests: a package, so its conftest does not shadow tests/conftest."""
