// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title PlainERC20
/// @notice Benchmark baseline only: an unmodified OpenZeppelin ERC-20, the yardstick for what a
/// ZCV transfer costs over a plain token transfer.
/// @dev Same decimals as ZCV (3) so the same amounts mean the same thing in both benchmarks.
contract PlainERC20 is ERC20 {
    /// @param holder Receives the whole supply.
    /// @param supply Units minted.
    constructor(address holder, uint256 supply) ERC20("Plain", "PLN") {
        _mint(holder, supply);
    }

    /// @notice 3 decimals, as ZCV.
    /// @return 3.
    function decimals() public pure override returns (uint8) {
        return 3;
    }
}
