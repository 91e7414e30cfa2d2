# Augmenting declarations for _uvicorn_py.py, which Cython compiles as it is
# into _uvicorn_c (the .py stays the pure twin; _impl.py chooses).  Types
# only; per-message methods called unbound (docs/performance.md).

cimport cython
# cimported under C-prefixed aliases: see _connection_c.pxd.
from fastframe._connection_c cimport StreamCore as CStreamCore
from fastframe._protocol_c cimport Connection as CConnection

# Read per message, as C globals: Cython does not cache module globals on
# Python 3.12+ (see _connection_c.pxd).
cdef object _on_app_message, _on_app_message_error, _on_late_message, _core_flush, _core_taken

@cython.final
cdef class AsgiFront:
    cdef public CStreamCore core
    cdef public CConnection conn
    cdef public object config, app, loop, app_state, connections, tasks, default_headers
    cdef public object scope, client, server, _queue, _waiter, _disconnect, _denial
    cdef public bint _accepted, _close_sent
    cdef dict __dict__
    cdef object __weakref__

    cpdef _put(self, object message)
