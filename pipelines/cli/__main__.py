"""``python -m pipelines.cli …``: the ``strata`` command."""

from . import entry

entry()
