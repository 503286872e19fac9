"""Wire formats: protobuf schemas (``*_pb2``) and length-prefixed framing."""

from boxless.wire.framing import (
    MAX_UVARINT_BYTES,
    FrameDecoder,
    decode_uvarint,
    encode_frame,
    encode_uvarint,
)

__all__ = [
    "MAX_UVARINT_BYTES",
    "FrameDecoder",
    "decode_uvarint",
    "encode_frame",
    "encode_uvarint",
]
