"""Group pictures as attachments: an admin sets one, members fetch and show it.

Theory of operation
-------------------
:meth:`GroupAvatars.set` (admins only: checked first, so nothing is uploaded
for a refusal) makes the picture a centre square of at most 512 px without
metadata (``media.images.prepare_avatar``), uploads it as an encrypted
attachment pinned on the service nodes (``AttachmentTransfer.upload``: a
fresh key, the CID of ciphertext), and signs one ``SetAvatar`` op whose bytes
are the reference (``chat.avatar_ref``: the descriptor, a blurhash and a
thumbnail of whatever size is left in the op, about 1 KB). Members get the op
with the group's log; the membership rules drop a non-admin's.

:meth:`GroupAvatars.picture` returns the picture to show: an old inline
picture as it is; a reference's file from the local block store, or fetched
from the peers it names and our own service peers (verified block by block,
decrypted, digests checked, then probed as an image with the bomb caps), at
most :data:`~boxless.chat.avatar_ref.MAX_PICTURE_BYTES`. The fetched
ciphertext stays pinned in the local store, so the next call reads no network.
Until then the API shows the thumbnail from the op.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from boxless.chat.attachment import AttachmentKind, AttachmentRef
from boxless.chat.avatar_ref import MAX_REF_BYTES, decode_avatar_ref, encode_avatar_ref
from boxless.client.attachment_transfer import FileInfo
from boxless.client.attachments import AttachmentManager
from boxless.client.avatars import avatar_mime
from boxless.client.groups import GroupManager
from boxless.crypto.attachments import AttachmentDecryptError
from boxless.errors import DecodeError, NetworkError, PeerError, UsageError
from boxless.groups.membership import GroupState
from boxless.media.images import ImageRejected, avatar_thumbnail, prepare_avatar, probe_image

__all__ = ["GroupAvatars", "NotAnAdmin", "PictureUnavailable", "judge_picture", "picture_ref"]

MAX_SOURCE_BYTES = 20 * 1024**2  # what a person may pick; it is shrunk to <= 256 KiB
MAX_PICTURE_EDGE = 1024  # a fetched picture's side (ours are 512 px)


class NotAnAdmin(UsageError):
    """Only a group's admins may change its picture."""


class PictureUnavailable(PeerError):
    """The group picture could not be fetched or is not a picture."""


def picture_ref(state: GroupState) -> AttachmentRef | None:
    """The attachment a group's picture is, or None (inline, none, or an unreadable
    reference: shown as no picture)."""
    try:
        return decode_avatar_ref(state.avatar)
    except DecodeError:
        return None


def _thumbnailed(ref: AttachmentRef, picture: bytes) -> AttachmentRef:
    """``ref`` with the largest thumbnail its op still has room for."""
    budget = MAX_REF_BYTES - len(encode_avatar_ref(ref)) - 4  # field tag + length
    thumb = avatar_thumbnail(picture, budget) if budget > 200 else b""
    return replace(ref, thumbnail=thumb)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class GroupAvatars:
    """Group pictures over the attachments' transfer (see the module doc)."""

    def __init__(self, groups: GroupManager, attachments: AttachmentManager) -> None:
        self.groups = groups
        self.attachments = attachments

    async def set(self, group_id: bytes, image: bytes) -> GroupState:
        """Make ``image`` the group's picture (admins only); ``b""`` removes it.

        Raises :class:`NotAnAdmin`, :class:`~boxless.media.images.ImageRejected`
        (not a picture, a bomb), :class:`~boxless.client.attachments.BlobsUnavailable`
        or :class:`~boxless.client.attachment_transfer.UploadNotPinned`; nothing
        changes then.
        """
        state = self.groups.state(group_id)
        if not state.is_admin(self.groups.me):
            raise NotAnAdmin("only the group's admins can change its picture: ask one of them")
        if not image:
            return await self.groups.update(group_id, avatar=b"")
        if len(image) > MAX_SOURCE_BYTES:
            raise ImageRejected(
                f"the picture is {len(image) // 1024**2} MiB; choose one under "
                f"{MAX_SOURCE_BYTES // 1024**2} MiB"
            )
        prepared = prepare_avatar(image)
        transfer = self.attachments.require_transfer()
        info = FileInfo(
            "group-picture." + prepared.mime.split("/")[1],
            mime=prepared.mime,
            kind=AttachmentKind.IMAGE,
            width=prepared.width,
            height=prepared.height,
            blurhash=prepared.blurhash,
        )
        ref = await transfer.upload(_one(prepared.data), info)
        ref = _thumbnailed(ref, prepared.data)
        return await self.groups.update(group_id, avatar=encode_avatar_ref(ref))

    async def picture(self, group_id: bytes) -> tuple[bytes, str]:
        """The group's picture and its MIME type, fetched if need be.

        Raises :class:`PictureUnavailable` (with what to do) if it cannot be had and
        UsageError if the group has no picture.
        """
        state = self.groups.state(group_id)
        if not state.avatar:
            raise UsageError("this group has no picture")
        try:
            ref = decode_avatar_ref(state.avatar)
        except DecodeError as exc:
            raise PictureUnavailable(f"the group picture is unreadable ({exc})") from None
        if ref is None:  # an inline picture from before pictures were attachments
            try:
                return state.avatar, avatar_mime(state.avatar)
            except UsageError:
                raise PictureUnavailable("the group picture is not an image") from None
        transfer = self.attachments.require_transfer()
        data = b""
        try:
            async for piece in transfer.open(ref, block_timeout=10.0):
                data += piece  # at most MAX_PICTURE_BYTES: the decryptor stops at ref.size
        except NetworkError as exc:  # BlobUnavailable: nobody sent it
            raise PictureUnavailable(
                f"the group picture is not on the network right now ({exc}); it is tried again "
                "the next time the group is shown"
            ) from None
        except (PeerError, AttachmentDecryptError) as exc:  # BadDag, a digest or size lie
            raise PictureUnavailable(f"the group picture does not open: {exc}") from None
        try:
            mime = judge_picture(data, ref)
        except PictureUnavailable:
            transfer.forget(ref)
            raise
        return data, mime


def judge_picture(data: bytes, ref: AttachmentRef) -> str:
    """The MIME type of a fetched group picture, or :class:`PictureUnavailable`: not
    an image, not the type its reference claims, or larger than
    :data:`MAX_PICTURE_EDGE` px a side (every member's page decodes it: 256 KiB of
    PNG can hold a 7,000 x 7,000 one-colour image, 200 MB once decoded)."""
    try:
        mime, width, height = probe_image(data)
    except ImageRejected:
        raise PictureUnavailable("the group picture is not an image") from None
    if mime != ref.mime:
        raise PictureUnavailable(f"the group picture is {mime}, not the {ref.mime} it claims")
    if max(width, height) > MAX_PICTURE_EDGE:
        raise PictureUnavailable(
            f"the group picture is {width}x{height} px; at most {MAX_PICTURE_EDGE} a side"
        )
    return mime
