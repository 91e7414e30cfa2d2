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
cdef object _aio, _OPEN, _CONNECTING, _CLOSED, _try_send, _append, _popleft, _queued_next, _wait_next
cdef object _on_listener_error, _SENT, _EXHAUSTED

@cython.final
cdef class Writer:
    cdef public object transport
    cdef public long fd
    cdef public bint pending, writelines

    cpdef Py_ssize_t write(self, list out) except -1

cdef class _Sent:
    pass

@cython.final
cdef class WebSocket:
    cdef public StreamCore _proto
    cdef public object id, _messages, _waiter, _pong_waiters, _on_open, _on_finish, listener, opened, server
    cdef dict __dict__
    cdef object __weakref__

    cpdef _deliver(self, object data)
    @cython.locals(proto=StreamCore, conn=CConnection)
    cpdef send_nowait(self, object message, object compress=*)

cdef class Ticker:
    cdef public object loop, cores, handle
    cdef public double period

# Not final: StreamProtocol (a Python class) derives from it, so its
# per-message methods are called unbound (StreamCore.flush(self)).
cdef class StreamCore:
    cdef public CConnection conn
    cdef public object loop, front, sink, sink_error, sink_arg, inbox, transport, peer
    cdef public Py_ssize_t write_limit, queued, ours
    cdef public object max_write_buffer, close_timeout, ping_interval, ping_timeout
    cdef public object open_timeout
    cdef public Py_ssize_t max_queue
    cdef public bint hold_reading, flush_scheduled, in_read, paused_writing, paused_reading, finished
    cdef public object _drain_waiters, closed_future, created, close_started, ping_sent, ping_payload
    cdef public bint ping_answered
    cdef public long long reads, reads_at_ping
    cdef public object _buffer, _ticker
    cdef public Writer _writer
    cdef dict __dict__
    cdef object __weakref__

    # Not cpdef: reached only from buffer_updated and data_received, so a
    # plain C method (its def in the .py becomes cdef when compiled).
    cdef _received(self, object data, object size)
    cpdef pause_reading(self)
    cpdef resume_reading(self)
    cpdef taken(self)
    cpdef after_send(self, object more_coming)
    cpdef schedule_flush(self)
    @cython.locals(conn=CConnection)
    cpdef flush(self)
    cpdef close(self, object code=*, object reason=*)
    cpdef fail_now(self)
