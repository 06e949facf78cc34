"""One key's feature state as the Flink job stores it: live between events, bytes at rest.

PyFlink's state cache hands back the very object a keyed function stored, and serializes it
only when it writes the state back to the JVM (at the end of a bundle, so before every
checkpoint). ``StoredFeatures`` takes advantage of that: between events of the same key the
job keeps working on the live ``EntityFeatures``, with no decode and encode per event; when
Flink serializes the holder, it writes ``EntityFeatures.snapshot()`` bytes (the versioned,
compact format of the update/snapshot contract) and nothing else of the object, besides the
expiry timer the Flink operator registered for the key (``timer``, epoch ms or None).
"""

from __future__ import annotations

from udfs.features.engine import EntityFeatures
from udfs.features.spec import FeatureSet


class StoredFeatures:
    """Holds either the live state or its snapshot bytes (after a restore from Flink)."""

    __slots__ = ("_live", "_raw", "timer")

    def __init__(
        self,
        raw: bytes | None = None,
        timer: int | None = None,
        live: EntityFeatures | None = None,
    ) -> None:
        if (raw is None) == (live is None):
            raise ValueError("StoredFeatures holds exactly one of raw bytes or live state")
        self._raw = raw
        self._live = live
        self.timer = timer

    @classmethod
    def of(cls, live: EntityFeatures, timer: int | None = None) -> StoredFeatures:
        return cls(live=live, timer=timer)

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
        # what Flink serializes: a class reference, the snapshot bytes and the timer (state
        # written before the timer was kept has the bytes alone, and restores with None)
        return (StoredFeatures, (self.snapshot(), self.timer))
