"""Fault injection and bad input: the monitor never harms training and never lies, on every model a user brings."""
