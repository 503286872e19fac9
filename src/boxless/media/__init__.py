"""Media for attachments, sans-IO: photos (compression, metadata, bombs)."""

from boxless.media.images import ImageRejected, PreparedImage, prepare_image, probe_image

__all__ = ["ImageRejected", "PreparedImage", "prepare_image", "probe_image"]
