"""Makes a worker import ``orchestrator`` from another source tree (event_to_action.py
``--engine-tree``): a before/after of two commits on the same machine in the same hour.

Put this folder on ``PYTHONPATH`` and name the tree in ``BENCH_ENGINE_TREE`` (not an
``ORCHESTRATOR_`` name: the worker refuses unknown ones). The project's editable install and the
worker's working directory would both win over ``PYTHONPATH``, so the package is found here
first, in front of every other finder.
"""

import importlib.machinery
import os
import sys

_TREE = os.environ.get("BENCH_ENGINE_TREE")


class _TreeFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):  # importlib's finder protocol
        if name == "orchestrator":
            return importlib.machinery.PathFinder.find_spec(name, [_TREE], target)
        return None  # submodules follow the package's own __path__, in the tree


if _TREE:
    sys.meta_path.insert(0, _TreeFinder)
