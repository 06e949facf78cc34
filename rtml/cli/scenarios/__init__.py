"""Seeded data generators with known ground truth (drift, bias, bad records)."""
