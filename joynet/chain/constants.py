"""Values every chain client shares: the local development chains, the zero address and word."""

LOCAL_CHAIN_IDS = frozenset({31337, 1337})  # anvil and hardhat; ganache: chains that mine on demand
ZERO_ADDRESS = "0x" + "00" * 20
ZERO32 = b"\0" * 32


def is_local_chain(chain_id: int) -> bool:
    """True for a local development chain (its governance floors are short; it mines on demand)."""
    return int(chain_id) in LOCAL_CHAIN_IDS
