# Augmenting declarations for protocol.py, which Cython compiles as it is
# (the compiled layer); the .py is the pure twin, loaded as plain Python when
# FASTFRAME_NO_EXTENSIONS is set (see _impl.py).  Only types go here: every
# behaviour is in protocol.py, once.

cdef Py_ssize_t _WRITELINES_MIN

cdef class Connection:
    cdef public object client, max_message_size, subprotocols, origins, extra_headers, state
    cdef public object compression, process_request, deliver_fragments, defer_accept
    cdef public object subprotocol, request, response, close_code, close_reason
    cdef public object _pending, _msg_len, _msg_first, _deflate, _mask, _parser
    cdef public object _request_parser, _response_parser, _key
    cdef public object _msg_z, _msg_buf, _utf8, _pings
    cdef public int _msg_op
    cdef public list _out
    cdef dict __dict__

    cpdef receive_into(self, object data, object on_message, object on_error, object arg, object size=*)
    cpdef send(self, object message, object compress=*)
