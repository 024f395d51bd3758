"""One exception hierarchy for everything the protocol refuses.

Every decoder and verifier raises a subclass of `ProtocolError` and nothing
else, so a caller at a network boundary can catch exactly one type and turn it
into a clear answer. Messages name the problem, never the data (a message may
hold personal data, an error text ends up in logs).
"""


class ProtocolError(Exception):
    """Base class: the input is not an acceptable protocol object."""

    code = "protocol-error"


class MalformedError(ProtocolError):
    """The bytes do not decode, or a field is missing or of the wrong type."""

    code = "malformed"


class InvalidCodeError(MalformedError):
    """A field holds a value outside its code list."""

    code = "invalid-code"


class TooLargeError(ProtocolError):
    """The input exceeds a size limit; checked before decoding."""

    code = "too-large"


class UnsupportedVersionError(ProtocolError):
    """The protocol version is not one this implementation speaks."""

    code = "unsupported-version"


class UnknownTypeError(ProtocolError):
    """The message or document type is unknown."""

    code = "unknown-type"


class BadSignatureError(ProtocolError):
    """A signature does not verify, or decryption failed authentication."""

    code = "bad-signature"


class WrongRecipientError(ProtocolError):
    """The message is addressed to someone else, or was re-wrapped."""

    code = "wrong-recipient"


class ExpiredError(ProtocolError):
    """The message or document is past its expiry."""

    code = "expired"


class StaleError(ProtocolError):
    """A document is older than the one already held."""

    code = "stale"


class ClockSkewError(ProtocolError):
    """A request's timestamp is outside the allowed clock skew."""

    code = "clock-skew"


class ReplayError(ProtocolError):
    """A request nonce was seen before."""

    code = "replayed-nonce"


class BadEnrollmentCodeError(ProtocolError):
    """An enrollment code has the wrong shape or a failing check digit."""

    code = "bad-enrollment-code"


class FingerprintMismatchError(ProtocolError):
    """The hub's key does not match the fingerprint in the enrollment code."""

    code = "fingerprint-mismatch"
