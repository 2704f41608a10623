// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

/// @title PlainERC1155
/// @notice Benchmark baseline only: an unmodified OpenZeppelin ERC-1155, one token id per
/// certificate (the per-id provenance Energy Web Origin uses), the yardstick for what a ZCV
/// transfer of one certificate costs.
contract PlainERC1155 is ERC1155 {
    constructor() ERC1155("") {}

    /// @notice Anyone may mint: a benchmark fixture, never deployed for real.
    /// @param to Receives the units.
    /// @param id The token (certificate) id.
    /// @param units Units minted.
    function mint(address to, uint256 id, uint256 units) external {
        _mint(to, id, units, "");
    }
}
