"""One key's state as the Flink job stores it: live between events, bytes at rest.

PyFlink's state cache hands back the very object a keyed function stored, and serializes it
only when it writes the state back to the JVM (at the end of a bundle, so before every
checkpoint). ``StoredFeatures`` takes advantage of that: between events of the same key the
job keeps working on the live ``EntityFeatures``, with no decode and encode per event; when
Flink serializes the holder, it writes ``EntityFeatures.snapshot()`` bytes (the versioned,
compact format of the update/snapshot contract) and nothing else of the object, besides the
expiry timer the Flink operator registered for the key (``timer``, epoch ms or None) and, in
event-time order, the key's events waiting for the watermark (``pending``, its own
versioned snapshot, or None).

Older layouts restore: state written before the timer was kept is the bytes alone; state
written before the buffer was kept here is (bytes, timer), and is marked ``legacy``: in
event-time order that layout held the waiting events in a list state of their own, which
the operator moves into ``pending`` on the key's first use.
"""

from __future__ import annotations

from rtml.core.featurespec import FeatureSet
from udfs.features.engine import EntityFeatures
from udfs.features.pending import PendingEvents


class StoredFeatures:
    """Holds either the live state or its snapshot bytes (after a restore from Flink)."""

    __slots__ = ("_live", "_raw", "timer", "pending", "legacy")

    def __init__(
        self,
        raw: bytes | None = None,
        timer: int | None = None,
        *,
        pending: PendingEvents | None = None,
        live: EntityFeatures | None = None,
        legacy: bool | None = None,
    ) -> None:
        if (raw is None) == (live is None):
            raise ValueError("StoredFeatures holds exactly one of raw bytes or live state")
        self._raw = raw
        self._live = live
        self.timer = timer
        self.pending = pending
        # the earlier layouts' pickles call the class with (bytes[, timer]); this layout's
        # go through restore_stored, which says legacy=False
        self.legacy = raw is not None if legacy is None else legacy

    @classmethod
    def of(
        cls, live: EntityFeatures, timer: int | None = None, pending: PendingEvents | None = None
    ) -> StoredFeatures:
        return cls(timer=timer, pending=pending, live=live)

    def features(self, feature_set: FeatureSet) -> EntityFeatures:
        """The live state, restored from the bytes on first use (then kept)."""
        if self._live is None:
            assert self._raw is not None
            self._live = EntityFeatures.restore(feature_set, self._raw)
            self._raw = None
        return self._live

    def snapshot(self) -> bytes:
        return self._live.snapshot() if self._live is not None else self._raw  # type: ignore[return-value]

    def __reduce__(self):
        # what Flink serializes: a function reference, the snapshot bytes, the timer and the
        # waiting events (None, or their own snapshot through PendingEvents' reduce)
        return (restore_stored, (self.snapshot(), self.timer, self.pending or None))


# named in every pickle of this layout: keep the name and the module
def restore_stored(raw: bytes, timer: int | None, pending: PendingEvents | None) -> StoredFeatures:
    return StoredFeatures(raw, timer, pending=pending, legacy=False)
