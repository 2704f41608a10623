// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IZeroCarbonValue} from "../interfaces/IZeroCarbonValue.sol";
import {IMemberRegistry} from "../interfaces/IMemberRegistry.sol";

/// @title DustSprayer
/// @notice TEST ONLY: the griefing attacker of issue 11. Holding ISSUER_ROLE on a test ledger, it
/// makes `count` one-hour certificates of its own per call and sends one unit of each to every
/// victim with `transferLots`, so each victim gains `count` new lots of distinct certificates
/// (the cheapest way for a stranger to grow someone's holdings). Batched so that a test can spray
/// 1,000 lots in a few dozen transactions.
contract DustSprayer {
    IZeroCarbonValue private immutable ZCV;
    address private immutable REGISTRY;

    /// @notice The certificates made by one spray call, first and last id.
    event Sprayed(uint256 firstCertificateId, uint256 lastCertificateId, uint256 victims);

    constructor(IZeroCarbonValue zcv, address registry) {
        ZCV = zcv;
        REGISTRY = registry;
    }

    /// @notice Makes `count` certificates and sends one unit of each to every victim.
    function spray(address[] calldata victims, uint256 count) external {
        uint256 n = victims.length;
        IZeroCarbonValue.LotPick[] memory picks = new IZeroCarbonValue.LotPick[](count);
        uint256 first;
        for (uint256 i = 0; i < count; ++i) {
            // Dated the day before (expired dust would be frozen, not spent: not the attack tested).
            uint64 start = uint64(block.timestamp - 1 days + 3600 * i);
            uint256 id = ZCV.issue(
                address(this),
                IZeroCarbonValue.CertificateInput(
                    REGISTRY,
                    bytes32(uint256(0xd057)),
                    "Dust",
                    IMemberRegistry.GenerationMethod(0),
                    uint64(n),
                    start,
                    start + 1800,
                    "X",
                    1,
                    bytes32(0),
                    n
                )
            );
            if (i == 0) first = id;
            // Ids are consecutive and ascending, as transferLots requires.
            picks[i] = IZeroCarbonValue.LotPick(uint64(id), 1);
        }
        for (uint256 v = 0; v < n; ++v) {
            ZCV.transferLots(victims[v], picks);
        }
        emit Sprayed(first, first + count - 1, n);
    }
}
