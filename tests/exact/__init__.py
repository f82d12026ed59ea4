"""Tests of the exact solutions against RK4 integration of their gradient flows."""
