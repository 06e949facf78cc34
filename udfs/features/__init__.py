"""Declarative per-key feature engine: specs, bounded time-tiled state, offline replay."""

from rtml.core.featurespec import AGGREGATIONS, FeatureSet, FeatureSpec
from udfs.features.engine import EntityFeatures

__all__ = ["AGGREGATIONS", "EntityFeatures", "FeatureSet", "FeatureSpec"]
