"""Identity: recovery phrase, identity and device keys, keystore, profile, contact codes."""

from boxless.identity.contact_code import (
    ContactCode,
    InvalidContactCode,
    decode_contact_code,
    decode_qr_image,
    make_contact_code,
    qr_terminal,
    save_qr_png,
)
from boxless.identity.keys import (
    Device,
    DeviceBundle,
    DeviceCertificate,
    ExpiredBundle,
    Identity,
    InvalidBundle,
    InvalidCertificate,
    fingerprint,
    verify_ed25519,
)
from boxless.identity.keystore import IdentityExists, Keystore, NoIdentity, NoWalletSeed
from boxless.identity.profile import (
    InvalidProfile,
    Profile,
    decode_profile,
    load_profile,
    read_avatar_file,
    save_profile,
)
from boxless.identity.seed import (
    InvalidPhrase,
    generate_phrase,
    identity_private_key,
    phrase_to_seed,
    validate_phrase,
)

__all__ = [
    "ContactCode",
    "Device",
    "DeviceBundle",
    "DeviceCertificate",
    "ExpiredBundle",
    "Identity",
    "IdentityExists",
    "InvalidBundle",
    "InvalidCertificate",
    "InvalidContactCode",
    "InvalidPhrase",
    "InvalidProfile",
    "Keystore",
    "NoIdentity",
    "NoWalletSeed",
    "Profile",
    "decode_contact_code",
    "decode_profile",
    "decode_qr_image",
    "fingerprint",
    "generate_phrase",
    "identity_private_key",
    "load_profile",
    "make_contact_code",
    "phrase_to_seed",
    "qr_terminal",
    "read_avatar_file",
    "save_profile",
    "save_qr_png",
    "validate_phrase",
    "verify_ed25519",
]
