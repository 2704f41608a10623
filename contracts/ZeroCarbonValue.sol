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
///  - One lot per (holder, certificate): `lotBalance` is O(1). A holder's "current" lot (the one
///    plain spends take first) keeps its units in the holder's `Account` slot; every other lot
///    has one packed `LotSlot` and sits in a doubly-linked list of its size class
///    (floor(log2(units)), 0..63), with a per-holder bitmap of non-empty classes in `Account`.
///  - Plain `transfer`/`transferFrom`/`pay`/`retire` take the current lot, then refill it from the
///    head of the largest non-empty class. Credits keep the order true: a credit that moves a lot
///    into another class relinks it (the sender pays), and a lot of a larger class than the
///    current lot and every listed lot becomes the current lot. So what a stranger sends is visited before the
///    holder's own lots only if it is at least as large (in size class) as they are: dust never
///    is (DESIGN invariant 8).
///  - A revoked certificate's lot met by a plain spend, or named in `evict` (permissionless),
///    leaves the spend order for the holder's frozen ledger (a list never walked by spends).
///  - `transferLots`/`transferLotsFrom`/`retireLots` name certificates: O(picks) whatever the
///    holder or the recipient hold. Plain spends visit at most MAX_LOTS_PER_TRANSFER lots.
/// Invariants kept here:
///  (3) sum of balances == totalSupply (OpenZeppelin ERC20); totalSupply + totalRetired == totalIssued;
///  (4) for every certificate: units == sum of its lots over all holders + its retiredUnits, and
///      for every holder: balanceOf == sum of its lots' units (current + listed + frozen);
///  (7) a revoked certificate's lots are never debited: plain paths (`_spendInOrder`) freeze
///      them instead of taking them, named paths (`_takePicks`) revert ZcvCertificateRevoked;
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
    uint256 private constant FROZEN_LIST = 64;
    /// @dev `LotSlot.tag`: 0 = not in a list, 1..64 = size class + 1, 65 = frozen ledger.
    uint8 private constant FROZEN_TAG = 65;

    struct AccountCounters {
        uint256 purchased;
        uint256 used;
        uint256 amortized;
    }

    /// @dev One slot per holder: the current lot (spent first) and the size-class bitmap, so the
    /// common transfer (current lot to a recipient's current lot) touches one slot per side.
    struct Account {
        uint64 currentId;
        uint96 currentUnits;
        uint32 lotCount;
        uint64 classBits;
    }

    /// @dev One slot per (holder, certificate) other than the current lot.
    struct LotSlot {
        uint96 units;
        uint64 prev;
        uint64 next;
        uint8 tag;
    }

    mapping(uint256 certificateId => Certificate) private _certificates;
    uint256 private _certificateCount;
    mapping(uint256 retirementId => Retirement) private _retirements;
    uint256 private _retirementCount;
    mapping(address holder => Account) private _accounts;
    mapping(address holder => mapping(uint256 certificateId => LotSlot)) private _lots;
    /// @dev Head of each list: size classes 0..63, then the frozen ledger (FROZEN_LIST).
    mapping(address holder => mapping(uint256 list => uint64 certificateId)) private _heads;
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
            if (account.classBits != 0) _popLargestIntoCurrent(holder, account);
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
        // Lots are already moved: go straight to ERC20 balance accounting (and its Transfer event).
        super._update(msg.sender, to, units);
    }

    /// @inheritdoc IZeroCarbonValue
    function transferLotsFrom(address from, address to, LotPick[] calldata picks) external {
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 units = _takePicks(from, to, picks, new uint64[](0), new uint256[](0));
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
        for (uint256 list = 0; list <= FROZEN_LIST; ++list) {
            if (list < FROZEN_LIST && account.classBits & (1 << list) == 0) continue;
            for (uint64 id = _heads[holder][list]; id != 0; id = _lots[holder][id].next) {
                // The frozen ledger only holds frozen lots (revocation and expiry are final).
                if (list == FROZEN_LIST || _isFrozen(id)) units += _lots[holder][id].units;
            }
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
        // Size classes largest first (empty ones skipped by the bitmap), then the frozen ledger.
        for (uint256 list = TOP_CLASS + 1; list != 0 && filled < lots.length; --list) {
            if (account.classBits & (1 << (list - 1)) == 0) continue;
            (seen, filled) = _collect(holder, list - 1, offset, seen, lots, filled);
        }
        if (filled < lots.length) _collect(holder, FROZEN_LIST, offset, seen, lots, filled);
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

    /// @dev Plain ERC-20 transfers (transfer, transferFrom, pay) spend lots in order. Mint and burn
    /// manage their lots in `issue` and `retire*`; a self-transfer moves no lot.
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0) && from != to && value != 0) {
            uint256 balance = balanceOf(from);
            if (balance < value) revert ERC20InsufficientBalance(from, balance, value);
            _spendInOrder(from, to, value, new uint64[](0), new uint256[](0));
        }
        super._update(from, to, value);
    }

    /// @dev Takes `units` from `from` in spend order: the current lot, then the head of the largest
    /// non-empty size class. A revoked lot met on the way goes to the frozen ledger instead. Credits
    /// `to` unless it is zero (a burn) and records taken lots when the buffers are non-empty.
    /// @return taken Number of lots taken from.
    function _spendInOrder(
        address from,
        address to,
        uint256 units,
        uint64[] memory certificateIds,
        uint256[] memory certificateUnits
    ) private returns (uint256 taken) {
        Account memory account = _accounts[from];
        uint256 remaining = units;
        uint256 visited;
        while (remaining != 0) {
            uint64 id = account.currentId;
            uint256 available = account.currentUnits;
            LotSlot memory lot;
            if (id == 0) {
                if (account.classBits == 0) _revertOutOfLots(from, units);
                uint256 class = Math.log2(account.classBits);
                id = _heads[from][class];
                lot = _lots[from][id];
                // Pop the head. The new head's `prev` goes stale; `_unlink` never reads a head's prev.
                _heads[from][class] = lot.next;
                if (lot.next == 0) account.classBits &= ~uint64(1 << class);
                available = lot.units;
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
            if (lot.tag != 0) delete _lots[from][id];
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
                account.currentId = id;
                // available <= the lot's units, which fit in uint96.
                account.currentUnits = uint96(available);
            }
            if (to != address(0)) _creditLot(to, id, take);
            if (certificateIds.length != 0) {
                certificateIds[taken] = id;
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
        uint64 frozen = _heads[from][FROZEN_LIST];
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
    /// once). Credits `to` unless zero; records into the buffers when non-empty. Returns the units.
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
                    account.currentUnits -= uint96(take);
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
        _accounts[from] = account;
    }

    /// @dev Debits `take` units from a lot in a size-class list (not the current lot), relinking
    /// it when it drops to a lower class and unlinking it when emptied.
    function _debitListedLot(address holder, uint64 id, uint256 take, Account memory account) private {
        LotSlot memory lot = _lots[holder][id];
        // Frozen lots are refused before (their certificate is revoked); tag 0 means no lot here.
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
            // rest < the lot's units, which fit in uint96.
            _lots[holder][id].units = uint96(rest);
        } else {
            _unlink(holder, id, lot, account);
            _pushListed(holder, account, id, rest);
        }
    }

    /// @dev Credits `units` of certificate `id` to `holder`, keeping the spend order true: the lot
    /// is merged into its lot; a lot that changes size class is relinked; a lot of a larger class
    /// than the current lot and every listed lot becomes the current lot (the former current lot
    /// is listed).
    function _creditLot(address holder, uint64 id, uint256 units) private {
        // The lot slot first: a merge into a listed lot that stays in its class (a repeat
        // payment) then touches one slot of the recipient, not two.
        LotSlot memory lot = _lots[holder][id];
        uint256 total = uint256(lot.units) + units;
        if (lot.tag != 0 && lot.tag != FROZEN_TAG && _sizeClass(total) + 1 == lot.tag) {
            _lots[holder][id].units = total.toUint96();
            return;
        }
        Account memory account = _accounts[holder];
        if (account.currentId == id) {
            account.currentUnits = (uint256(account.currentUnits) + units).toUint96();
            _accounts[holder] = account;
            return;
        }
        if (lot.tag == FROZEN_TAG) {
            // Unreachable today (frozen units never move); kept so units are conserved regardless.
            _lots[holder][id].units = total.toUint96();
            return;
        }
        if (lot.tag == 0) {
            account.lotCount += 1;
            if (account.lotCount == 1) {
                // The holder's only lot is its current lot.
                account.currentId = id;
                account.currentUnits = total.toUint96();
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
                && class > Math.log2(account.classBits)
        ) {
            // The larger lot is spent first; the former current lot joins its class list.
            _pushListed(holder, account, account.currentId, account.currentUnits);
            account.currentId = id;
            account.currentUnits = total.toUint96();
        } else {
            _pushListed(holder, account, id, total);
        }
        _accounts[holder] = account;
    }

    /// @dev Makes the head of the largest non-empty size class the current lot (classBits != 0).
    function _popLargestIntoCurrent(address holder, Account memory account) private {
        uint256 class = Math.log2(account.classBits);
        uint64 id = _heads[holder][class];
        LotSlot memory lot = _lots[holder][id];
        _heads[holder][class] = lot.next;
        if (lot.next == 0) account.classBits &= ~uint64(1 << class);
        delete _lots[holder][id];
        account.currentId = id;
        account.currentUnits = lot.units;
    }

    /// @dev Links lot `id` (`units` units) at the head of its size class list.
    function _pushListed(address holder, Account memory account, uint64 id, uint256 units) private {
        uint256 class = _sizeClass(units);
        uint64 head = _heads[holder][class];
        _lots[holder][id] = LotSlot(units.toUint96(), 0, head, uint8(class + 1));
        if (head != 0) _lots[holder][head].prev = id;
        _heads[holder][class] = id;
        account.classBits |= uint64(1 << class);
    }

    /// @dev Links lot `id` at the head of the frozen ledger. That list is never unlinked from,
    /// so it needs no `prev` pointers.
    function _pushFrozen(address holder, uint64 id, uint256 units) private {
        _lots[holder][id] = LotSlot(units.toUint96(), 0, _heads[holder][FROZEN_LIST], FROZEN_TAG);
        _heads[holder][FROZEN_LIST] = id;
    }

    /// @dev Unlinks a listed lot from its size class list (the slot itself is left to the caller).
    /// A head is recognised by the head pointer, not by `prev`, which goes stale on a pop.
    function _unlink(address holder, uint64 id, LotSlot memory lot, Account memory account) private {
        uint256 class = lot.tag - 1;
        if (_heads[holder][class] == id) {
            _heads[holder][class] = lot.next;
            if (lot.next == 0) account.classBits &= ~uint64(1 << class);
        } else {
            _lots[holder][lot.prev].next = lot.next;
            if (lot.next != 0) _lots[holder][lot.next].prev = lot.prev;
        }
    }

    /// @dev Reads up to `lots.length - filled` lots of one list into `lots`, skipping the first
    /// `offset` lots overall (`seen` counts lots passed so far).
    function _collect(address holder, uint256 list, uint256 offset, uint256 seen, Lot[] memory lots, uint256 filled)
        private
        view
        returns (uint256, uint256)
    {
        uint64 id = _heads[holder][list];
        while (id != 0 && filled < lots.length) {
            LotSlot storage lot = _lots[holder][id];
            if (seen++ >= offset) lots[filled++] = Lot(id, lot.units);
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
        // Lots are already taken; burn the units (OpenZeppelin checks the balance).
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
