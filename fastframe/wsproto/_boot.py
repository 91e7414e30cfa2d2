"""Makes the switch when imported: the ``__main__`` of a worker process.

``python -m fastframe.wsproto COMMAND`` gives its ``__main__`` module this
module's spec, so that multiprocessing's "spawn" (hypercorn ``--workers``,
uvicorn ``--workers``/``--reload``) runs this module as the worker's
``__mp_main__`` before it unpickles the worker's target: the workers import
fastframe.wsproto as wsproto too.  (A package's ``__main__`` is never re-run
in a worker, so the CLI module itself cannot do this.)
"""

from __future__ import annotations

from . import install

install()
