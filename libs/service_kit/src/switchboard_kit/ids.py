"""Random (version 4) UUIDs as text, drawn from a buffer of ``os.urandom`` bytes.

``uuid.uuid4()`` makes one ``getrandom`` system call per id, and a POST makes four ids
(resource, two events, correlation id). On these sandboxed machines that system call costs
more than the rest of building the id; taking 16 bytes at a time from a 4 KiB buffer of the
same kernel generator keeps the ids exactly as unpredictable. The buffer is dropped in a
forked child, so two worker processes never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading

_CHUNK = 4096
_lock = threading.Lock()
_buffer = b""
_position = 0
_VARIANT = "89ab89ab89ab89ab"  # the variant bits 10xx for each value of the first nibble


def _reset() -> None:
    global _buffer, _position
    _buffer, _position = b"", 0


os.register_at_fork(after_in_child=_reset)


def new_id() -> str:
    """A random UUID (RFC 9562 version 4) in its canonical 36-character form."""
    global _buffer, _position
    with _lock:
        if _position >= len(_buffer):
            _buffer, _position = os.urandom(_CHUNK), 0
        raw = _buffer[_position : _position + 16]
        _position += 16
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"
