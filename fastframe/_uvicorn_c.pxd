# Augmenting declarations for _uvicorn_py.py, which Cython compiles as it is
# into _uvicorn_c (the .py stays the pure twin; _impl.py chooses).  Types
# only; per-message methods called unbound (docs/performance.md).

# cimported under C-prefixed aliases: see _connection_c.pxd.
from fastframe._connection_c cimport Writer as CWriter
from fastframe._protocol_c cimport Connection as CConnection

# Read on every read, as C globals: Cython does not cache module globals on
# Python 3.12+ (see connection.pxd).
cdef object _on_app_message, _on_app_message_error

cdef class AdapterCore:
    cdef public CConnection conn
    cdef public CWriter _writer
    cdef public object config, app, loop, app_state, connections, tasks, default_headers
    cdef public object max_queue, ping_interval, ping_timeout, transport, scope, client, server
    cdef public object _buffer, _queue, _waiter, _disconnect, _drain, _denial
    cdef public object _close_timer, _ping_timer, _ping_sent, _last_recv
    cdef public long _reads, _seen_reads
    cdef public bint _accepted, _close_sent, _lost, _reading_paused, _writing_paused
    cdef dict __dict__
    cdef object __weakref__

    cpdef _put(self, object message)
    cpdef _flush(self)
    cpdef bint _queue_full(self)
