# Augmenting declarations for _protocol_py.py, which Cython compiles as it
# is into _protocol_c (the .py stays the pure twin; _impl.py chooses).  Only
# types go here: every behaviour is in _protocol_py.py, once.

cimport cython

cdef Py_ssize_t _WRITELINES_MIN
# Module constants read on the per-message path, as C globals: a module
# global costs a dict lookup per use on Python 3.12+, where Cython no longer
# caches them (its cache relies on dict version tags, which 3.12 deprecated).
cdef int _CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG
cdef object _OPEN, _CLOSING, _CLOSED
cdef tuple _NO_EVENTS

# The helpers of Connection are final (never subclassed): the assembler's
# cpdef methods are called with no check for a Python override.
@cython.final
cdef class MessageAssembler:
    cdef public object max_size, deliver_fragments, deflate, _buf, _utf8
    cdef public int op
    cdef public bint _compressed, _first, utf8_checked
    cdef public Py_ssize_t _len

    # Per message when messages are compressed or fragmented.
    cpdef frame(self, int op, bytes payload, bint fin, bint rsv1, list events)
    cpdef _on_data(self, bytes payload, bint fin, list events)

@cython.final
cdef class ServerHandshake:
    cdef public object parser, key, pending

@cython.final
cdef class ClientHandshake:
    cdef public object key, parser

cdef class Connection:
    cdef public object client, subprotocols, origins, extra_headers, state
    cdef public object compression, process_request, defer_accept, defer_failure, failure
    cdef public object subprotocol, request, response, close_code, close_reason
    cdef public object _deflate, _mask, _parser, _handshake, _pings
    # Typed: receive_into reads whether a message is open from its struct.
    cdef public MessageAssembler _assembler
    cdef public list output
    cdef object _feed, _encode
    # No __dict__: a cpdef method called on an exact Connection then skips
    # Cython's check for a Python override (docs/performance.md).

    cpdef receive_into(self, object data, object on_message, object on_error, object arg, object size=*)
    cpdef send(self, object message, object compress=*)
    # A C call from receive_data and receive_into for each frame that is not
    # a whole message (every compressed message among them).
    cdef _on_frame(self, object frame, list events)
