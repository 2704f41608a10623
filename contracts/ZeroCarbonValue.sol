// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IZeroCarbonValue} from "./interfaces/IZeroCarbonValue.sol";

/// @title ZeroCarbonValue (ZCV)
/// @notice ERC-20 zero-carbon value coin whose units keep their generation certificate.
/// @dev Provenance model: each holder has a stack of lots (certificate id, units).
///  - A plain `transfer`/`transferFrom`/`pay` takes units from the top lot downwards and pushes them
///    onto the recipient's stack, merging into the recipient's top lot when it is the same
///    certificate. At most MAX_LOTS_PER_TRANSFER lots are visited, which bounds the gas of any
///    transfer; a holder with more, smaller lots sends in several transfers or uses `transferLots`.
///  - `transferLots`/`retireLots` move exactly the lots the caller names.
///  - Cost model: a holder's lot count and top lot share one slot (`Holding`). Per lot moved: the
///    sender's Holding (or, below the top, one lot slot), one revocation flag read, the
///    recipient's Holding (plus one lot slot when a new certificate pushes the old top down) and
///    one LotMoved event. Emptied lot slots are never cleared, so they are cheap to reuse.
/// Invariants kept here:
///  (3) sum of balances == totalSupply (OpenZeppelin ERC20); totalSupply + totalRetired == totalIssued;
///  (4) for every certificate: units == sum of its lots over all holders + its retiredUnits, and
///      for every holder: balanceOf == sum of its lots' units;
///  (7) a revoked certificate's lots are never debited: every path (transfer, transferFrom, pay,
///      transferLots, transferLotsFrom, retire, retireLots) takes lots through `_takeTopLots`
///      (which skips revoked lots) or `_takePickedLots` (which refuses them).
/// Trust: ISSUER_ROLE (the value exchange) mints with a certificate; REVOKER_ROLE (the operator)
/// freezes fraudulent certificates; DEFAULT_ADMIN_ROLE manages roles. Nobody can move or burn
/// a holder's units but the holder (or its ERC-20 spender).
contract ZeroCarbonValue is ERC20, AccessControl, IZeroCarbonValue {
    using SafeCast for uint256;

    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");
    bytes32 public constant REVOKER_ROLE = keccak256("REVOKER_ROLE");
    uint16 public constant CERTIFICATE_SCHEMA_VERSION = 1;
    uint16 public constant RETIREMENT_SCHEMA_VERSION = 1;
    uint256 public constant MAX_LOTS_PER_TRANSFER = 32;

    struct AccountCounters {
        uint256 purchased;
        uint256 used;
        uint256 amortized;
    }

    mapping(uint256 certificateId => Certificate) private _certificates;
    uint256 private _certificateCount;
    mapping(uint256 retirementId => Retirement) private _retirements;
    uint256 private _retirementCount;
    /// @dev A holder's lot count and top lot share one slot, so the common transfer (units from
    /// the sender's top lot, merged into the recipient's top lot) touches one slot per side.
    struct Holding {
        uint32 count;
        uint64 topCertificateId;
        uint160 topUnits;
    }

    mapping(address holder => Holding) private _holdings;
    /// @dev Lots below the top: indexes 0 .. count-2 (the top, index count-1, is in the Holding).
    mapping(address holder => mapping(uint256 index => Lot)) private _lots;
    mapping(address account => AccountCounters) private _counters;
    uint256 private _totalIssued;
    uint256 private _totalRetired;

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param revoker Receives REVOKER_ROLE (the operator).
    constructor(address admin, address revoker) ERC20("Zero-Carbon Value", "ZCV") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REVOKER_ROLE, revoker);
    }

    /// @notice 1 unit = 1 Wh at the default rate; 1 ZCV = 1 kWh.
    /// @return 3.
    function decimals() public pure override returns (uint8) {
        return 3;
    }

    // ---------------------------------------------------------------- issuance and revocation

    /// @inheritdoc IZeroCarbonValue
    function issue(address to, CertificateInput calldata input)
        external
        onlyRole(ISSUER_ROLE)
        returns (uint256 certificateId)
    {
        if (input.units == 0) revert ZcvZeroUnits();
        certificateId = ++_certificateCount;
        Certificate storage cert = _certificates[certificateId];
        cert.schemaVersion = CERTIFICATE_SCHEMA_VERSION;
        cert.id = uint64(certificateId);
        cert.registry = input.registry;
        cert.meterId = input.meterId;
        cert.ownerName = input.ownerName;
        cert.method = input.method;
        cert.wh = input.wh;
        cert.periodStart = input.periodStart;
        cert.periodEnd = input.periodEnd;
        cert.zone = input.zone;
        cert.capacityW = input.capacityW;
        cert.evidence = input.evidence;
        cert.issuedAt = uint64(block.timestamp);
        cert.issuedTo = to;
        cert.units = input.units;

        _mint(to, input.units);
        _creditLot(to, uint64(certificateId), input.units);
        _counters[to].purchased += input.units;
        _totalIssued += input.units;
        emit CertificateIssued(
            certificateId, input.meterId, to, input.units, input.wh, input.periodStart, input.periodEnd, input.evidence
        );
    }

    /// @inheritdoc IZeroCarbonValue
    function revokeCertificate(uint256 certificateId, string calldata reason) external onlyRole(REVOKER_ROLE) {
        Certificate storage cert = _existingCertificate(certificateId);
        if (cert.revoked) revert ZcvAlreadyRevoked(certificateId);
        cert.revoked = true;
        emit CertificateRevoked(certificateId, reason);
    }

    // ---------------------------------------------------------------- holder actions

    /// @inheritdoc IZeroCarbonValue
    function transferLots(address to, LotPick[] calldata picks) external {
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 units = _takePickedLots(msg.sender, to, picks, false, new uint64[](0), new uint256[](0));
        // Lots are already moved: go straight to ERC20 balance accounting (and its Transfer event).
        super._update(msg.sender, to, units);
    }

    /// @inheritdoc IZeroCarbonValue
    function transferLotsFrom(address from, address to, LotPick[] calldata picks) external {
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 units = _takePickedLots(from, to, picks, false, new uint64[](0), new uint256[](0));
        _spendAllowance(from, msg.sender, units);
        super._update(from, to, units);
    }

    /// @inheritdoc IZeroCarbonValue
    function pay(address to, uint256 units, bytes32 paymentReference) external {
        // Paying oneself would count "used coins" without anything changing hands.
        if (to == msg.sender) revert ERC20InvalidReceiver(to);
        _transfer(msg.sender, to, units);
        _counters[msg.sender].used += units;
        emit Paid(msg.sender, to, units, paymentReference);
    }

    /// @inheritdoc IZeroCarbonValue
    function retire(
        uint256 units,
        string calldata beneficiary,
        string calldata reason,
        uint64 consumptionStart,
        uint64 consumptionEnd
    ) external returns (uint256 retirementId) {
        _checkRetirement(units, beneficiary, consumptionStart, consumptionEnd);
        uint256 balance = balanceOf(msg.sender);
        if (balance < units) revert ERC20InsufficientBalance(msg.sender, balance, units);
        uint64[] memory certificateIds = new uint64[](MAX_LOTS_PER_TRANSFER);
        uint256[] memory certificateUnits = new uint256[](MAX_LOTS_PER_TRANSFER);
        uint256 lotCount = _takeTopLots(msg.sender, address(0), units, certificateIds, certificateUnits);
        // Trim the fixed-size buffers to the lots actually taken (lotCount <= their length).
        assembly ("memory-safe") {
            mstore(certificateIds, lotCount)
            mstore(certificateUnits, lotCount)
        }
        retirementId =
            _recordRetirement(units, beneficiary, reason, consumptionStart, consumptionEnd, certificateIds, certificateUnits);
    }

    /// @inheritdoc IZeroCarbonValue
    function retireLots(
        LotPick[] calldata picks,
        string calldata beneficiary,
        string calldata reason,
        uint64 consumptionStart,
        uint64 consumptionEnd
    ) external returns (uint256 retirementId) {
        uint64[] memory certificateIds = new uint64[](picks.length);
        uint256[] memory certificateUnits = new uint256[](picks.length);
        uint256 units = _takePickedLots(msg.sender, address(0), picks, true, certificateIds, certificateUnits);
        _checkRetirement(units, beneficiary, consumptionStart, consumptionEnd);
        retirementId =
            _recordRetirement(units, beneficiary, reason, consumptionStart, consumptionEnd, certificateIds, certificateUnits);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IZeroCarbonValue
    function certificate(uint256 certificateId) external view returns (Certificate memory) {
        return _existingCertificate(certificateId);
    }

    /// @inheritdoc IZeroCarbonValue
    function certificateCount() external view returns (uint256) {
        return _certificateCount;
    }

    /// @inheritdoc IZeroCarbonValue
    function retirement(uint256 retirementId) external view returns (Retirement memory) {
        return _retirements[retirementId];
    }

    /// @inheritdoc IZeroCarbonValue
    function retirementCount() external view returns (uint256) {
        return _retirementCount;
    }

    /// @inheritdoc IZeroCarbonValue
    function lotsOf(address holder) external view returns (Lot[] memory lots) {
        Holding memory holding = _holdings[holder];
        lots = new Lot[](holding.count);
        for (uint256 i = 0; i < holding.count; ++i) {
            lots[i] = _lotAt(holder, holding, i);
        }
    }

    /// @inheritdoc IZeroCarbonValue
    function counters(address account) external view returns (Counters memory) {
        AccountCounters storage c = _counters[account];
        return Counters(c.purchased, c.used, c.amortized, balanceOf(account));
    }

    /// @inheritdoc IZeroCarbonValue
    function totalIssued() external view returns (uint256) {
        return _totalIssued;
    }

    /// @inheritdoc IZeroCarbonValue
    function totalRetired() external view returns (uint256) {
        return _totalRetired;
    }

    // ---------------------------------------------------------------- internals

    /// @dev Plain ERC-20 transfers (transfer, transferFrom, pay) move lots from the top of the
    /// sender's stack. Mint and burn manage their lots in `issue` and `retire*`.
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0) && from != to && value != 0) {
            uint256 balance = balanceOf(from);
            if (balance < value) revert ERC20InsufficientBalance(from, balance, value);
            _takeTopLots(from, to, value, new uint64[](0), new uint256[](0));
        }
        super._update(from, to, value);
    }

    /// @dev Takes `units` from `from`'s lots, top first, skipping revoked lots (which stay frozen
    /// in place). Credits `to` unless it is zero (a burn). Records taken lots when buffers are
    /// non-empty. Reverts ZcvCertificateRevoked if only revoked units could cover the rest.
    /// @return taken Number of lots taken from.
    function _takeTopLots(
        address from,
        address to,
        uint256 units,
        uint64[] memory certificateIds,
        uint256[] memory certificateUnits
    ) private returns (uint256 taken) {
        Holding memory holding = _holdings[from];
        uint256 index = holding.count;
        uint256 remaining = units;
        uint256 visited;
        uint256 firstRevoked;
        while (remaining != 0) {
            if (index == 0) {
                // Out of lots: either revoked lots hold the rest, or the balance is short.
                if (firstRevoked == 0) revert ERC20InsufficientBalance(from, balanceOf(from), units);
                revert ZcvCertificateRevoked(firstRevoked);
            }
            if (visited == MAX_LOTS_PER_TRANSFER) revert ZcvTooManyLots(MAX_LOTS_PER_TRANSFER);
            --index;
            ++visited;
            Lot memory lot = _lotAt(from, holding, index);
            if (_certificates[lot.certificateId].revoked) {
                if (firstRevoked == 0) firstRevoked = lot.certificateId;
                continue;
            }
            uint256 take = remaining < lot.units ? remaining : lot.units;
            // take <= remaining by construction.
            unchecked {
                remaining -= take;
            }
            _debitLot(from, holding, index, lot, take);
            if (to != address(0)) _creditLot(to, lot.certificateId, take);
            if (certificateIds.length != 0) {
                certificateIds[taken] = lot.certificateId;
                certificateUnits[taken] = take;
            }
            ++taken;
            emit LotMoved(from, to, lot.certificateId, take);
        }
        _holdings[from] = holding;
    }

    /// @dev Takes exactly the picked lots (strictly descending indexes, so earlier removals never
    /// shift a later pick). Credits `to` unless zero. Returns the units taken.
    function _takePickedLots(
        address from,
        address to,
        LotPick[] calldata picks,
        bool record,
        uint64[] memory certificateIds,
        uint256[] memory certificateUnits
    ) private returns (uint256 units) {
        if (picks.length == 0) revert ZcvZeroUnits();
        if (picks.length > MAX_LOTS_PER_TRANSFER) revert ZcvTooManyLots(MAX_LOTS_PER_TRANSFER);
        if (to == from) revert ERC20InvalidReceiver(to);
        Holding memory holding = _holdings[from];
        uint256 previousIndex = type(uint256).max;
        for (uint256 i = 0; i < picks.length; ++i) {
            LotPick calldata pick = picks[i];
            if (pick.index >= previousIndex) revert ZcvLotPicksUnordered(pick.index);
            previousIndex = pick.index;
            if (pick.index >= holding.count) revert ZcvLotMismatch(pick.index, pick.certificateId, 0);
            Lot memory lot = _lotAt(from, holding, pick.index);
            if (lot.certificateId != pick.certificateId) {
                revert ZcvLotMismatch(pick.index, pick.certificateId, lot.certificateId);
            }
            if (_certificates[lot.certificateId].revoked) revert ZcvCertificateRevoked(lot.certificateId);
            if (pick.units == 0) revert ZcvZeroUnits();
            if (pick.units > lot.units) revert ZcvLotTooSmall(pick.index, pick.units, lot.units);
            _debitLot(from, holding, pick.index, lot, pick.units);
            if (to != address(0)) _creditLot(to, lot.certificateId, pick.units);
            if (record) {
                certificateIds[i] = lot.certificateId;
                certificateUnits[i] = pick.units;
            }
            units += pick.units;
            emit LotMoved(from, to, lot.certificateId, pick.units);
        }
        _holdings[from] = holding;
    }

    /// @dev Lot `index` of a holder whose Holding is `holding` (the top lives in the Holding).
    function _lotAt(address holder, Holding memory holding, uint256 index) private view returns (Lot memory) {
        if (index == holding.count - 1) return Lot(holding.topCertificateId, holding.topUnits);
        return _lots[holder][index];
    }

    /// @dev Removes `take` units from lot `index`, updating `holding` in memory (the caller
    /// stores it). An emptied top is replaced by the highest lot below it; an emptied lower lot
    /// by that same highest lot below the top. Vacated slots are not cleared: they stay
    /// non-zero, so a later push there is a 2,900-gas rewrite instead of a 20,000-gas new slot.
    function _debitLot(address holder, Holding memory holding, uint256 index, Lot memory lot, uint256 take)
        private
    {
        uint256 top = holding.count - 1;
        if (take < lot.units) {
            // take < lot.units, so this cannot underflow; lot units never exceed uint160.
            unchecked {
                if (index == top) holding.topUnits = uint160(lot.units - take);
                else _lots[holder][index].units = uint192(lot.units - take);
            }
            return;
        }
        if (top != 0) {
            uint256 last = top - 1; // highest index below the top
            if (index == top) {
                Lot memory next = _lots[holder][last];
                holding.topCertificateId = next.certificateId;
                holding.topUnits = uint160(next.units);
            } else if (index != last) {
                _lots[holder][index] = _lots[holder][last];
            }
        }
        // count >= 1 here (a lot was taken), so this cannot underflow.
        unchecked {
            holding.count -= 1;
        }
    }

    function _creditLot(address holder, uint64 certificateId, uint256 units) private {
        Holding memory holding = _holdings[holder];
        if (holding.count != 0 && holding.topCertificateId == certificateId) {
            holding.topUnits = (uint256(holding.topUnits) + units).toUint160();
        } else {
            // The old top moves below; the new lot becomes the top.
            if (holding.count != 0) {
                _lots[holder][holding.count - 1] = Lot(holding.topCertificateId, holding.topUnits);
            }
            holding.topCertificateId = certificateId;
            holding.topUnits = units.toUint160();
            holding.count += 1;
        }
        _holdings[holder] = holding;
    }

    function _checkRetirement(uint256 units, string calldata beneficiary, uint64 start, uint64 end) private pure {
        if (units == 0) revert ZcvZeroUnits();
        if (bytes(beneficiary).length == 0) revert ZcvEmptyBeneficiary();
        if (end <= start) revert ZcvBadConsumptionPeriod(start, end);
    }

    function _recordRetirement(
        uint256 units,
        string calldata beneficiary,
        string calldata reason,
        uint64 consumptionStart,
        uint64 consumptionEnd,
        uint64[] memory certificateIds,
        uint256[] memory certificateUnits
    ) private returns (uint256 retirementId) {
        // Lots are already taken; burn the units (OpenZeppelin checks the balance).
        _burn(msg.sender, units);
        for (uint256 i = 0; i < certificateIds.length; ++i) {
            _certificates[certificateIds[i]].retiredUnits += certificateUnits[i];
        }
        _counters[msg.sender].amortized += units;
        _totalRetired += units;
        retirementId = ++_retirementCount;
        _retirements[retirementId] = Retirement(
            RETIREMENT_SCHEMA_VERSION,
            uint64(retirementId),
            msg.sender,
            beneficiary,
            reason,
            consumptionStart,
            consumptionEnd,
            uint64(block.timestamp),
            units,
            certificateIds,
            certificateUnits
        );
        emit Retired(
            retirementId,
            msg.sender,
            beneficiary,
            units,
            consumptionStart,
            consumptionEnd,
            reason,
            certificateIds,
            certificateUnits
        );
    }

    function _existingCertificate(uint256 certificateId) private view returns (Certificate storage cert) {
        cert = _certificates[certificateId];
        if (cert.id == 0) revert ZcvUnknownCertificate(certificateId);
    }
}
