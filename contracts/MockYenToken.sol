// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title MockYenToken (JPYT)
/// @notice A yen stablecoin stand-in for the devnet and the tests: 18 decimals like JPYC,
/// 1 JPYT = 1 yen. MINTER_ROLE (the operator on the devnet) mints freely. Not for production.
/// @dev Plain OpenZeppelin ERC-20; no fee on transfer, no hooks.
contract MockYenToken is ERC20, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param minter Receives MINTER_ROLE.
    constructor(address admin, address minter) ERC20("Mock Yen Token", "JPYT") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, minter);
    }

    /// @notice Mints test yen. MINTER_ROLE only.
    /// @param to Recipient.
    /// @param amount Base units (1e18 = 1 yen).
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
