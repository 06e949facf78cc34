"""Declarative per-key feature engine: specs, bounded time-tiled state, offline replay."""

from udfs.features.engine import EntityFeatures
from udfs.features.spec import AGGREGATIONS, FeatureSet, FeatureSpec

__all__ = ["AGGREGATIONS", "EntityFeatures", "FeatureSet", "FeatureSpec"]
