"""Constants of the zero-knowledge tests' requests (tests/contracts/conftest.py makes them)."""

from joynet.chain.deploy import JOY

PRICE = 5 * JOY  # a ZK model's price per inference
SALT = 123_456_789_012_345  # the salt of every test request's input commitment
