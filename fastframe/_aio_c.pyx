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

cdef extern from *:
    """
    /* QueuedNext: the awaitable queued_next() returns.  Written in C and made
       with PyType_FromSpec, the supported way to give a type the slots it
       needs: am_send (3.10+), through which an await takes the result with
       no StopIteration at all, and tp_iternext.  Cython cannot define am_send,
       and a StopIteration raised from Cython code carries a traceback entry
       that costs more than the coroutine this awaitable saves. */
    typedef struct {
        PyObject_HEAD
        PyObject *queue, *then, *arg, *inner;
        int done;
    } ff_qn;

    static PyObject *ff_qn_type = NULL;
    static PyObject *ff_qn_popleft = NULL;  /* collections.deque.popleft */

    static void ff_qn_started(ff_qn *self) {
        /* What the first step needs, let go once it has run (or never will). */
        Py_CLEAR(self->queue);
        Py_CLEAR(self->then);
        Py_CLEAR(self->arg);
    }

    /* One step, as am_send: 0 (PYGEN_RETURN) and the result when done, 1
       (PYGEN_NEXT) and the value to yield, -1 (PYGEN_ERROR) with an
       exception set; *result is a new reference or NULL. */
    static int ff_qn_step(ff_qn *self, PyObject *arg, PyObject **result) {
        PyObject *inner;
        int r;
        *result = NULL;
        if (self->inner == NULL) {
            if (self->done) {
                PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited __anext__()");
                return -1;
            }
            if (arg != Py_None) {
                PyErr_SetString(PyExc_TypeError, "can't send non-None value to a just-started coroutine");
                return -1;
            }
            r = PyObject_IsTrue(self->queue);
            if (r < 0) return -1;
            if (r) {
                *result = PyObject_CallOneArg(ff_qn_popleft, self->queue);
                self->done = 1;
                ff_qn_started(self);
                return *result == NULL ? -1 : 0;
            }
            inner = PyObject_CallOneArg(self->then, self->arg);
            ff_qn_started(self);
            if (inner == NULL) {
                self->done = 1;
                return -1;
            }
            self->inner = inner;
        }
        /* A reference of our own for the call: code it runs may close() us,
           which drops self->inner. */
        inner = self->inner;
        Py_INCREF(inner);
    #if PY_VERSION_HEX >= 0x030A0000
        r = (int)PyIter_Send(inner, arg, result);
    #else
        *result = PyObject_CallMethod(inner, "send", "(O)", arg);
        if (*result != NULL) r = 1;
        else r = _PyGen_FetchStopIterationValue(result) == 0 ? 0 : -1;
    #endif
        Py_DECREF(inner);
        if (r != 1) {
            self->done = 1;
            Py_CLEAR(self->inner);
        }
        return r;
    }

    #if PY_VERSION_HEX >= 0x030A0000
    static PySendResult ff_qn_am_send(PyObject *self, PyObject *arg, PyObject **result) {
        return (PySendResult)ff_qn_step((ff_qn *)self, arg, result);
    }
    #endif

    /* The end of a step without am_send: the result travels in a StopIteration
       (a tuple or an exception would be taken for its arguments: wrapped). */
    static PyObject *ff_qn_finish(int r, PyObject *res) {
        PyObject *exc;
        if (r != 0) return r == 1 ? res : NULL;
        if (PyTuple_Check(res) || PyExceptionInstance_Check(res)) {
            exc = PyObject_CallOneArg(PyExc_StopIteration, res);
            Py_DECREF(res);
            if (exc == NULL) return NULL;
            PyErr_SetObject(PyExc_StopIteration, exc);
            Py_DECREF(exc);
        } else {
            PyErr_SetObject(PyExc_StopIteration, res);
            Py_DECREF(res);
        }
        return NULL;
    }

    static PyObject *ff_qn_iternext(PyObject *self) {
        PyObject *res;
        int r = ff_qn_step((ff_qn *)self, Py_None, &res);
        return ff_qn_finish(r, res);
    }

    static PyObject *ff_qn_send(PyObject *self, PyObject *value) {
        PyObject *res;
        int r = ff_qn_step((ff_qn *)self, value, &res);
        return ff_qn_finish(r, res);
    }

    static PyObject *ff_qn_throw(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
        ff_qn *self = (ff_qn *)op;
        PyObject *inner = self->inner, *method, *res, *typ, *val;
        if (nargs < 1 || nargs > 3) {
            PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
            return NULL;
        }
        if (inner != NULL) {
            Py_INCREF(inner);
            method = PyObject_GetAttrString(inner, "throw");
            res = method == NULL ? NULL : PyObject_Vectorcall(method, args, (size_t)nargs, NULL);
            Py_XDECREF(method);
            Py_DECREF(inner);
            if (res == NULL) {
                self->done = 1;
                Py_CLEAR(self->inner);
            }
            return res;
        }
        /* Not started (or over): the exception ends it where it stands, as
           it would a coroutine that has not started; nothing was taken. */
        self->done = 1;
        ff_qn_started(self);
        typ = args[0];
        val = nargs > 1 ? args[1] : Py_None;
        if (val == Py_None && PyExceptionClass_Check(typ)) {
            val = PyObject_CallNoArgs(typ);
            if (val == NULL) return NULL;
        } else {
            if (val == Py_None) val = typ;
            Py_INCREF(val);
        }
        if (!PyExceptionInstance_Check(val)) {
            Py_DECREF(val);
            PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
            return NULL;
        }
        if (nargs > 2 && args[2] != Py_None) PyException_SetTraceback(val, args[2]);
        PyErr_SetObject((PyObject *)Py_TYPE(val), val);
        Py_DECREF(val);
        return NULL;
    }

    static PyObject *ff_qn_close(PyObject *op, PyObject *unused) {
        ff_qn *self = (ff_qn *)op;
        PyObject *inner = self->inner, *res;
        self->done = 1;
        ff_qn_started(self);
        if (inner == NULL) Py_RETURN_NONE;
        self->inner = NULL;  /* our reference moves to inner */
        res = PyObject_CallMethod(inner, "close", NULL);
        Py_DECREF(inner);
        return res;
    }

    static PyObject *ff_qn_await(PyObject *self) {
        Py_INCREF(self);
        return self;
    }

    static int ff_qn_traverse(PyObject *op, visitproc visit, void *arg) {
        ff_qn *self = (ff_qn *)op;
        Py_VISIT(Py_TYPE(op));
        Py_VISIT(self->queue);
        Py_VISIT(self->then);
        Py_VISIT(self->arg);
        Py_VISIT(self->inner);
        return 0;
    }

    static int ff_qn_clear(PyObject *op) {
        ff_qn *self = (ff_qn *)op;
        ff_qn_started(self);
        Py_CLEAR(self->inner);
        return 0;
    }

    static void ff_qn_dealloc(PyObject *op) {
        PyTypeObject *tp = Py_TYPE(op);
        PyObject_GC_UnTrack(op);
        ff_qn_clear(op);
        tp->tp_free(op);
        Py_DECREF(tp);
    }

    static PyObject *ff_qn_refuse(PyTypeObject *t, PyObject *a, PyObject *k) {
        PyErr_SetString(PyExc_TypeError, "QueuedNext is made by queued_next(queue, then, arg)");
        return NULL;
    }

    static PyMethodDef ff_qn_methods[] = {
        {"send", (PyCFunction)ff_qn_send, METH_O, NULL},
        {"throw", (PyCFunction)(void (*)(void))ff_qn_throw, METH_FASTCALL, NULL},
        {"close", (PyCFunction)ff_qn_close, METH_NOARGS, NULL},
        {NULL, NULL, 0, NULL}
    };

    static PyType_Slot ff_qn_slots[] = {
        {Py_am_await, (void *)ff_qn_await},
    #if PY_VERSION_HEX >= 0x030A0000
        {Py_am_send, (void *)ff_qn_am_send},
    #endif
        {Py_tp_iter, (void *)ff_qn_await},
        {Py_tp_iternext, (void *)ff_qn_iternext},
        {Py_tp_methods, (void *)ff_qn_methods},
        {Py_tp_traverse, (void *)ff_qn_traverse},
        {Py_tp_clear, (void *)ff_qn_clear},
        {Py_tp_dealloc, (void *)ff_qn_dealloc},
        {Py_tp_new, (void *)ff_qn_refuse},
        {0, NULL}
    };

    static PyType_Spec ff_qn_spec = {
        "fastframe._aio_c.QueuedNext", sizeof(ff_qn), 0,
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, ff_qn_slots
    };

    static int ff_qn_init(PyObject *popleft) {
        ff_qn_type = PyType_FromSpec(&ff_qn_spec);
        if (ff_qn_type == NULL) return -1;
        Py_INCREF(popleft);
        ff_qn_popleft = popleft;
        return 0;
    }

    static PyObject *ff_qn_get_type(void) {
        Py_INCREF(ff_qn_type);
        return ff_qn_type;
    }

    static PyObject *ff_qn_new(PyObject *queue, PyObject *then, PyObject *arg) {
        ff_qn *self = PyObject_GC_New(ff_qn, (PyTypeObject *)ff_qn_type);
        if (self == NULL) return NULL;
        /* PyObject_GC_New took a reference to the (heap) type for it. */
        Py_INCREF(queue);
        Py_INCREF(then);
        Py_INCREF(arg);
        self->queue = queue;
        self->then = then;
        self->arg = arg;
        self->inner = NULL;
        self->done = 0;
        PyObject_GC_Track((PyObject *)self);
        return (PyObject *)self;
    }
    """
    object ff_qn_get_type()
    int ff_qn_init(object popleft) except -1
    object ff_qn_new(object queue, object then, object arg)


ff_qn_init(collections.deque.popleft)
QueuedNext = ff_qn_get_type()


@cython.binding(False)
def queued_next(queue, then, arg):
    return ff_qn_new(queue, then, arg)
