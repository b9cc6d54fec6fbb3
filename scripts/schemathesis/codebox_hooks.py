"""schemathesis hooks for the contract test (scripts/schemathesis.sh).

An image task needs a real PNG, which no schema can describe: just before a positive
case (one that fits the schema) of POST /task with kind "image" is sent, its
`image_base64` becomes a small valid PNG; one naming an `image_key` (an upload, which
no schema can make either) is sent with that PNG inline instead. Negative cases are left
as generated, so the API must still refuse them.
"""

import base64
import struct
import zlib

import schemathesis
from schemathesis.generation.modes import GenerationMode


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 40 % 256, y * 60 % 256, 128)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG_BASE64 = base64.b64encode(_png(4, 3)).decode()


@schemathesis.hook
def before_call(context, case, kwargs):
    # Every case of every phase (examples and coverage included) passes here.
    meta = getattr(case, "_meta", None)
    positive = meta is not None and meta.generation.mode == GenerationMode.POSITIVE
    body = case.body
    if (
        positive
        and case.operation.method.upper() == "POST"
        and case.operation.path == "/task"
        and isinstance(body, dict)
        and body.get("kind") == "image"
        and (isinstance(body.get("image_base64"), str) or isinstance(body.get("image_key"), str))
    ):
        body.pop("image_key", None)
        body["image_base64"] = PNG_BASE64
