// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantPaymentToken
/// @notice TEST ONLY: a malicious payment token that calls back into a target (the market) from
/// inside `transferFrom`, once per arming, and records whether the re-entry succeeded.
contract ReentrantPaymentToken is ERC20 {
    address private _target;
    bytes private _payload;

    /// @notice The re-entry was tried; `ok` tells whether it succeeded, `returnData` why not.
    event ReentryAttempted(bool ok, bytes returnData);

    constructor() ERC20("Evil Yen", "EVIL") {}

    /// @notice Mints freely (test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arms the next `transferFrom` to call `target` with `payload`.
    function arm(address target, bytes calldata payload) external {
        _target = target;
        _payload = payload;
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        address target = _target;
        if (target != address(0)) {
            _target = address(0);
            (bool ok, bytes memory returnData) = target.call(_payload);
            emit ReentryAttempted(ok, returnData);
        }
        return super.transferFrom(from, to, value);
    }
}
