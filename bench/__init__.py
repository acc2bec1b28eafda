"""Benchmarks: what ``make bench`` measures beside gas, and the report it writes. Not part of the
library: nothing in ``joynet`` imports it."""
