"""RFC 6455 §4: the opening handshake, server and client side (sans-I/O)."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastframe.handshake import (
    MAX_HEAD,
    HandshakeError,
    Request,
    RequestParser,
    Response,
    ResponseParser,
    accept_key,
    build_request,
    build_response,
    check_request,
    check_response,
    generate_key,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
GOOD = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


def parse_all_ways(data: bytes) -> tuple[Request, bytes]:
    """Whole, byte by byte, and with trailing bytes: all must agree."""
    whole = RequestParser().feed_request(data)
    assert whole is not None
    p = RequestParser()
    result = None
    for i in range(len(data)):
        result = p.feed_request(data[i : i + 1])
        if i < len(data) - 1:
            assert result is None
    assert result is not None
    trailing = RequestParser().feed_request(data + b"\x81\x80")
    assert trailing is not None and trailing[1] == b"\x81\x80"
    assert (whole[0], whole[1]) == (result[0], result[1])
    return whole


def reject(data: bytes) -> HandshakeError:
    with pytest.raises(HandshakeError) as info:
        parsed = RequestParser().feed_request(data)
        assert parsed is not None, "incomplete"
        check_request(parsed[0])
    return info.value


# -- §1.3 / §4.2.2 the accept token ------------------------------------------


def test_accept_key_rfc_example() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert accept_key(KEY.encode()) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_generate_key_is_fresh_16_bytes() -> None:
    import base64

    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(len(base64.b64decode(k)) == 16 for k in keys)


# -- §4.2.1 reading the client's handshake ------------------------------------


def test_server_parses_rfc_request() -> None:
    request, rest = parse_all_ways(GOOD)
    assert rest == b""
    assert (request.method, request.path) == ("GET", "/chat")
    assert request.headers["host"] == "server.example.com"
    assert request.headers.get_all("SEC-WEBSOCKET-PROTOCOL") == ["chat, superchat"]
    assert check_request(request) == KEY


def test_server_accepts_an_empty_body() -> None:
    request, _ = parse_all_ways(GOOD.replace(b"Origin:", b"Content-Length: 0\r\nOrigin:"))
    assert check_request(request) == KEY


def test_server_accepts_token_lists_case_insensitively() -> None:
    data = GOOD.replace(b"Upgrade: websocket", b"Upgrade: WebSocket").replace(
        b"Connection: keep-alive, Upgrade", b"connection: UPGRADE"
    )
    request, _ = parse_all_ways(data)
    assert check_request(request) == KEY


@pytest.mark.parametrize(
    "old, new, status, words",
    [
        (b"GET /chat", b"POST /chat", 405, "method"),
        (b"Host: server.example.com\r\n", b"", 400, "Host"),
        (b"Upgrade: websocket\r\n", b"", 426, "Upgrade"),
        (b"Upgrade: websocket", b"Upgrade: h2c", 400, "Upgrade"),
        (b"Connection: keep-alive, Upgrade", b"Connection: keep-alive", 400, "Connection"),
        (b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"", 400, "Key"),
        (b"dGhlIHNhbXBsZSBub25jZQ==", b"c2hvcnQ=", 400, "16 bytes"),
        (b"dGhlIHNhbXBsZSBub25jZQ==", b"not base64!!", 400, "16 bytes"),
        (b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8", 426, "13"),
        (b"Sec-WebSocket-Version: 13\r\n", b"", 400, "Version"),
        # RFC 6455 §4.1 / RFC 9110 §9.3.1: a GET upgrade with a body is refused.
        (b"Origin:", b"Transfer-Encoding: chunked\r\nOrigin:", 400, "body"),
        (b"Origin:", b"Transfer-Encoding: gzip, chunked\r\nOrigin:", 400, "body"),
        (b"Origin:", b"Content-Length: 5\r\nOrigin:", 400, "body"),
        (b"Origin:", b"Content-Length: 0\r\nContent-Length: 5\r\nOrigin:", 400, "body"),
        (b"Origin:", b"Content-Length: +0\r\nOrigin:", 400, "body"),
    ],
)
def test_server_rejects_bad_request(old: bytes, new: bytes, status: int, words: str) -> None:
    assert old in GOOD
    err = reject(GOOD.replace(old, new))
    assert err.status == status
    assert words.lower() in str(err).lower()
    if status == 426 and words == "13":
        assert ("Sec-WebSocket-Version", "13") in err.headers


@pytest.mark.parametrize(
    "data, status",
    [
        (b"GET /chat HTTP/1.0\r\nHost: x\r\n\r\n", 400),
        (b"GET /chat\r\nHost: x\r\n\r\n", 400),
        (b"GET  /chat HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /chat HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"GET /chat HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        (b"GET /chat HTTP/1.1\r\nHost: x\ry\r\n\r\n", 400),
        (b"GET /chat HTTP/1.1\r\nNoColon\r\n\r\n", 400),
        (b"GET /chat HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET /ch\x7fat HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ],
)
def test_server_rejects_malformed_http(data: bytes, status: int) -> None:
    assert reject(data).status == status


def test_limits_header_line() -> None:
    p = RequestParser()
    assert p.feed_request(b"GET / HTTP/1.1\r\nX: " + b"a" * 8000) is None
    with pytest.raises(HandshakeError) as info:
        p.feed_request(b"a" * 300)
    assert info.value.status == 431


def test_limits_head_size_before_buffering_more() -> None:
    p = RequestParser()
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    with pytest.raises(HandshakeError) as info:
        p.feed_request(b"GET / HTTP/1.1\r\n")
        for _ in range(MAX_HEAD // len(line) + 2):
            p.feed_request(line)
    assert info.value.status == 431


def test_limits_header_count() -> None:
    data = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 129 + b"\r\n"
    assert reject(data).status == 431


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_fuzz_request_parser_only_raises_handshake_error(data: bytes, cuts: list[int]) -> None:
    p = RequestParser()
    prev = 0
    try:
        for c in sorted(cuts) + [len(data)]:
            c = min(c, len(data))
            parsed = p.feed_request(data[prev:c]) if c >= prev else None
            prev = max(prev, c)
            if parsed is not None:
                check_request(parsed[0])
                break
    except HandshakeError as exc:
        assert exc.status in (400, 405, 426, 431)


# -- building the server's answer ------------------------------------------------


def test_build_101_response() -> None:
    data = build_response(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                ("Sec-WebSocket-Accept", accept_key(KEY))])
    assert data == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )


def test_build_error_response_has_body_and_length() -> None:
    data = build_response(400, body=b"missing key\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Content-Length: 12" in head and b"Connection: close" in head
    assert body == b"missing key\n"


def test_build_response_refuses_header_injection() -> None:
    from fastframe import LocalProtocolError

    with pytest.raises(LocalProtocolError):
        build_response(400, [("X-Evil", "a\r\nSet-Cookie: x")])


# -- §4.1 client side --------------------------------------------------------------


def response_for(key: str, extra: bytes = b"") -> tuple[Response, bytes] | None:
    data = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n" + extra + b"\r\n"
    )
    return ResponseParser().feed_response(data + b"\x81\x00")


def test_client_request_round_trips_through_server_checks() -> None:
    key = generate_key()
    data = build_request("example.com:8080", "/ws?x=1", key, subprotocols=["chat", "v2"])
    parsed = RequestParser().feed_request(data)
    assert parsed is not None
    request = parsed[0]
    assert check_request(request) == key
    assert request.path == "/ws?x=1"


@pytest.mark.parametrize("path, target", [
    ("/café", "/caf%C3%A9"),
    ("/?q=€", "/?q=%E2%82%AC"),
    ("/café?q=€ x", "/caf%C3%A9?q=%E2%82%AC%20x"),
    ("/a b?c d", "/a%20b?c%20d"),
    ("/a%20b?x=%E2%82%AC&y=1;z=[2]:@!$'()*+,", "/a%20b?x=%E2%82%AC&y=1;z=[2]:@!$'()*+,"),  # a URI already
    ("/x\r\nX-Injected: 1", "/x%0D%0AX-Injected:%201"),
])
def test_request_target_is_ascii_and_percent_encoded(path: str, target: str) -> None:
    # RFC 9112 §3.2: the request target is a URI (ASCII); an IRI's other
    # characters go as percent-encoded UTF-8 (RFC 3987 §3.1).
    data = build_request("h", path, KEY)
    assert data.split(b"\r\n")[0] == f"GET {target} HTTP/1.1".encode("ascii")
    request, _ = parse_all_ways(data)
    assert request.path == target and check_request(request) == KEY
    assert urllib.parse.unquote(target) == urllib.parse.unquote(path)


@pytest.mark.parametrize("url", ["ws://h/café", "ws://h/?q=€", "ws://h/ü/€?q=€&r=é;s=@"])
def test_request_target_of_an_iri_is_the_one_websockets_sends(url: str) -> None:
    uri = pytest.importorskip("websockets.uri")
    from fastframe.client import parse_url

    data = build_request("h", parse_url(url)[3], KEY)
    assert data.split(b"\r\n")[0] == f"GET {uri.parse_uri(url).resource_name} HTTP/1.1".encode("ascii")


def test_client_url_with_a_non_ascii_host_uses_its_idna_form() -> None:
    from fastframe.client import InvalidURI, parse_url

    assert parse_url("ws://bücher.example:8080/é") == (
        False, "xn--bcher-kva.example", 8080, "/é", "xn--bcher-kva.example:8080")
    with pytest.raises(InvalidURI):
        parse_url("ws://a..€/")


def test_client_accepts_right_response() -> None:
    parsed = response_for(KEY)
    assert parsed is not None
    response, rest = parsed
    assert rest == b"\x81\x00"
    assert check_response(response, KEY) is None


def test_client_rejects_wrong_accept() -> None:
    parsed = response_for(generate_key())
    assert parsed is not None
    with pytest.raises(HandshakeError, match="Accept"):
        check_response(parsed[0], KEY)


def test_client_checks_subprotocol_was_offered() -> None:
    parsed = response_for(KEY, b"Sec-WebSocket-Protocol: chat\r\n")
    assert parsed is not None
    assert check_response(parsed[0], KEY, ["chat"]) == "chat"
    with pytest.raises(HandshakeError, match="not offered"):
        check_response(parsed[0], KEY, ["other"])


def test_client_reports_rejection_status() -> None:
    parsed = ResponseParser().feed_response(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    assert parsed is not None
    with pytest.raises(HandshakeError) as info:
        check_response(parsed[0], KEY)
    assert info.value.status == 403


def test_client_rejects_garbage_status_line() -> None:
    with pytest.raises(HandshakeError):
        ResponseParser().feed_response(b"SSH-2.0-OpenSSH\r\n\r\n")
