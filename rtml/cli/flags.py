"""Command-line values that several commands read the same way."""

from __future__ import annotations

from rtml.core.errors import ConfigError, RtmlError


def time_flag(text: str, flag: str, error: type[RtmlError] = ConfigError) -> int:
    """``--since`` / ``--as-of``: epoch milliseconds or ISO-8601 with a zone, as epoch ms; a
    one-line ``error`` naming the flag otherwise."""
    from udfs.validation import parse_timestamp

    try:
        return parse_timestamp(int(text) if text.isdigit() else text)
    except (ValueError, OverflowError) as e:
        raise error(
            f"{flag} {text!r} is not a time ({e})",
            hint="give epoch milliseconds or ISO-8601 with a zone, e.g. 2026-01-03T00:00:00Z",
        ) from None
