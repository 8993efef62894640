"""Turnus: subscription management and recurring billing."""

__version__ = "0.1.0"
