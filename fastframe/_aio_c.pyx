# cython: language_level=3, embedsignature=True
# distutils: language = c
"""The asyncio layer's two compiled helpers: a send straight to the socket,
and the awaitable behind ``async for message in ws`` when a message is
already queued.

Behaviour is defined by the pure twin ``_aio_py.py``; docstrings live in
``_aio_c.pyi``; why each exists is in docs/performance.md.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_SIZE

import collections

__all__ = ["DIRECT_SEND", "queued_next", "try_send"]

# ---------------------------------------------------------------- direct send

cdef extern from *:
    """
    #ifdef _WIN32
    #define FF_DIRECT_SEND 0
    #define FF_IOV_MAX 1
    struct ff_iovec { void *iov_base; size_t iov_len; };
    static Py_ssize_t ff_try_sendv(long fd, struct ff_iovec *iov, int n) { return 0; }
    #else
    #include <errno.h>
    #include <string.h>
    #include <sys/socket.h>
    #include <sys/uio.h>
    #define FF_DIRECT_SEND 1
    #define FF_IOV_MAX 64
    #define ff_iovec iovec
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0  /* macOS: CPython ignores SIGPIPE already */
    #endif
    /* Whatever the socket takes now, without blocking; 0 on EAGAIN or any
       error (the caller then hands everything to its transport, which meets
       the same error and reports it the usual way). */
    static Py_ssize_t ff_try_sendv(long fd, struct iovec *iov, int n) {
        struct msghdr msg;
        ssize_t r;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = n;
        do {
            r = (n == 1) ? send((int)fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT)
                         : sendmsg((int)fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (r < 0 && errno == EINTR);
        return r < 0 ? 0 : (Py_ssize_t)r;
    }
    #endif
    """
    int FF_DIRECT_SEND
    int FF_IOV_MAX
    struct ff_iovec:
        void *iov_base
        size_t iov_len
    Py_ssize_t ff_try_sendv(long fd, ff_iovec *iov, int n) nogil


DIRECT_SEND = bool(FF_DIRECT_SEND)


@cython.binding(False)
def try_send(long fd, list chunks):
    cdef ff_iovec iov[64]
    cdef Py_ssize_t i, n = PyList_GET_SIZE(chunks), total = 0, sent = 0
    cdef object c
    if 0 < n <= FF_IOV_MAX:
        for i in range(n):
            c = chunks[i]
            if not PyBytes_CheckExact(c):
                break
            # Safe: c is an exact bytes held by the list for the whole call.
            iov[i].iov_base = PyBytes_AS_STRING(c)
            iov[i].iov_len = <size_t>PyBytes_GET_SIZE(c)
            total += PyBytes_GET_SIZE(c)
        else:
            sent = ff_try_sendv(fd, iov, <int>n)
            if sent == total:
                return None
    rest = b"".join(chunks)
    return rest[sent:] if sent else rest


# ---------------------------------------------------------------- awaiting a queue

_popleft = collections.deque.popleft


@cython.final
@cython.freelist(16)
cdef class QueuedNext:
    """See _aio_c.pyi.  Its own iterator: the await calls ``__next__``
    (tp_iternext), which ends at once with the queue's head when there is
    one, else hands every step on to the coroutine ``then(arg)``."""
    cdef object _queue, _then, _arg, _inner
    cdef bint _done

    def __init__(self, *args, **kwargs):
        raise TypeError("QueuedNext is made by queued_next(queue, then, arg)")

    cdef inline void _started(self):
        # What the first step needs, let go once it has run (or never will).
        self._queue = self._then = self._arg = None

    def __await__(self):
        return self

    def __next__(self):
        return self._step(None)

    def send(self, value):
        return self._step(value)

    cdef object _step(self, object value):
        if self._inner is None:
            if self._done:
                raise RuntimeError("cannot reuse already awaited __anext__()")
            if value is not None:
                raise TypeError("can't send non-None value to a just-started coroutine")
            if self._queue:
                item = _popleft(self._queue)
                self._done = True
                self._started()
                raise StopIteration(item)
            self._inner = self._then(self._arg)
            self._started()
        # A reference of our own for the call: code it runs may close() us,
        # which drops self._inner.
        inner = self._inner
        try:
            return inner.send(value)
        except BaseException:
            self._done = True
            self._inner = None
            raise

    def throw(self, typ, val=None, tb=None):
        inner = self._inner
        if inner is not None:
            try:
                return inner.throw(typ) if val is None and tb is None else inner.throw(typ, val, tb)
            except BaseException:
                self._done = True
                self._inner = None
                raise
        # Not started (or over): the exception ends it where it stands, as
        # it would a coroutine that has not started; nothing was taken.
        self._done = True
        self._started()
        if val is None:
            val = typ() if isinstance(typ, type) else typ
        if tb is not None:
            val = val.with_traceback(tb)
        raise val

    def close(self):
        inner = self._inner
        self._done = True
        self._started()
        self._inner = None
        if inner is not None:
            inner.close()


@cython.binding(False)
def queued_next(queue, then, arg):
    # __new__ goes straight to tp_new and the freelist, with no argument
    # tuple for a constructor.
    cdef QueuedNext n = QueuedNext.__new__(QueuedNext)
    n._queue = queue
    n._then = then
    n._arg = arg
    return n
