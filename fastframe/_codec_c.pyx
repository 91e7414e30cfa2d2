# cython: language_level=3, embedsignature=True
# distutils: language = c
"""The compiled hot path of fastframe: masking, frame parsing and encoding, UTF-8.

Behaviour is defined by the pure twin ``_codec_py.py``; this module does the
same work at pointer level.  Docstrings for the public surface live in
``_codec_c.pyi``.  Not marked ``freethreading_compatible``: the mask key pool
and each parser assume the GIL serialises callers.
"""

cimport cython
from cpython.buffer cimport (
    PyBUF_SIMPLE,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_CheckExact,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_CheckExact, PyByteArray_GET_SIZE
from cpython.exc cimport PyErr_Clear, PyErr_Occurred, PyErr_SetObject
from cpython.list cimport PyList_Append, PyList_GET_SIZE
from cpython.long cimport PyLong_AsLong, PyLong_Check
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

import operator
import os

from .exceptions import InvalidUTF8, LocalProtocolError, PayloadTooBig, ProtocolError
from .types import Opcode

__all__ = [
    "Frame",
    "FrameParser",
    "Utf8Validator",
    "apply_mask",
    "encode_frame",
    "encode_header",
    "mask_inplace",
    "validate_utf8",
]


cdef extern from "_mask.h" nogil:
    void ff_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *key)
    void ff_rotate_key(uint8_t *out, const uint8_t *key, size_t offset)
    void ff_utf8_init()
    uint32_t ff_utf8_step(uint32_t state, const uint8_t *s, size_t n, size_t *bad)
    uint32_t FF_UTF8_ERROR


cdef extern from "Python.h":
    # Declared here with PyObject** so that a payload can be grown in place
    # while it is owned by this module alone (refcount 1, never shared yet).
    int _PyBytes_Resize(PyObject **string, Py_ssize_t newsize) except -1
    PyObject *PyBytes_FromStringAndSize_raw "PyBytes_FromStringAndSize" (const char *v, Py_ssize_t n) except NULL
    void PyErr_GetExcInfo(PyObject **ptype, PyObject **pvalue, PyObject **ptraceback)


# RFC 6455 §5.2: payload length 126 announces a 16-bit length, 127 a 64-bit
# length whose most significant bit must be 0.
cdef enum:
    LEN16 = 126
    LEN64 = 127
    # RFC 6455 §5.5: control frames carry at most 125 bytes.
    MAX_CONTROL = 125
    # Parser states, the same numbers as in the pure twin.
    S_HEADER = 0
    S_PAYLOAD = 1
    S_FAILED = 2
    # A payload that does not arrive whole is allocated when its first bytes
    # come, for those (at least PAYLOAD_MIN, at most the announced length),
    # and grown geometrically as more come: what a partial frame holds
    # follows what arrived, whatever length its header announces.
    PAYLOAD_MIN = 256
    # Mask keys: bytes of os.urandom drawn at a time (see _next_key).
    POOL_SIZE = 4096
    # check_utf8: the message the parser follows (_msg), the same numbers
    # as in the pure twin: none open, uncompressed text (checked as its
    # bytes arrive), or any other (binary, compressed, or opened by a frame
    # that breaks RFC 6455 §5.4: left to the caller, which refuses it).
    MSG_NONE = 0
    MSG_TEXT = 1
    MSG_OTHER = 2
    # How the payload of the frame in progress is checked (_ftext): not at
    # all; a frame of a fragmented text message, checked as it arrives,
    # whole or in pieces; the one frame of a text message, checked only
    # when its payload arrives over more than one call (else decoding it
    # checks it in that call).
    FT_NONE = 0
    FT_FRAG = 1
    FT_SINGLE = 2

cdef extern from *:
    """
    #define FF_MAX_LEN64 0x7FFFFFFFFFFFFFFFULL

    /* A bytearray held against resizing for one parse, through its type's
       buffer slots: PyObject_GetBuffer and PyBuffer_Release less their
       generic dispatch (docs/performance.md, "One read buffer per thread"). */
    static inline int ff_hold_bytearray(PyObject *o, Py_buffer *view) {
        return PyByteArray_Type.tp_as_buffer->bf_getbuffer(o, view, PyBUF_SIMPLE);
    }
    static inline void ff_release_bytearray(Py_buffer *view) {
        PyObject *o = view->obj;
        PyByteArray_Type.tp_as_buffer->bf_releasebuffer(o, view);
        view->obj = NULL;
        Py_DECREF(o);
    }
    """
    # The largest 64-bit length: its most significant bit must be 0.
    const uint64_t MAX_LEN64 "FF_MAX_LEN64"
    int ff_hold_bytearray(object o, Py_buffer *view) except -1
    void ff_release_bytearray(Py_buffer *view)

# Opcode members by value (None for reserved values), so that a parsed frame
# carries the enum member at the cost of a tuple lookup.
cdef tuple _OPCODES = tuple(
    Opcode(i) if i in Opcode._value2member_map_ else None for i in range(16)
)

# _B0_OK[allow_rsv1][b0] is 1 when the first header byte is acceptable:
# known opcode (§5.2), RSV2/RSV3 clear and RSV1 clear unless allowed
# (§5.2, RFC 7692 §6), and a control frame final (§5.5).  One table lookup
# replaces four tests on the hot path; the slow path names the error.
cdef uint8_t _B0_OK[2][256]
# _OP_VALID[op] is 1 for the six opcodes RFC 6455 §5.2 defines.
cdef uint8_t _OP_VALID[16]


cdef void _init_tables():
    cdef int allow, b0, op
    for op in range(16):
        _OP_VALID[op] = _OPCODES[op] is not None
    for allow in range(2):
        for b0 in range(256):
            op = b0 & 0x0F
            _B0_OK[allow][b0] = (
                _OPCODES[op] is not None
                and not (b0 & 0x30)
                and (allow or not (b0 & 0x40))
                and (not (op & 0x8) or (b0 & 0x80))
            )


_init_tables()
ff_utf8_init()


# no_gc: a Frame holds only bytes and an Opcode member (or a plain int), so
# it can never be part of a reference cycle; keeping it out of the cyclic GC
# saves the tracking on every parsed frame and keeps streams of small frames
# from triggering collections.
@cython.no_gc
@cython.freelist(1024)
cdef class Frame:
    # Public (settable), as the pure twin's attributes.
    cdef public bint fin
    cdef public bint rsv1
    cdef public bint rsv2
    cdef public bint rsv3
    cdef public object opcode
    cdef public bytes payload

    def __init__(self, opcode, bytes payload=b"", bint fin=True, bint rsv1=False,
                 bint rsv2=False, bint rsv3=False):
        cdef int op = opcode
        self.opcode = _OPCODES[op] if 0 <= op < 16 and _OPCODES[op] is not None else op
        self.payload = payload
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3

    def __eq__(self, other):
        if not isinstance(other, Frame):
            return NotImplemented
        cdef Frame o = <Frame>other
        return (
            self.opcode == o.opcode
            and self.fin == o.fin
            and self.rsv1 == o.rsv1
            and self.rsv2 == o.rsv2
            and self.rsv3 == o.rsv3
            and self.payload == o.payload
        )

    __hash__ = None

    def __repr__(self):
        from ._codec_py import _frame_repr
        return _frame_repr(self)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline Frame _make_frame(uint8_t b0, bytes payload):
    # Frame.__new__ goes straight to tp_new (and the freelist) without
    # argument parsing; the fields are set directly.
    cdef Frame f = Frame.__new__(Frame)
    f.fin = (b0 & 0x80) != 0
    f.rsv1 = (b0 & 0x40) != 0
    f.rsv2 = (b0 & 0x20) != 0
    f.rsv3 = (b0 & 0x10) != 0
    # Unchecked index: b0 & 0x0F < 16 == len(_OPCODES).
    f.opcode = _OPCODES[b0 & 0x0F]
    f.payload = payload
    return f


# ---------------------------------------------------------------- buffers

cdef int _get_buffer(object obj, Py_buffer *view) except -1:
    """A C-contiguous byte view of any bytes-like object.

    Non-contiguous buffers (a strided memoryview) are copied once into bytes,
    as the pure twin does with ``memoryview.tobytes()``.
    """
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
        return 0
    except BufferError:
        pass
    except TypeError:
        raise TypeError(
            f"a bytes-like object is required, not {type(obj).__name__!r}"
        ) from None
    PyObject_GetBuffer(memoryview(obj).tobytes(), view, PyBUF_SIMPLE)
    return 0


cdef inline int _get_key(object mask, uint8_t key[4]) except -1:
    cdef Py_buffer view
    if PyBytes_CheckExact(mask):
        if PyBytes_GET_SIZE(mask) != 4:
            raise ValueError(f"mask must be 4 bytes long, not {PyBytes_GET_SIZE(mask)}")
        memcpy(key, PyBytes_AS_STRING(mask), 4)
        return 0
    _get_buffer(mask, &view)
    try:
        if view.len != 4:
            raise ValueError(f"mask must be 4 bytes long, not {view.len}")
        memcpy(key, view.buf, 4)
    finally:
        PyBuffer_Release(&view)
    return 0


# ---------------------------------------------------------------- masking

@cython.binding(False)
def apply_mask(data, mask):
    cdef uint8_t key[4]
    cdef Py_buffer view
    cdef bytes out
    _get_key(mask, key)
    if PyBytes_CheckExact(data):
        out = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(data))
        ff_mask_copy(<uint8_t *>PyBytes_AS_STRING(out),
                     <const uint8_t *>PyBytes_AS_STRING(data),
                     <size_t>PyBytes_GET_SIZE(data), key)
        return out
    _get_buffer(data, &view)
    try:
        out = PyBytes_FromStringAndSize(NULL, view.len)
        ff_mask_copy(<uint8_t *>PyBytes_AS_STRING(out), <const uint8_t *>view.buf,
                     <size_t>view.len, key)
    finally:
        PyBuffer_Release(&view)
    return out


# binding(False) on the module-level hot functions: a plain builtin function
# is called with less overhead than a Cython function object (about 8 ns of
# the 35 ns a small mask costs).
@cython.binding(False)
def mask_inplace(buf, mask):
    cdef uint8_t key[4]
    cdef Py_buffer view
    _get_key(mask, key)
    if PyByteArray_CheckExact(buf):
        # The common case, without acquiring a buffer; nothing below can
        # resize the bytearray while we hold its pointer.
        ff_mask_copy(<uint8_t *>PyByteArray_AS_STRING(buf),
                     <const uint8_t *>PyByteArray_AS_STRING(buf),
                     <size_t>PyByteArray_GET_SIZE(buf), key)
        return
    # PyBUF_SIMPLE accepts read-only buffers and refuses non-contiguous ones
    # (BufferError), like the twin; read-only is then refused as TypeError.
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        if view.readonly:
            raise TypeError("mask_inplace() needs a writable buffer")
        ff_mask_copy(<uint8_t *>view.buf, <const uint8_t *>view.buf, <size_t>view.len, key)
    finally:
        PyBuffer_Release(&view)


# A block of random bytes from os.urandom, handed out 4 bytes at a time as
# mask keys (RFC 6455 §5.3 asks for a strong source; one system call per
# 1024 frames instead of one per frame).
cdef bytes _pool = b""
cdef Py_ssize_t _pool_pos = POOL_SIZE


cdef inline void _next_key(uint8_t key[4]) except *:
    global _pool, _pool_pos
    if _pool_pos >= POOL_SIZE:
        _pool = os.urandom(POOL_SIZE)
        _pool_pos = 0
    memcpy(key, PyBytes_AS_STRING(_pool) + _pool_pos, 4)
    _pool_pos += 4


# ---------------------------------------------------------------- encoding

cdef inline Py_ssize_t _write_header(uint8_t *p, int op, uint64_t n, bint fin,
                                     bint rsv1, bint masked) noexcept:
    cdef uint8_t m = 0x80 if masked else 0
    p[0] = <uint8_t>(op | (0x80 if fin else 0) | (0x40 if rsv1 else 0))
    # RFC 6455 §5.2: the minimal number of bytes encodes the length.
    if n < LEN16:
        p[1] = m | <uint8_t>n
        return 2
    if n < 0x10000:
        p[1] = m | LEN16
        p[2] = <uint8_t>(n >> 8)
        p[3] = <uint8_t>n
        return 4
    p[1] = m | LEN64
    cdef int i
    for i in range(8):
        p[2 + i] = <uint8_t>(n >> (56 - 8 * i))
    return 10


cdef inline Py_ssize_t _header_size(uint64_t n, bint masked) noexcept:
    return (2 if n < LEN16 else (4 if n < 0x10000 else 10)) + (4 if masked else 0)


cdef int _check_opcode(object opcode, Py_ssize_t n, bint fin) except -1:
    cdef long op
    # No try/except here: it costs more than the rest of a small encode.
    if not PyLong_Check(opcode):
        raise TypeError(f"opcode must be an int, not {type(opcode).__name__!r}")
    op = PyLong_AsLong(opcode)
    if op == -1 and PyErr_Occurred():
        PyErr_Clear()  # OverflowError: far out of range, so reserved
        op = 16
    if op < 0 or op > 15 or not _OP_VALID[op]:
        raise LocalProtocolError(f"invalid opcode {opcode:#x} (RFC 6455 §5.2)")
    # RFC 6455 §5.5: control frames are never fragmented and carry ≤ 125 bytes.
    if op & 0x8:
        if not fin:
            raise LocalProtocolError(
                f"control frame {Opcode(op).name} must not be fragmented (RFC 6455 §5.5)"
            )
        if n > MAX_CONTROL:
            raise LocalProtocolError(
                f"control frame {Opcode(op).name} payload is {n} bytes, "
                f"over the 125-byte limit (RFC 6455 §5.5)"
            )
    return <int>op


cdef bytes _encode(int op, const uint8_t *src, Py_ssize_t n, bint fin, bint rsv1,
                   object mask):
    cdef uint8_t key[4]
    cdef bint masked = mask is not None and mask is not False
    cdef Py_ssize_t hlen = _header_size(<uint64_t>n, masked)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, hlen + n)
    cdef uint8_t *p = <uint8_t *>PyBytes_AS_STRING(out)
    if masked:
        if mask is True:
            _next_key(key)
        else:
            _get_key(mask, key)
        _write_header(p, op, <uint64_t>n, fin, rsv1, True)
        memcpy(p + hlen - 4, key, 4)
        ff_mask_copy(p + hlen, src, <size_t>n, key)
    else:
        _write_header(p, op, <uint64_t>n, fin, rsv1, False)
        memcpy(p + hlen, src, <size_t>n)
    return out


@cython.binding(False)
def encode_frame(opcode, payload, *, bint fin=True, bint rsv1=False, mask=None):
    cdef Py_buffer view
    cdef int op
    if PyBytes_CheckExact(payload):
        op = _check_opcode(opcode, PyBytes_GET_SIZE(payload), fin)
        return _encode(op, <const uint8_t *>PyBytes_AS_STRING(payload),
                       PyBytes_GET_SIZE(payload), fin, rsv1, mask)
    _get_buffer(payload, &view)
    try:
        op = _check_opcode(opcode, view.len, fin)
        return _encode(op, <const uint8_t *>view.buf, view.len, fin, rsv1, mask)
    finally:
        PyBuffer_Release(&view)


@cython.binding(False)
def encode_header(opcode, length, *, bint fin=True, bint rsv1=False):
    cdef uint8_t buf[10]
    length = operator.index(length)
    if length < 0:
        raise ValueError("length must not be negative")
    if length > MAX_LEN64:
        raise LocalProtocolError("payload too long for a WebSocket frame")
    cdef uint64_t n = length
    cdef int op = _check_opcode(opcode, <Py_ssize_t>n, fin)
    cdef Py_ssize_t hlen = _write_header(buf, op, n, fin, rsv1, False)
    return PyBytes_FromStringAndSize(<char *>buf, hlen)


cdef inline Py_ssize_t _clamp(Py_ssize_t n, Py_ssize_t size) noexcept:
    """How many of a buffer's ``n`` bytes to parse: the first ``size``, or all
    of them when ``size`` is negative (the default) or larger than ``n``."""
    return n if size < 0 or size > n else size


# ---------------------------------------------------------------- parsing

# Final: its C methods are called directly, not through a vtable, and the
# compiler can inline them (docs/performance.md).
@cython.final
cdef class FrameParser:
    cdef readonly bint expect_mask
    cdef readonly bint allow_rsv1
    cdef uint64_t _max
    # The limit for text and binary frames without RSV1 (<= _max).
    cdef uint64_t _max_plain
    cdef int _state
    # Header bytes collected across feeds (at most 14: 2 + 8 + 4).
    cdef uint8_t _hdr[14]
    cdef Py_ssize_t _hdr_len
    # The frame whose payload is arriving: first byte, key, length, and the
    # bytes object being filled (owned here alone until it is complete).
    cdef uint8_t _b0
    cdef uint8_t _key[4]
    cdef bint _masked
    cdef uint64_t _len
    cdef uint64_t _fill
    cdef PyObject *_payload
    cdef Py_ssize_t _cap
    cdef object _error
    # check_utf8 (RFC 6455 §8.1, fail fast): the message followed (MSG_*),
    # the UTF-8 DFA state across the frames of a text message (0 whenever
    # no checked frame is in progress), and how the frame in progress is
    # checked (FT_*).
    cdef readonly bint check_utf8
    cdef uint8_t _msg
    cdef uint8_t _ftext
    cdef uint32_t _u8
    # During feed_messages: where whole messages go, and errors from there.
    cdef object _sink
    cdef object _sink_error
    cdef object _sink_arg

    def __cinit__(self):
        self._payload = NULL

    def __init__(self, *, expect_mask, max_frame_size=1 << 20, allow_rsv1=False,
                 max_uncompressed_frame_size=None, check_utf8=False):
        if max_frame_size is None:
            self._max = MAX_LEN64
        elif max_frame_size < 0:
            raise ValueError("max_frame_size must be >= 0 or None")
        else:
            self._max = min(max_frame_size, MAX_LEN64)
        if max_uncompressed_frame_size is None:
            self._max_plain = self._max
        elif max_uncompressed_frame_size < 0:
            raise ValueError("max_uncompressed_frame_size must be >= 0 or None")
        else:
            self._max_plain = min(max_uncompressed_frame_size, self._max)
        self.expect_mask = bool(expect_mask)
        self.allow_rsv1 = bool(allow_rsv1)
        self.check_utf8 = bool(check_utf8)
        self._state = S_HEADER
        self._hdr_len = 0
        self._error = None
        self._msg = MSG_NONE
        self._ftext = FT_NONE
        self._u8 = 0

    def __dealloc__(self):
        Py_XDECREF(self._payload)
        self._payload = NULL

    @property
    def max_frame_size(self):
        return self._max

    @property
    def max_uncompressed_frame_size(self):
        return self._max_plain

    @property
    def failed(self):
        return self._state == S_FAILED

    @property
    def in_frame(self):
        return self._state == S_PAYLOAD or (self._state == S_HEADER and self._hdr_len > 0)

    cdef object _fail(self, object exc, list frames):
        self._state = S_FAILED
        self._error = exc
        Py_XDECREF(self._payload)
        self._payload = NULL
        if frames is not None:
            exc.frames = frames
        return exc

    cdef object _header_error(self, uint8_t b0, uint8_t b1):
        # The same rules in the same order as the twin's _check_header.
        cdef int op = b0 & 0x0F
        # RFC 6455 §5.2: opcodes 3-7 and 0xB-0xF are reserved.
        if _OPCODES[op] is None:
            return ProtocolError(f"reserved opcode {op:#x}")
        # RFC 6455 §5.2 / RFC 7692 §6: RSV bits only for a negotiated extension.
        if (b0 & 0x30) or ((b0 & 0x40) and not self.allow_rsv1):
            return ProtocolError("reserved bit set without a negotiated extension")
        # RFC 6455 §5.5: control frames are final and carry ≤ 125 bytes.
        if op & 0x8:
            if not (b0 & 0x80):
                return ProtocolError("fragmented control frame")
            if (b1 & 0x7F) > MAX_CONTROL:
                return ProtocolError("control frame payload longer than 125 bytes")
        # RFC 6455 §5.1: a client masks every frame, a server never does.
        if ((b1 & 0x80) != 0) != self.expect_mask:
            if self.expect_mask:
                return ProtocolError("unmasked frame from a client")
            return ProtocolError("masked frame from a server")
        return None

    cdef inline bint _bad_start(self, uint8_t b0, uint8_t b1) noexcept:
        """True when the first two header bytes break a rule; _header_error
        then says which.  One table lookup covers §5.2/§5.5 on the first
        byte; the mask bit must match the role (§5.1); a control frame
        carries ≤ 125 bytes (§5.5)."""
        return (not _B0_OK[self.allow_rsv1][b0] or ((b1 & 0x80) != 0) != self.expect_mask
                or ((b0 & 0x08) != 0 and (b1 & 0x7F) > MAX_CONTROL))

    cdef inline Py_ssize_t _header_len(self, uint8_t b1) noexcept:
        cdef uint8_t l7 = b1 & 0x7F
        return (2 if l7 < LEN16 else (4 if l7 == LEN16 else 10)) + (4 if b1 & 0x80 else 0)

    cdef int _read_header(self, const uint8_t *h, list frames) except -1:
        """Decode a complete header at h into the current-frame fields."""
        cdef uint8_t b1 = h[1]
        cdef uint64_t n = b1 & 0x7F
        cdef Py_ssize_t off = 2
        cdef int i
        cdef uint64_t cap
        if n == LEN16:
            # RFC 6455 §5.2 asks senders for the minimal encoding but does not
            # make a longer one invalid; like the peers, accept it.
            n = (<uint64_t>h[2] << 8) | h[3]
            off = 4
        elif n == LEN64:
            n = 0
            for i in range(8):
                n = (n << 8) | h[2 + i]
            off = 10
            # RFC 6455 §5.2: the most significant bit MUST be 0.
            if n > MAX_LEN64:
                raise self._fail(
                    ProtocolError("64-bit payload length has its most significant bit set"),
                    frames)
        if n > self._max_plain:
            # RFC 7692 §6.1: a text or binary frame without RSV1 is not
            # compressed; its payload is message bytes (RFC 6455 §10.4).
            cap = self._max_plain if (h[0] & 0x4F) == 0x01 or (h[0] & 0x4F) == 0x02 else self._max
            if n > cap:
                raise self._fail(
                    PayloadTooBig(f"frame of {n} bytes exceeds max_frame_size {cap}"), frames)
        self._b0 = h[0]
        self._len = n
        self._masked = (b1 & 0x80) != 0
        if self._masked:
            memcpy(self._key, h + off, 4)
        return 0

    cdef inline uint8_t _frame_text(self, uint8_t b0) noexcept:
        """check_utf8: how the payload of the frame with first byte b0, whose
        header is complete and whose payload goes to S_PAYLOAD, is checked
        (FT_*); follows the message.  A final frame with no message open (a
        whole message, a control frame) opens none.  (The header fast path
        tests that case itself and calls _track for the others.)"""
        if self._msg == MSG_NONE and (b0 & 0x80):
            return FT_SINGLE if b0 == 0x81 and self.check_utf8 else FT_NONE
        return self._track(b0)

    cdef uint8_t _track(self, uint8_t b0) noexcept:
        """_frame_text for a frame that may open, continue or end a message:
        the rules of MessageAssembler.frame (RFC 6455 §5.4, RFC 7692 §6.1).
        A frame that breaks them is not checked (the caller refuses it, with
        1002) and the message it opens is not either."""
        cdef uint8_t op = b0 & 0x0F
        cdef uint8_t ft = FT_NONE
        if not self.check_utf8 or (op & 0x08):
            return FT_NONE  # control frames belong to no message
        if op == 0:
            if self._msg == MSG_TEXT and not (b0 & 0x40):
                ft = FT_FRAG
            elif self._msg != MSG_OTHER:
                self._msg = MSG_OTHER  # nothing to continue, or RSV1 on a continuation
                self._u8 = 0
        elif self._msg != MSG_NONE:
            self._msg = MSG_OTHER  # a new message while one is open
            self._u8 = 0
        elif op == 1 and not (b0 & 0x40):
            self._msg = MSG_TEXT
            self._u8 = 0
            ft = FT_FRAG if not (b0 & 0x80) else FT_SINGLE
        else:
            self._msg = MSG_OTHER  # binary, or compressed (checked once inflated)
        if b0 & 0x80:
            self._msg = MSG_NONE
        return ft

    cdef int _check_text(self, const uint8_t *p, Py_ssize_t n, bint fin, list frames) except -1:
        """Run the UTF-8 DFA over n more unmasked bytes of the text message
        (RFC 6455 §8.1: fail at the first byte that cannot be UTF-8); with
        ``fin`` the message ends here and must not end inside a character."""
        cdef size_t bad = 0
        cdef uint32_t st = ff_utf8_step(self._u8, p, <size_t>n, &bad)
        if st == FF_UTF8_ERROR:
            raise self._fail(InvalidUTF8("text message is not valid UTF-8"), frames)
        if fin and st != 0:
            raise self._fail(InvalidUTF8("text message ends inside a UTF-8 sequence"), frames)
        self._u8 = st
        return 0

    cdef inline void _collect(self, uint8_t b0, uint8_t b1, const uint8_t *end, uint64_t n,
                              uint8_t ftext) noexcept:
        """The header fast path hands a frame's payload to S_PAYLOAD: it
        does not arrive whole, or it is text to check (``end`` is the end of
        the header, whose last 4 bytes are the key of a masked frame)."""
        if (b1 & 0x7F) < LEN16:  # else _read_header has set these
            self._b0 = b0
            self._len = n
            self._masked = (b1 & 0x80) != 0
            if self._masked:
                memcpy(self._key, end - 4, 4)
        self._ftext = ftext
        self._start_payload()

    cdef inline void _start_payload(self) noexcept:
        """Collect the payload of a frame that does not arrive whole; nothing
        is allocated before its bytes come (_append_payload)."""
        self._cap = 0
        self._fill = 0
        self._state = S_PAYLOAD

    cdef int _append_payload(self, const uint8_t *src, Py_ssize_t n) except -1:
        """Copy (and unmask) n more payload bytes into the pending payload."""
        cdef uint8_t key[4]
        cdef uint64_t need = self._fill + <uint64_t>n
        cdef uint64_t cap
        if n == 0:
            return 0
        if need > <uint64_t>self._cap:
            # Room for what has arrived, at least twice the room before (so
            # copying stays linear), never past the announced length: the
            # rest of a payload arriving in one read is allocated once, at
            # its size.
            cap = <uint64_t>self._cap * 2
            if cap < need:
                cap = need
            if cap < PAYLOAD_MIN:
                cap = PAYLOAD_MIN
            if cap > self._len:
                cap = self._len
            if self._payload == NULL:
                self._payload = PyBytes_FromStringAndSize_raw(NULL, <Py_ssize_t>cap)
            else:
                # On failure this frees the payload and leaves NULL; the
                # parser is then failed (_parse).
                _PyBytes_Resize(&self._payload, <Py_ssize_t>cap)
            self._cap = <Py_ssize_t>cap
        cdef uint8_t *dst = <uint8_t *>PyBytes_AS_STRING(<object>self._payload) + self._fill
        if self._masked:
            ff_rotate_key(key, self._key, <size_t>self._fill)
            ff_mask_copy(dst, src, <size_t>n, key)
        else:
            memcpy(dst, src, <size_t>n)
        self._fill += <uint64_t>n
        return 0

    cdef int _emit(self, uint8_t b0, bytes payload, list frames) except -1:
        """A frame is complete: add it to ``frames``, or, in feed_messages,
        hand a whole message to the sink.

        A whole message is a final, uncompressed text or binary frame
        (first byte 0x81 or 0x82: FIN, no RSV bit) arriving before any
        frame that the caller must see, so that order is kept; text that is
        not valid UTF-8 stays a frame, for the caller to fail with 1007.
        The rule is the protocol layer's, written once there in
        ``MessageAssembler.frame`` (``_protocol_py.py``); this is its fast
        path in C.
        """
        cdef object message
        if self._sink is None or PyList_GET_SIZE(frames) != 0 or (b0 != 0x81 and b0 != 0x82):
            PyList_Append(frames, _make_frame(b0, payload))
            return 0
        if b0 == 0x81:
            try:
                message = payload.decode("utf-8")
            except UnicodeDecodeError:
                PyList_Append(frames, _make_frame(b0, payload))
                return 0
        else:
            message = payload
        try:
            self._sink(self._sink_arg, message)
        except Exception as exc:
            self._sink_error(self._sink_arg, exc)
        return 0

    cdef int _parse(self, const uint8_t *data, Py_ssize_t size, list frames) except -1:
        """Parse ``size`` bytes at ``data`` into ``frames`` (or the sink).
        After any error it meets the parser is failed: a ProtocolError
        failed it already; anything else (MemoryError, the error hook of
        feed_messages raising) stopped it mid-read, where the stream's
        position is lost (and a payload may be gone).  That is a try/finally
        that reads the exception being handled, not a try/except, whose
        setup would cost on every read (docs/performance.md)."""
        cdef Py_ssize_t pos = 0, avail, hlen, take
        cdef uint8_t b0, b1
        cdef uint64_t n
        cdef bytes payload
        cdef uint8_t *dst
        cdef const uint8_t *h
        cdef object payload_obj
        cdef uint8_t ftext
        cdef bint done = False
        cdef PyObject *etype
        cdef PyObject *evalue
        cdef PyObject *etb
        try:
            while True:
                avail = size - pos
                if self._state == S_PAYLOAD:
                    take = <Py_ssize_t>(self._len - self._fill)
                    if take > avail:
                        take = avail
                    self._append_payload(data + pos, take)
                    pos += take
                    if self._ftext != FT_NONE and take > 0 and (
                            self._ftext == FT_FRAG or self._fill != self._len
                            or self._fill != <uint64_t>take):
                        # The text that arrived is checked now, not when its
                        # frame is complete (§8.1; Autobahn 6.4.3, 6.4.4); but
                        # not a one-frame message whose payload came whole in
                        # this call (after a header split across calls): as in
                        # the fast path, decoding it checks it in this call.
                        self._check_text(
                            <const uint8_t *>PyBytes_AS_STRING(<object>self._payload)
                            + self._fill - <uint64_t>take, take, False, frames)
                    if self._fill < self._len:
                        break
                    if self._ftext != FT_NONE and (self._b0 & 0x80):
                        self._check_text(NULL, 0, True, frames)
                    # Complete: hand the (now exactly sized) bytes to a Frame;
                    # an empty payload never allocated any.
                    if self._payload == NULL:
                        payload_obj = b""
                    else:
                        payload_obj = <object>self._payload
                        Py_DECREF(payload_obj)  # drop the reference held in _payload
                        self._payload = NULL
                    self._state = S_HEADER
                    self._emit(self._b0, <bytes>payload_obj, frames)
                    continue
                if avail == 0:
                    break
                # S_HEADER
                if self._hdr_len == 0 and avail >= 2:
                    h = data + pos
                else:
                    # Collect the header across feeds: first its two fixed bytes,
                    # then as many as they announce.
                    take = 2 - self._hdr_len
                    if take > 0:
                        if take > avail:
                            take = avail
                        memcpy(self._hdr + self._hdr_len, data + pos, <size_t>take)
                        self._hdr_len += take
                        pos += take
                        avail -= take
                        if self._hdr_len < 2:
                            break
                    b0 = self._hdr[0]
                    b1 = self._hdr[1]
                    if self._bad_start(b0, b1):
                        raise self._fail(self._header_error(b0, b1), frames)
                    hlen = self._header_len(b1)
                    take = hlen - self._hdr_len
                    if take > avail:
                        take = avail
                    memcpy(self._hdr + self._hdr_len, data + pos, <size_t>take)
                    self._hdr_len += take
                    pos += take
                    if self._hdr_len < hlen:
                        break
                    self._hdr_len = 0
                    self._read_header(self._hdr, frames)
                    self._ftext = self._frame_text(self._b0)
                    self._start_payload()
                    continue
                # Fast path: the header starts in this buffer.  This is
                # _read_header inlined, since it runs once per frame.
                b0 = h[0]
                b1 = h[1]
                if self._bad_start(b0, b1):
                    raise self._fail(self._header_error(b0, b1), frames)
                n = b1 & 0x7F
                hlen = 2
                if n >= LEN16:
                    if n == LEN16:
                        hlen = 4
                    else:
                        hlen = 10
                if b1 & 0x80:
                    hlen += 4
                if avail < hlen:
                    memcpy(self._hdr, h, <size_t>avail)
                    self._hdr_len = avail
                    break
                if n >= LEN16:
                    # Lengths 126 and 127, and any limit error, take the general
                    # path; it re-reads the same bytes.
                    self._read_header(h, frames)
                    n = self._len
                elif n > self._max_plain:
                    self._read_header(h, frames)  # raises PayloadTooBig if over its limit
                pos += hlen
                avail -= hlen
                if n > <uint64_t>avail:
                    self._collect(b0, b1, h + hlen, n, self._frame_text(b0))
                    continue
                if self._msg != MSG_NONE or not (b0 & 0x80):
                    # A frame of a fragmented message (or a control frame within
                    # one): text to check is collected as if it arrived in
                    # pieces; S_PAYLOAD checks it as it copies it.  A final
                    # frame with no message open costs this one test.
                    ftext = self._track(b0)
                    if ftext != FT_NONE:
                        self._collect(b0, b1, h + hlen, n, ftext)
                        continue
                # The whole payload is here: one pass copies and unmasks it into
                # a fresh bytes object.
                payload = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>n)
                dst = <uint8_t *>PyBytes_AS_STRING(payload)
                if b1 & 0x80:
                    # h + hlen - 4 is the key: hlen counts it, and the header was
                    # checked to be complete above.
                    ff_mask_copy(dst, data + pos, <size_t>n, h + hlen - 4)
                else:
                    memcpy(dst, data + pos, <size_t>n)
                pos += <Py_ssize_t>n
                self._emit(b0, payload, frames)
            done = True
        finally:
            if not done and self._state != S_FAILED:
                PyErr_GetExcInfo(&etype, &evalue, &etb)
                self._fail(<object>evalue if evalue != NULL else
                           RuntimeError("the parser stopped at an error"), None)
                Py_XDECREF(etype)
                Py_XDECREF(evalue)
                Py_XDECREF(etb)
        return 0

    def feed_messages(self, data, on_message, on_error, arg, Py_ssize_t size=-1):
        """Like feed, but each whole message parsed before the first frame
        that must be returned goes to ``on_message(arg, message)`` (``str``
        for text, ``bytes`` for binary) as it completes; an exception from
        it goes to ``on_error(arg, exc)`` and parsing goes on.  Returns the
        other frames, in order.  The caller must not have a fragmented
        message open (its continuation frames would be overtaken).  With
        ``size`` >= 0 only the first ``size`` bytes of ``data`` count (a
        read buffer and the length read, without a slice object per read)."""
        cdef list frames = []
        self._sink = on_message
        self._sink_error = on_error
        self._sink_arg = arg
        try:
            self._feed(data, frames, size)
        finally:
            self._sink = None
            self._sink_error = None
            self._sink_arg = None
        return frames

    def feed(self, data):
        cdef list frames = []
        self._feed(data, frames, -1)
        return frames

    cdef int _feed(self, object data, list frames, Py_ssize_t size) except -1:
        """Parse the first ``size`` bytes of ``data`` (all of it when ``size``
        is negative or past the end) into ``frames``."""
        cdef Py_buffer view
        cdef Py_ssize_t n
        if self._state == S_FAILED:
            raise type(self._error)(*self._error.args)
        if PyBytes_CheckExact(data):
            n = PyBytes_GET_SIZE(data)
            return self._parse(<const uint8_t *>PyBytes_AS_STRING(data),
                               _clamp(n, size), frames)
        # Anything else is held through the buffer protocol while parsing: a
        # bytearray with an export cannot be resized, so the on_message sink
        # cannot pull the bytes from under the parser.
        if PyByteArray_CheckExact(data):
            ff_hold_bytearray(data, &view)  # always contiguous
            try:
                self._parse(<const uint8_t *>view.buf, _clamp(view.len, size), frames)
            finally:
                ff_release_bytearray(&view)
            return 0
        _get_buffer(data, &view)
        try:
            self._parse(<const uint8_t *>view.buf, _clamp(view.len, size), frames)
        finally:
            PyBuffer_Release(&view)
        return 0


# ---------------------------------------------------------------- UTF-8

cdef class Utf8Validator:
    cdef uint32_t _state
    cdef bint _failed

    def __init__(self):
        self._state = 0
        self._failed = False

    def feed(self, data, bint final=False):
        cdef Py_buffer view
        cdef size_t bad = 0
        if self._failed:
            raise InvalidUTF8("invalid UTF-8")
        _get_buffer(data, &view)
        try:
            self._state = ff_utf8_step(self._state, <const uint8_t *>view.buf,
                                       <size_t>view.len, &bad)
        finally:
            PyBuffer_Release(&view)
        if self._state == FF_UTF8_ERROR:
            self._failed = True
            raise InvalidUTF8(f"invalid UTF-8 at byte {bad} of this chunk")
        if final and self._state != 0:
            self._failed = True
            raise InvalidUTF8("invalid UTF-8: unexpected end of data")

    def reset(self):
        self._state = 0
        self._failed = False


@cython.binding(False)
def validate_utf8(data):
    cdef Py_buffer view
    cdef size_t bad = 0
    cdef uint32_t state
    _get_buffer(data, &view)
    try:
        state = ff_utf8_step(0, <const uint8_t *>view.buf, <size_t>view.len, &bad)
    finally:
        PyBuffer_Release(&view)
    return state == 0
