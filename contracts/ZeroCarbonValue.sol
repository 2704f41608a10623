// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IZeroCarbonValue} from "./interfaces/IZeroCarbonValue.sol";

/// @title ZeroCarbonValue (ZCV)
/// @notice ERC-20 zero-carbon value coin whose units keep their generation certificate.
/// @dev Provenance ledger v2 (docs/provenance.md has the design and its cost model).
///  - One lot per (holder, certificate): `lotBalance` is O(1). A holder's ERC-20 balance and its
///    "current" lot (the one plain spends take first) share the holder's `Account` slot; every
///    other lot has one packed `LotSlot` and sits in a doubly-linked list of its size class
///    (floor(log2(units)), 0..63). The class heads are packed six to a slot (`_headGroups`), with
///    a per-holder bitmap of non-empty head slots in `Account`.
///  - Plain `transfer`/`transferFrom`/`pay`/`retire` take the current lot, then refill it from the
///    head of the largest non-empty class. Credits keep the order true: a credit that moves a lot
///    into another class relinks it (the sender pays), and a lot of a larger class than the
///    current lot and every listed lot becomes the current lot. So what a stranger sends is visited before the
///    holder's own lots only if it is at least as large (in size class) as they are: dust never
///    is (DESIGN invariant 8).
///  - A frozen (revoked or expired) lot met by a plain spend, or named in `evict` (permissionless),
///    leaves the spend order for the holder's frozen ledger (a list never walked by spends).
///  - `transferLots`/`transferLotsFrom`/`retireLots` name certificates: O(picks) whatever the
///    holder or the recipient hold. Plain spends visit at most MAX_LOTS_PER_TRANSFER lots.
/// Invariants kept here:
///  (3) sum of balances == totalSupply (kept here, see `_update`); totalSupply + totalRetired == totalIssued;
///  (4) for every certificate: units == sum of its lots over all holders + its retiredUnits, and
///      for every holder: balanceOf == sum of its lots' units (current + listed + frozen);
///  (7) a frozen (revoked or expired) certificate's lots are never debited: plain paths
///      (`_spendInOrder`) freeze them instead of taking them, named paths (`_takePicks`) revert
///      ZcvCertificateRevoked or ZcvCertificateExpired;
///  (8) nobody but a holder can make its plain transfer, payment or retirement fail or cost
///      materially more while its free balance suffices (spend order above, docs/provenance.md).
/// Trust: ISSUER_ROLE (the value exchange) mints with a certificate; REVOKER_ROLE (the operator)
/// freezes fraudulent certificates; DEFAULT_ADMIN_ROLE manages roles. Nobody can move or burn
/// a holder's units but the holder (or its ERC-20 spender); `evict` only relabels frozen units.
contract ZeroCarbonValue is ERC20, AccessControl, IZeroCarbonValue {
    using SafeCast for uint256;

    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");
    bytes32 public constant REVOKER_ROLE = keccak256("REVOKER_ROLE");
    uint16 public constant CERTIFICATE_SCHEMA_VERSION = 1;
    /// @notice Hourly certificates (`issueHourly`).
    uint16 public constant HOURLY_SCHEMA_VERSION = 2;
    uint256 private constant SECONDS_PER_HOUR = 3600;
    /// @notice One month for expiry: 1/12 of a mean Gregorian year (365.2425 days), 30.436875 days.
    uint256 public constant SECONDS_PER_MONTH = 2_629_746;
    /// @notice Longest expiry a deployment may set (100 years).
    uint256 public constant MAX_EXPIRY_MONTHS = 1200;
    /// @dev Vintage years are calendar years in Japan Standard Time (UTC+9, no daylight saving).
    uint256 private constant VINTAGE_UTC_OFFSET = 9 hours;
    uint16 public constant RETIREMENT_SCHEMA_VERSION = 1;
    /// @notice Most lots one plain transfer, payment or retirement visits (taken or frozen).
    uint256 public constant MAX_LOTS_PER_TRANSFER = 32;
    /// @dev Size classes 0..63 (units >= 2^63 share class 63); list 64 is the frozen ledger.
    uint256 private constant TOP_CLASS = 63;
    /// @dev Class heads per `_headGroups` slot (40-bit certificate ids), and the slots needed.
    uint256 private constant LANES = 6;
    uint256 private constant LANE_BITS = 40;
    uint256 private constant LANE_MASK = (1 << 40) - 1;
    uint256 private constant GROUPS = (TOP_CLASS + LANES) / LANES;
    /// @dev Balances and lots are 88-bit: the total supply may not exceed this.
    uint256 private constant SUPPLY_CAP = type(uint88).max;
    /// @dev `LotSlot.tag`: 0 = not in a list, 1..64 = size class + 1, 65 = frozen ledger.
    uint8 private constant FROZEN_TAG = 65;

    struct AccountCounters {
        uint256 purchased;
        uint256 used;
        uint256 amortized;
    }

    /// @dev One slot per holder: the ERC-20 balance, the current lot (spent first), the lot count
    /// and which `_headGroups` slots are non-empty. A transfer from the current lot into the
    /// recipient's current lot touches one slot per side, balance included (OpenZeppelin's own
    /// `_balances` would add a cold slot per side). Widths: units and balances fit 88 bits
    /// (SUPPLY_CAP), certificate ids 40 bits (10^12 certificates; `_creditLot` checks).
    struct Account {
        uint88 balance;
        uint88 currentUnits;
        uint40 currentId;
        uint24 lotCount;
        uint16 groupBits;
    }

    /// @dev One slot per (holder, certificate) other than the current lot.
    struct LotSlot {
        uint88 units;
        uint40 prev;
        uint40 next;
        uint8 tag;
    }

    mapping(uint256 certificateId => Certificate) private _certificates;
    uint256 private _certificateCount;
    mapping(uint256 retirementId => Retirement) private _retirements;
    uint256 private _retirementCount;
    mapping(address holder => Account) private _accounts;
    mapping(address holder => mapping(uint256 certificateId => LotSlot)) private _lots;
    /// @dev Heads of the size-class lists, LANES 40-bit ids per slot: class c is lane c % LANES
    /// of slot c / LANES. Neighbouring classes share a slot, so linking a lot into a class the
    /// holder has not used yet usually writes a slot that is already non-zero (5,000 gas, not 22,100).
    mapping(address holder => mapping(uint256 group => uint256 lanes)) private _headGroups;
    /// @dev Head of each holder's frozen ledger.
    mapping(address holder => uint40 certificateId) private _frozenHeads;
    uint64[] private _revokedIds;
    mapping(address account => AccountCounters) private _counters;
    uint256 private _totalIssued;
    uint256 private _totalRetired;
    /// @dev Schema-2 certificates, one slot each; hourStart != 0 marks one.
    mapping(uint256 certificateId => HourlyCertificate) private _hourly;
    mapping(uint256 issuanceId => Issuance) private _issuances;
    uint256 private _issuanceCount;
    /// @dev Months after a certificate's hour (schema 1: period) ends until its units expire.
    uint256 private immutable _expiryMonths;
    uint256 private immutable _expirySeconds;
    /// @dev Total supply (OpenZeppelin's `_totalSupply` is private and unused here, see `_update`).
    uint256 private _supply;

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param revoker Receives REVOKER_ROLE (the operator).
    /// @param expiryMonths Certificates expire this many months (SECONDS_PER_MONTH each) after
    /// their hour ends; 1..MAX_EXPIRY_MONTHS, fixed for the deployment (24 by default).
    constructor(address admin, address revoker, uint256 expiryMonths) ERC20("Zero-Carbon Value", "ZCV") {
        if (expiryMonths == 0 || expiryMonths > MAX_EXPIRY_MONTHS) revert ZcvBadExpiry(expiryMonths);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REVOKER_ROLE, revoker);
        _expiryMonths = expiryMonths;
        _expirySeconds = expiryMonths * SECONDS_PER_MONTH;
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
    function issueHourly(address to, IssuanceInput calldata issuanceInput, HourInput[] calldata hourInputs)
        external
        onlyRole(ISSUER_ROLE)
        returns (uint256 firstCertificateId)
    {
        uint256 count = hourInputs.length;
        if (count == 0) revert ZcvZeroUnits();
        uint256 issuanceId = ++_issuanceCount;
        _issuances[issuanceId] = Issuance(
            issuanceInput.registry,
            uint64(block.timestamp),
            issuanceInput.supportStatus,
            to,
            issuanceInput.meterId,
            issuanceInput.evidence
        );
        firstCertificateId = _certificateCount + 1;
        uint256 total;
        for (uint256 i = 0; i < count; ++i) {
            HourInput calldata hour = hourInputs[i];
            if (hour.units == 0) revert ZcvZeroUnits();
            uint256 certificateId = firstCertificateId + i;
            // uint32 issuance ids: one per claim, 4 billion claims is beyond any deployment.
            _hourly[certificateId] = HourlyCertificate(
                hour.hourStart, uint32(issuanceId), hour.wh, hour.units, 0, hour.policy, false
            );
            _creditLot(to, uint64(certificateId), hour.units);
            total += hour.units;
            emit CertificateIssued(
                certificateId,
                issuanceInput.meterId,
                to,
                hour.units,
                hour.wh,
                hour.hourStart,
                uint64(hour.hourStart) + uint64(SECONDS_PER_HOUR),
                hour.evidence
            );
        }
        _certificateCount = firstCertificateId + count - 1;
        // `_creditLot` already credited the balance; the mint only adds to the supply, and its cap
        // check reverts the whole claim if the credits above went past SUPPLY_CAP.
        _mint(to, total);
        _counters[to].purchased += total;
        _totalIssued += total;
        emit HourlyIssued(
            issuanceId,
            issuanceInput.registry,
            issuanceInput.meterId,
            to,
            firstCertificateId,
            count,
            issuanceInput.supportStatus,
            issuanceInput.previousEvidence,
            issuanceInput.evidence
        );
    }

    /// @inheritdoc IZeroCarbonValue
    function revokeCertificate(uint256 certificateId, string calldata reason) external onlyRole(REVOKER_ROLE) {
        if (_hourly[certificateId].hourStart != 0) {
            HourlyCertificate storage hourly = _hourly[certificateId];
            if (hourly.revoked) revert ZcvAlreadyRevoked(certificateId);
            hourly.revoked = true;
        } else {
            Certificate storage cert = _existingCertificate(certificateId);
            if (cert.revoked) revert ZcvAlreadyRevoked(certificateId);
            cert.revoked = true;
        }
        _revokedIds.push(uint64(certificateId));
        emit CertificateRevoked(certificateId, reason);
    }

    /// @inheritdoc IZeroCarbonValue
    function evict(address holder, uint256 certificateId) external {
        if (!_isFrozen(certificateId)) revert ZcvNothingToEvict(holder, certificateId);
        // Only issued certificates can be revoked, and issued ids fit in uint64.
        uint64 id = uint64(certificateId);
        Account memory account = _accounts[holder];
        uint256 units;
        if (account.currentId == certificateId) {
            units = account.currentUnits;
            account.currentId = 0;
            account.currentUnits = 0;
            // The evictor, not the holder, pays to put the next lot in place: the holder's next
            // spend then costs what it did before the revoked lot arrived.
            if (account.groupBits != 0) {
                (uint256 nextId, uint256 nextUnits) = _popLargest(holder, account);
                delete _lots[holder][nextId];
                // Stored ids fit 40 bits, stored units 88 bits.
                account.currentId = uint40(nextId);
                account.currentUnits = uint88(nextUnits);
            }
        } else {
            LotSlot memory lot = _lots[holder][certificateId];
            if (lot.tag == 0 || lot.tag == FROZEN_TAG) revert ZcvNothingToEvict(holder, certificateId);
            units = lot.units;
            _unlink(holder, id, lot, account);
        }
        _pushFrozen(holder, id, units);
        _accounts[holder] = account;
        emit LotFrozen(holder, certificateId, units);
    }

    // ---------------------------------------------------------------- holder actions

    /// @inheritdoc IZeroCarbonValue
    function transferLots(address to, LotPick[] calldata picks) external {
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 units = _takePicks(msg.sender, to, picks, new uint64[](0), new uint256[](0));
        // Lots and balances are already moved (`_takePicks`): only the ERC-20 event is left.
        emit Transfer(msg.sender, to, units);
    }

    /// @inheritdoc IZeroCarbonValue
    function transferLotsFrom(address from, address to, LotPick[] calldata picks) external {
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 units = _takePicks(from, to, picks, new uint64[](0), new uint256[](0));
        _spendAllowance(from, msg.sender, units);
        emit Transfer(from, to, units);
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
        uint256 taken = _spendInOrder(msg.sender, address(0), units, certificateIds, certificateUnits);
        // Trim the fixed-size buffers to the lots actually taken (taken <= their length).
        assembly ("memory-safe") {
            mstore(certificateIds, taken)
            mstore(certificateUnits, taken)
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
        uint256 units = _takePicks(msg.sender, address(0), picks, certificateIds, certificateUnits);
        _checkRetirement(units, beneficiary, consumptionStart, consumptionEnd);
        retirementId =
            _recordRetirement(units, beneficiary, reason, consumptionStart, consumptionEnd, certificateIds, certificateUnits);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IZeroCarbonValue
    function certificate(uint256 certificateId) external view returns (Certificate memory cert) {
        HourlyCertificate memory hourly = _hourly[certificateId];
        if (hourly.hourStart == 0) return _existingCertificate(certificateId);
        Issuance memory claimed = _issuances[hourly.issuanceId];
        cert.schemaVersion = HOURLY_SCHEMA_VERSION;
        cert.id = uint64(certificateId);
        cert.registry = claimed.registry;
        cert.meterId = claimed.meterId;
        cert.wh = hourly.wh;
        cert.periodStart = hourly.hourStart;
        cert.periodEnd = uint64(hourly.hourStart) + uint64(SECONDS_PER_HOUR);
        cert.evidence = claimed.evidence;
        cert.issuedAt = claimed.issuedAt;
        cert.issuedTo = claimed.issuedTo;
        cert.units = hourly.units;
        cert.retiredUnits = hourly.retiredUnits;
        cert.revoked = hourly.revoked;
    }

    /// @inheritdoc IZeroCarbonValue
    function hourlyCertificate(uint256 certificateId) external view returns (HourlyCertificate memory) {
        return _hourly[certificateId];
    }

    /// @inheritdoc IZeroCarbonValue
    function issuance(uint256 issuanceId) external view returns (Issuance memory) {
        return _issuances[issuanceId];
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

    /// @notice The holder's units, frozen ones included (kept in its `Account` slot, see `_update`).
    function balanceOf(address holder) public view override returns (uint256) {
        return _accounts[holder].balance;
    }

    /// @notice Units in circulation (issued minus retired).
    function totalSupply() public view override returns (uint256) {
        return _supply;
    }

    /// @inheritdoc IZeroCarbonValue
    function isFrozen(uint256 certificateId) external view returns (bool) {
        return _isFrozen(certificateId);
    }

    /// @inheritdoc IZeroCarbonValue
    function expiryMonths() external view returns (uint256) {
        return _expiryMonths;
    }

    /// @inheritdoc IZeroCarbonValue
    function expiresAt(uint256 certificateId) public view returns (uint256) {
        uint256 hourStart = _hourly[certificateId].hourStart;
        if (hourStart != 0) return hourStart + SECONDS_PER_HOUR + _expirySeconds;
        return uint256(_existingCertificate(certificateId).periodEnd) + _expirySeconds;
    }

    /// @inheritdoc IZeroCarbonValue
    function vintageYear(uint256 certificateId) external view returns (uint256) {
        return _yearOf(_vintageTime(certificateId));
    }

    /// @inheritdoc IZeroCarbonValue
    function lotBalance(address holder, uint256 certificateId) public view returns (uint256) {
        Account memory account = _accounts[holder];
        if (account.currentId == certificateId && certificateId != 0) return account.currentUnits;
        return _lots[holder][certificateId].units;
    }

    /// @inheritdoc IZeroCarbonValue
    function lotCount(address holder) external view returns (uint256) {
        return _accounts[holder].lotCount;
    }

    /// @inheritdoc IZeroCarbonValue
    function revokedCertificateIds() external view returns (uint64[] memory) {
        return _revokedIds;
    }

    /// @inheritdoc IZeroCarbonValue
    function frozenBalanceOf(address holder) external view returns (uint256 units) {
        Account memory account = _accounts[holder];
        if (account.currentId != 0 && _isFrozen(account.currentId)) units += account.currentUnits;
        // Listed lots of an expired certificate stay in their class until a spend meets them.
        for (uint256 group = 0; group < GROUPS; ++group) {
            if (account.groupBits & (1 << group) == 0) continue;
            uint256 lanes = _headGroups[holder][group];
            for (uint256 lane = 0; lane < LANES; ++lane) {
                uint256 id = (lanes >> (lane * LANE_BITS)) & LANE_MASK;
                for (; id != 0; id = _lots[holder][id].next) {
                    if (_isFrozen(id)) units += _lots[holder][id].units;
                }
            }
        }
        // The frozen ledger only holds frozen lots (revocation and expiry are final).
        for (uint256 id = _frozenHeads[holder]; id != 0; id = _lots[holder][id].next) {
            units += _lots[holder][id].units;
        }
    }

    /// @inheritdoc IZeroCarbonValue
    function lotsOf(address holder, uint256 offset, uint256 limit) external view returns (Lot[] memory lots) {
        Account memory account = _accounts[holder];
        uint256 available = account.lotCount > offset ? account.lotCount - offset : 0;
        lots = new Lot[](available < limit ? available : limit);
        if (lots.length == 0) return lots;
        uint256 seen;
        uint256 filled;
        if (account.currentId != 0) {
            if (seen++ >= offset) lots[filled++] = Lot(account.currentId, account.currentUnits);
        }
        // Size classes largest first (empty head slots skipped by the bitmap), then the frozen ledger.
        for (uint256 group = GROUPS; group != 0 && filled < lots.length; --group) {
            if (account.groupBits & (1 << (group - 1)) == 0) continue;
            uint256 lanes = _headGroups[holder][group - 1];
            for (uint256 lane = LANES; lane != 0 && filled < lots.length; --lane) {
                uint256 head = (lanes >> ((lane - 1) * LANE_BITS)) & LANE_MASK;
                if (head != 0) (seen, filled) = _collect(holder, head, offset, seen, lots, filled);
            }
        }
        if (filled < lots.length) _collect(holder, _frozenHeads[holder], offset, seen, lots, filled);
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

    /// @dev OpenZeppelin's ERC20 keeps balances in its own `_balances` mapping: one more cold slot
    /// per side of every transfer, next to the lot bookkeeping ZCV must touch anyway. ZCV keeps OZ
    /// for name, allowances, approve/transferFrom and events, and overrides the balance bookkeeping:
    /// a holder's balance lives in its `Account` slot and moves with its lots (`_spendInOrder`,
    /// `_takePicks` debit; `_creditLot` credits). Here: plain ERC-20 transfers (transfer,
    /// transferFrom, pay) spend lots in order; mint and burn only change the supply (their lots,
    /// and so balances, are handled by `issue` and `retire*`); a self-transfer moves nothing.
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0)) {
            uint256 supply = _supply + value;
            if (supply > SUPPLY_CAP) revert ZcvSupplyCapExceeded(supply, SUPPLY_CAP);
            _supply = supply;
        } else if (to == address(0)) {
            // The burnt units already left the holder's lots and balance (`retire*`).
            _supply -= value;
        } else if (from != to && value != 0) {
            // Empty buffers (no allocation): plain transfers record nothing.
            uint64[] memory noIds;
            uint256[] memory noUnits;
            _spendInOrder(from, to, value, noIds, noUnits);
        } else {
            uint256 balance = _accounts[from].balance;
            if (balance < value) revert ERC20InsufficientBalance(from, balance, value);
        }
        emit Transfer(from, to, value);
    }

    /// @dev Takes `units` from `from` in spend order: the current lot, then the head of the largest
    /// non-empty size class. A frozen lot met on the way goes to the frozen ledger instead. Credits
    /// `to` unless it is zero (a burn) and records taken lots when the buffers are non-empty.
    /// Debits `from`'s balance (reverting ERC20InsufficientBalance when it does not suffice).
    /// @return taken Number of lots taken from.
    function _spendInOrder(
        address from,
        address to,
        uint256 units,
        uint64[] memory certificateIds,
        uint256[] memory certificateUnits
    ) private returns (uint256 taken) {
        Account memory account = _accounts[from];
        if (account.balance < units) revert ERC20InsufficientBalance(from, account.balance, units);
        // units <= balance (checked above), so it fits uint88 and the debit cannot underflow.
        unchecked {
            account.balance -= uint88(units);
        }
        uint256 remaining = units;
        uint256 visited;
        while (remaining != 0) {
            uint256 id = account.currentId;
            uint256 available = account.currentUnits;
            bool popped;
            if (id == 0) {
                if (account.groupBits == 0) _revertOutOfLots(from, units);
                (id, available) = _popLargest(from, account);
                popped = true;
            }
            if (visited == MAX_LOTS_PER_TRANSFER) revert ZcvTooManyLots(MAX_LOTS_PER_TRANSFER);
            ++visited;
            if (_isFrozen(id)) {
                _pushFrozen(from, id, available);
                account.currentId = 0;
                account.currentUnits = 0;
                emit LotFrozen(from, id, available);
                continue;
            }
            // A popped lot's units now live in the account: clear its slot (gas refund).
            if (popped) delete _lots[from][id];
            uint256 take = remaining < available ? remaining : available;
            // take <= remaining and take <= available by construction.
            unchecked {
                remaining -= take;
                available -= take;
            }
            if (available == 0) {
                account.currentId = 0;
                account.currentUnits = 0;
                // This lot held units, so lotCount >= 1.
                unchecked {
                    account.lotCount -= 1;
                }
            } else {
                // Stored ids fit 40 bits and available <= the lot's units (88 bits).
                account.currentId = uint40(id);
                account.currentUnits = uint88(available);
            }
            if (to != address(0)) _creditLot(to, uint64(id), take);
            if (certificateIds.length != 0) {
                certificateIds[taken] = uint64(id);
                certificateUnits[taken] = take;
            }
            ++taken;
            emit LotMoved(from, to, id, take);
        }
        _accounts[from] = account;
    }

    /// @dev The balance sufficed (callers check it first) but the spendable lots ran out: the rest
    /// is frozen. Names a frozen certificate of the holder.
    function _revertOutOfLots(address from, uint256 units) private view {
        uint256 frozen = _frozenHeads[from];
        if (frozen == 0) revert ERC20InsufficientBalance(from, balanceOf(from), units);
        _revertFrozen(frozen);
    }

    /// @dev Reverts with why certificate `id`'s units cannot move: revoked, else expired.
    function _revertFrozen(uint256 id) private view {
        HourlyCertificate storage hourly = _hourly[id];
        bool revoked = hourly.hourStart != 0 ? hourly.revoked : _certificates[id].revoked;
        if (revoked) revert ZcvCertificateRevoked(id);
        revert ZcvCertificateExpired(id, expiresAt(id));
    }

    /// @dev Takes exactly the picked lots (strictly ascending certificate ids, so each at most
    /// once) and debits `from`'s balance. Credits `to` unless zero; records into the buffers when
    /// non-empty. Returns the units.
    function _takePicks(
        address from,
        address to,
        LotPick[] calldata picks,
        uint64[] memory certificateIds,
        uint256[] memory certificateUnits
    ) private returns (uint256 units) {
        if (picks.length == 0) revert ZcvZeroUnits();
        if (to == from) revert ERC20InvalidReceiver(to);
        Account memory account = _accounts[from];
        uint256 previousId;
        for (uint256 i = 0; i < picks.length; ++i) {
            uint64 id = picks[i].certificateId;
            uint256 take = picks[i].units;
            if (id <= previousId) revert ZcvLotPicksUnordered(id);
            previousId = id;
            if (take == 0) revert ZcvZeroUnits();
            if (_isFrozen(id)) _revertFrozen(id);
            if (id == account.currentId) {
                if (take > account.currentUnits) revert ZcvLotTooSmall(id, take, account.currentUnits);
                // take <= currentUnits (checked above).
                unchecked {
                    account.currentUnits -= uint88(take);
                }
                if (account.currentUnits == 0) {
                    account.currentId = 0;
                    // The current lot held units, so lotCount >= 1.
                    unchecked {
                        account.lotCount -= 1;
                    }
                }
            } else {
                _debitListedLot(from, id, take, account);
            }
            if (to != address(0)) _creditLot(to, id, take);
            if (certificateIds.length != 0) {
                certificateIds[i] = id;
                certificateUnits[i] = take;
            }
            units += take;
            emit LotMoved(from, to, id, take);
        }
        // Every unit taken came out of one of the holder's lots, whose sum is the balance.
        account.balance -= uint88(units);
        _accounts[from] = account;
    }

    /// @dev Debits `take` units from a lot in a size-class list (not the current lot), relinking
    /// it when it drops to a lower class and unlinking it when emptied.
    function _debitListedLot(address holder, uint256 id, uint256 take, Account memory account) private {
        LotSlot memory lot = _lots[holder][id];
        // Frozen lots are refused before (`_isFrozen`); tag 0 means no lot here.
        uint256 available = lot.tag == 0 ? 0 : lot.units;
        if (take > available) revert ZcvLotTooSmall(id, take, available);
        // take <= available (checked above).
        uint256 rest;
        unchecked {
            rest = available - take;
        }
        if (rest == 0) {
            _unlink(holder, id, lot, account);
            delete _lots[holder][id];
            // The lot held units, so lotCount >= 1.
            unchecked {
                account.lotCount -= 1;
            }
        } else if (_sizeClass(rest) + 1 == lot.tag) {
            // rest < the lot's units, which fit in uint88.
            _lots[holder][id].units = uint88(rest);
        } else {
            _unlink(holder, id, lot, account);
            _pushListed(holder, account, id, rest);
        }
    }

    /// @dev Credits `units` of certificate `certificateId` to `holder` (balance and lot), keeping
    /// the spend order true: the units merge into the holder's lot of the certificate; a lot that
    /// changes size class is relinked; a lot of a larger class than the current lot and every
    /// listed lot becomes the current lot (the former current lot is listed).
    function _creditLot(address holder, uint64 certificateId, uint256 units) private {
        // Ids are packed in 40 bits: certificate 2^40 cannot be issued (SafeCast reverts).
        uint256 id = SafeCast.toUint40(certificateId);
        // The account first: the balance is in it, and a merge into the current lot (a repeat
        // payment to the same certificate) then touches no other slot of the recipient.
        Account memory account = _accounts[holder];
        // balance + units <= total supply <= SUPPLY_CAP (checked on mint), so it fits uint88.
        unchecked {
            account.balance += uint88(units);
        }
        if (account.currentId == id) {
            // currentUnits <= balance <= SUPPLY_CAP.
            unchecked {
                account.currentUnits += uint88(units);
            }
            _accounts[holder] = account;
            return;
        }
        LotSlot memory lot = _lots[holder][id];
        // total <= balance <= SUPPLY_CAP, so casts to uint88 below are exact.
        uint256 total = uint256(lot.units) + units;
        // A listed lot of class c = tag - 1 holds >= 2^c units, so total (> its units) stays in
        // class c iff total < 2^(c + 1) = 2^tag, or c is the top class (a shift, not a log2).
        if (lot.tag == FROZEN_TAG || (lot.tag != 0 && (lot.tag == TOP_CLASS + 1 || total >> lot.tag == 0))) {
            // A merge that stays in its class (a repeat payment). Frozen: unreachable today (frozen
            // units never move); kept so units are conserved regardless.
            _lots[holder][id].units = uint88(total);
            _accounts[holder] = account;
            return;
        }
        if (lot.tag == 0) {
            account.lotCount += 1;
            if (account.lotCount == 1) {
                // The holder's only lot is its current lot.
                account.currentId = uint40(id);
                account.currentUnits = uint88(total);
                _accounts[holder] = account;
                return;
            }
        } else {
            // A listed lot that grows into another size class is relinked there.
            _unlink(holder, id, lot, account);
            delete _lots[holder][id];
        }
        uint256 class = _sizeClass(total);
        // Promoted only past the current lot AND every listed class: when the current lot is a
        // small remainder, a stranger's lot just above it must not jump the holder's larger lots.
        if (
            account.currentId != 0 && class > _sizeClass(account.currentUnits)
                && _aboveEveryListedClass(holder, account, class)
        ) {
            // The larger lot is spent first; the former current lot joins its class list.
            _pushListed(holder, account, account.currentId, account.currentUnits);
            account.currentId = uint40(id);
            account.currentUnits = uint88(total);
        } else {
            _pushListed(holder, account, id, total);
        }
        _accounts[holder] = account;
    }

    /// @dev Whether `class` is larger than the holder's largest non-empty size class (true when
    /// none is). Reads at most the head slot of `class`, which the caller writes next anyway.
    function _aboveEveryListedClass(address holder, Account memory account, uint256 class)
        private
        view
        returns (bool)
    {
        if (account.groupBits == 0) return true;
        uint256 top = Math.log2(account.groupBits);
        uint256 group = class / LANES;
        if (group != top) return group > top;
        return class % LANES > Math.log2(_headGroups[holder][group]) / LANE_BITS;
    }

    /// @dev Unlinks the head of the largest non-empty size class (groupBits != 0) and returns its
    /// id and units; the caller deletes or rewrites its slot. The new head's `prev` goes stale:
    /// `_unlink` recognises a head by the head pointer, never by `prev`.
    function _popLargest(address holder, Account memory account) private returns (uint256 id, uint256 units) {
        uint256 group = Math.log2(account.groupBits);
        uint256 lanes = _headGroups[holder][group];
        // A non-empty slot's highest set bit lies in the lane of its largest non-empty class.
        uint256 lane = Math.log2(lanes) / LANE_BITS;
        id = (lanes >> (lane * LANE_BITS)) & LANE_MASK;
        LotSlot storage lot = _lots[holder][id];
        units = lot.units;
        _storeHead(holder, account, group, lanes, lane, lot.next);
    }

    /// @dev Links lot `id` (`units` units) at the head of its size class list.
    function _pushListed(address holder, Account memory account, uint256 id, uint256 units) private {
        uint256 class = _sizeClass(units);
        uint256 group = class / LANES;
        uint256 lane = class % LANES;
        uint256 lanes = _headGroups[holder][group];
        uint256 head = (lanes >> (lane * LANE_BITS)) & LANE_MASK;
        // Ids fit 40 bits; units <= balance <= SUPPLY_CAP.
        _lots[holder][id] = LotSlot(uint88(units), 0, uint40(head), uint8(class + 1));
        if (head != 0) _lots[holder][head].prev = uint40(id);
        _storeHead(holder, account, group, lanes, lane, id);
    }

    /// @dev Writes `id` as the head of lane `lane` of head slot `group` (whose value is `lanes`)
    /// and keeps the account's bitmap of non-empty head slots true.
    function _storeHead(
        address holder,
        Account memory account,
        uint256 group,
        uint256 lanes,
        uint256 lane,
        uint256 id
    ) private {
        uint256 shift = lane * LANE_BITS;
        lanes = (lanes & ~(LANE_MASK << shift)) | (id << shift);
        _headGroups[holder][group] = lanes;
        // group < GROUPS <= 16, so the bit fits uint16.
        if (lanes == 0) account.groupBits &= ~uint16(1 << group);
        else account.groupBits |= uint16(1 << group);
    }

    /// @dev Links lot `id` at the head of the frozen ledger. That list is never unlinked from,
    /// so it needs no `prev` pointers.
    function _pushFrozen(address holder, uint256 id, uint256 units) private {
        // Ids fit 40 bits; units <= balance <= SUPPLY_CAP.
        _lots[holder][id] = LotSlot(uint88(units), 0, _frozenHeads[holder], FROZEN_TAG);
        _frozenHeads[holder] = uint40(id);
    }

    /// @dev Unlinks a listed lot from its size class list (the slot itself is left to the caller).
    /// A head is recognised by the head pointer, not by `prev`, which goes stale on a pop.
    function _unlink(address holder, uint256 id, LotSlot memory lot, Account memory account) private {
        uint256 class = lot.tag - 1;
        uint256 group = class / LANES;
        uint256 lane = class % LANES;
        uint256 lanes = _headGroups[holder][group];
        if ((lanes >> (lane * LANE_BITS)) & LANE_MASK == id) {
            _storeHead(holder, account, group, lanes, lane, lot.next);
        } else {
            _lots[holder][lot.prev].next = lot.next;
            if (lot.next != 0) _lots[holder][lot.next].prev = lot.prev;
        }
    }

    /// @dev Reads up to `lots.length - filled` lots of the list starting at `id` into `lots`,
    /// skipping the first `offset` lots overall (`seen` counts lots passed so far).
    function _collect(address holder, uint256 id, uint256 offset, uint256 seen, Lot[] memory lots, uint256 filled)
        private
        view
        returns (uint256, uint256)
    {
        while (id != 0 && filled < lots.length) {
            LotSlot storage lot = _lots[holder][id];
            if (seen++ >= offset) lots[filled++] = Lot(uint64(id), lot.units);
            id = lot.next;
        }
        return (seen, filled);
    }

    /// @dev floor(log2(units)), capped at TOP_CLASS; 0 for units 0 or 1.
    function _sizeClass(uint256 units) private pure returns (uint256 class) {
        class = Math.log2(units);
        if (class > TOP_CLASS) class = TOP_CLASS;
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
        // Lots and balance are already debited; burning lowers the supply and emits Transfer.
        _burn(msg.sender, units);
        // The consumption period [start, end) lies in one vintage year, that of every certificate.
        uint256 consumptionYear = _yearOf(consumptionStart);
        // end > start (checked), so end - 1 does not underflow.
        uint256 lastYear = _yearOf(consumptionEnd - 1);
        for (uint256 i = 0; i < certificateIds.length; ++i) {
            uint256 id = certificateIds[i];
            uint256 vintage = _yearOf(_vintageTime(id));
            if (vintage != consumptionYear || vintage != lastYear) {
                revert ZcvConsumptionOutsideVintage(id, vintage, consumptionStart, consumptionEnd);
            }
            if (_hourly[id].hourStart != 0) {
                // Retired units never exceed the certificate's uint64 units (invariant 4).
                _hourly[id].retiredUnits += uint64(certificateUnits[i]);
            } else {
                _certificates[id].retiredUnits += certificateUnits[i];
            }
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

    /// @dev Revoked, or expired: `expiryMonths` after its hour (schema 1: period) ended. One slot
    /// for an hourly certificate (the common case); schema 1 reads its own record.
    function _isFrozen(uint256 certificateId) private view returns (bool) {
        HourlyCertificate storage hourly = _hourly[certificateId];
        if (hourly.hourStart != 0) {
            return hourly.revoked || block.timestamp >= hourly.hourStart + SECONDS_PER_HOUR + _expirySeconds;
        }
        Certificate storage cert = _certificates[certificateId];
        // An id never issued is not frozen (callers report it as unknown or as no lot).
        if (cert.id == 0) return false;
        return cert.revoked || block.timestamp >= uint256(cert.periodEnd) + _expirySeconds;
    }

    /// @dev The time that dates a certificate's vintage: its hour's start (schema 1: the last
    /// second of its period).
    function _vintageTime(uint256 certificateId) private view returns (uint256) {
        uint256 hourStart = _hourly[certificateId].hourStart;
        if (hourStart != 0) return hourStart;
        // Issued periods end after they start (>= 1), so periodEnd - 1 does not underflow.
        return uint256(_existingCertificate(certificateId).periodEnd) - 1;
    }

    /// @dev The calendar year (JST) of a Unix time: Howard Hinnant's civil_from_days, for days
    /// since 1970 (no negative days, so plain integer division is floor division).
    function _yearOf(uint256 timestamp) private pure returns (uint256 year) {
        uint256 z = (timestamp + VINTAGE_UTC_OFFSET) / 1 days + 719_468;
        uint256 era = z / 146_097;
        uint256 doe = z - era * 146_097;
        uint256 yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        uint256 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        uint256 mp = (5 * doy + 2) / 153;
        year = yoe + era * 400;
        // Months are counted from March: January and February (mp 10, 11) belong to the next year.
        if (mp >= 10) year += 1;
    }

    function _existingCertificate(uint256 certificateId) private view returns (Certificate storage cert) {
        cert = _certificates[certificateId];
        if (cert.id == 0) revert ZcvUnknownCertificate(certificateId);
    }
}
