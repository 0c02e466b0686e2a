"""Perceptual face similarity (PerFace): features, a metric learned from human judgments, donor choice."""
