// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @dev The whole, in basis points: every share, cap and split in JoyNet is counted in
/// ten-thousandths, and every such value's name ends in `Bps` (10,000 bps is 100 %).
uint256 constant BASIS_POINTS = 10_000;
