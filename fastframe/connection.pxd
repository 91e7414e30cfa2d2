# Augmenting declarations for connection.py, compiled by Cython as it is; the
# .py is the pure twin (see protocol.pxd and _impl.py).  Types only: the
# attributes, and the methods on the per-message path as cpdef, so that the
# compiled code calls them directly instead of looking them up by name.
#
# Writer and WebSocket are final (nothing can hand fastframe a subclass), so
# their cpdef methods are called with no check for a Python override.  That
# check looks the method up on the instance with a cache, per call site, that
# holds for one instance only (Cython gives each instance its own __dict__),
# so with many connections it missed on nearly every call and made and
# dropped a bound method each time.  ProtocolCore and Connection are not
# final (a Python class derives from the first; the second is public API):
# their per-message methods are called as ``ProtocolCore.flush(self)``, which
# Cython compiles to the same direct call, and which is the same call in the
# pure twin.

cimport cython
from fastframe.protocol cimport Connection

# Module globals read per message, as C globals: on Python 3.12+ Cython no
# longer caches module globals (its cache relies on dict version tags, which
# 3.12 deprecated), so each use would be a dict lookup.
cdef object _OPEN, _try_send, _append, _popleft, _queued_next, _wait_next
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
    @cython.locals(proto=ProtocolCore, conn=Connection)
    cpdef send_nowait(self, object message, object compress=*)

cdef class ProtocolCore:
    cdef public Connection conn
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
    @cython.locals(conn=Connection)
    cpdef flush(self)
