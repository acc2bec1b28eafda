"""NodeCoordinator's draw over an eligibility set small enough to be scanned whole
(FULL_SCAN_LIMIT entries), as the tests' state machines predict it exactly."""

from eth_abi import encode as abi_encode
from eth_utils import keccak

FULL_SCAN_LIMIT, DRAW_ROUNDS, IDLE_SCORE = 8, 4, 1 << 32  # NodeCoordinator's assignment constants


def seed_draw(seed, draw):
    """Draw number ``draw`` of an assignment seeded with ``seed``: keccak256(abi.encode(seed,
    draw)). Nothing else enters (no block.prevrandao), so it can be computed here."""
    return int.from_bytes(keccak(abi_encode(["uint256", "uint256"], [seed, draw])), "big")


def predict_draw(members, count, seed, score):
    """The ``count`` nodes assign picks from ``members`` (the set in the contract's order), or
    None if it must fail. ``score(address, picked)`` is NodeCoordinator._score: 0 if the node
    cannot take the task (or is in ``picked``), else its free share of capacity in units of
    2**-32. One node: the best score from a start the seed draws, an idle node ending the scan;
    a quorum's seats: the eligible entry the seed draws, load aside."""
    size = len(members)
    assert size <= FULL_SCAN_LIMIT, "a set beyond a full scan is drawn otherwise"
    if size < count:
        return None
    picked = []
    for slot in range(count):
        random = seed_draw(seed, slot * (DRAW_ROUNDS + 1))
        if count > 1:
            eligible = [address for address in members if score(address, picked)]
            if not eligible:
                return None
            picked.append(eligible[random % len(eligible)])
            continue
        start, best, best_score = random % size, None, 0
        for offset in range(size):
            candidate = members[(start + offset) % size]
            candidate_score = score(candidate, picked)
            if candidate_score > best_score:
                best, best_score = candidate, candidate_score
                if candidate_score == IDLE_SCORE:
                    break
        if best is None:
            return None
        picked.append(best)
    return picked
