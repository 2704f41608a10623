// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IZeroCarbonValue} from "./interfaces/IZeroCarbonValue.sol";

/// @title ZcvEscrow
/// @notice One seller's deposit address at the ZCV market: it holds the seller's deposited and
/// listed certificate lots, and moves them only when the market tells it to.
/// @dev Deployed once as an implementation by the market; every seller gets a minimal clone at a
/// deterministic address (CREATE2, salt = the seller's address). The immutables live in the
/// implementation's code, so every clone answers to the same market and token.
/// Trust: the market decides every move (to a buyer of one of the seller's listings, or back to the
/// seller); the escrow itself has no owner and no other entry point.
contract ZcvEscrow {
    using SafeERC20 for IERC20;

    address private immutable MARKET;
    IZeroCarbonValue private immutable ZCV;

    /// @notice Only the market may command an escrow.
    error EscrowOnlyMarket(address caller);

    /// @param zcv The ZCV token; the deployer is the market.
    constructor(IZeroCarbonValue zcv) {
        MARKET = msg.sender;
        ZCV = zcv;
    }

    modifier onlyMarket() {
        if (msg.sender != MARKET) revert EscrowOnlyMarket(msg.sender);
        _;
    }

    /// @notice Moves the picked lots of this escrow to `to`. Market only.
    /// @param to Recipient (a buyer, or the seller).
    /// @param picks Lots of `zcv.lotsOf(this)`, strictly descending indexes.
    function moveLots(address to, IZeroCarbonValue.LotPick[] calldata picks) external onlyMarket {
        ZCV.transferLots(to, picks);
    }

    /// @notice Sends another token held here by mistake. Market only.
    /// @param token The token.
    /// @param to Recipient (the seller).
    /// @param amount Amount.
    function sendToken(IERC20 token, address to, uint256 amount) external onlyMarket {
        token.safeTransfer(to, amount);
    }

    /// @notice The market this escrow answers to.
    /// @return The market.
    function market() external view returns (address) {
        return MARKET;
    }
}
