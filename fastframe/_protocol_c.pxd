# Augmenting declarations for _protocol_py.py, which Cython compiles as it
# is into _protocol_c (the .py stays the pure twin; _impl.py chooses).  Only
# types go here: every behaviour is in _protocol_py.py, once.

cdef Py_ssize_t _WRITELINES_MIN
# Module constants read on the per-message path, as C globals: a module
# global costs a dict lookup per use on Python 3.12+, where Cython no longer
# caches them (its cache relies on dict version tags, which 3.12 deprecated).
cdef int _CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG
cdef object _OPEN, _CLOSING, _CLOSED
cdef tuple _NO_EVENTS

cdef class Connection:
    cdef public object client, max_message_size, subprotocols, origins, extra_headers, state
    cdef public object compression, process_request, deliver_fragments, defer_accept
    cdef public object subprotocol, request, response, close_code, close_reason
    cdef public object _pending, _msg_len, _msg_first, _deflate, _mask, _parser
    cdef public object _request_parser, _response_parser, _key
    cdef public object _msg_z, _msg_buf, _utf8, _pings
    cdef public int _msg_op
    cdef public list output
    cdef object _feed, _encode
    # No __dict__: a cpdef method called on an exact Connection then skips
    # Cython's check for a Python override (docs/performance.md).

    cpdef receive_into(self, object data, object on_message, object on_error, object arg, object size=*)
    cpdef send(self, object message, object compress=*)
