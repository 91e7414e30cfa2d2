# Augmenting declarations for _connection_py.py, which Cython compiles as it
# is into _connection_c (the .py stays the pure twin; _impl.py chooses).
# Types only: the attributes, and the methods on the per-message path as
# cpdef, called without a check for a Python override (final classes, and
# unbound calls on the others: docs/performance.md).

cimport cython
# Types of other compiled modules are cimported under a C-prefixed alias:
# the .py source binds the plain name to whichever implementation the
# selector chose, and Cython refuses an import into a cimported name.
from fastframe._protocol_c cimport Connection as CConnection

# Module globals read per message, as C globals: on Python 3.12+ Cython no
# longer caches module globals (its cache relies on dict version tags, which
# 3.12 deprecated), so each use would be a dict lookup.
cdef object _aio, _OPEN, _try_send, _append, _popleft, _queued_next, _wait_next
cdef object _on_listener_error, _SENT, _EXHAUSTED

@cython.final
cdef class Writer:
    cdef public object transport
    cdef public long fd
    cdef public bint pending, writelines

    cpdef write(self, list out)

cdef class _Sent:
    pass

@cython.final
cdef class WebSocket:
    cdef public ProtocolCore _proto
    cdef public object id, _messages, _waiter, _pong_waiters
    cdef dict __dict__
    cdef object __weakref__

    cpdef _deliver(self, object data)
    @cython.locals(proto=ProtocolCore, conn=CConnection)
    cpdef send_nowait(self, object message, object compress=*)

cdef class ProtocolCore:
    cdef public CConnection conn
    cdef public WebSocket ws
    cdef public object loop, listener, sink, transport, peer, _on_open, _on_finish
    cdef public object write_limit, max_write_buffer, max_queue, close_timeout
    cdef public bint flush_scheduled, in_read, paused_writing, paused_reading, finished
    cdef public object _drain_waiters, closed_future, opened_future, last_recv, created
    cdef public object close_started, ping_sent
    cdef public long long reads, seen_reads
    cdef public object _buffer
    cdef public Writer _writer
    cdef dict __dict__
    cdef object __weakref__

    cpdef _check_queue(self)
    cpdef after_send(self, object queued)
    cpdef schedule_flush(self)
    @cython.locals(conn=CConnection)
    cpdef flush(self)
