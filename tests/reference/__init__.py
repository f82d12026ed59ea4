"""Slow, obvious reference implementations the library is tested against."""
