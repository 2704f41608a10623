// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title BaselineSwap
/// @notice BENCHMARK ONLY: the cheapest atomic swap of two ERC-20s, the market fill's baseline.
/// The caller pays `amountB` of `tokenB` to `counterparty` and receives `amountA` of `tokenA` from
/// it; both sides approved this contract. No checks beyond the tokens' own (never deploy for real).
contract BaselineSwap {
    using SafeERC20 for IERC20;

    function swap(IERC20 tokenA, IERC20 tokenB, address counterparty, uint256 amountA, uint256 amountB) external {
        tokenA.safeTransferFrom(counterparty, msg.sender, amountA);
        tokenB.safeTransferFrom(msg.sender, counterparty, amountB);
    }
}
