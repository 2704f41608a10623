// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IZeroCarbonValue} from "./interfaces/IZeroCarbonValue.sol";
import {IZcvMarket} from "./interfaces/IZcvMarket.sol";
import {ZcvEscrow} from "./ZcvEscrow.sol";

/// @title ZcvMarket
/// @notice Members sell ZCV, certificates included, for an ERC-20 payment token (JPYT on the
/// devnet); the operator posts monthly statements that members pay in the payment token or in ZCV.
/// @dev Escrow and provenance: see IZcvMarket. A seller's units sit at its own escrow clone
/// (`escrowOf(seller)`); a listing commits (certificate id, units) of that escrow. Fills deliver
/// exactly the listing's certificates with `transferLots`, computing the lot indexes from the
/// escrow's current stack in the same transaction, so swap-and-pop reordering never matters.
/// Invariants kept here:
///  (M1) for every listing: remaining == sum of listingLots(listing).units; an Open listing has
///       remaining > 0; a closed listing holds nothing.
///  (M2) for every seller and certificate: committed == sum over the seller's open listings of that
///       certificate's units, and the escrow holds at least that many units of it (units leave an
///       escrow only through this contract, which lowers `committed` first when they were listed).
///  (M3) the market never holds payment tokens or ZCV of users: buyers pay sellers and the fee
///       recipient directly, statement payers pay the treasury directly.
/// Trust: DEFAULT_ADMIN_ROLE sets the fee for new listings (capped at MAX_FEE_BPS, snapshotted per
/// listing), the fee recipient and the treasury; OPERATOR_ROLE posts and voids statements, sets
/// the ZCV conversion rate and confirms ZCV payments from the token's Paid events. Neither role
/// can move escrowed units or change a listing's price or contents.
contract ZcvMarket is AccessControl, ReentrancyGuardTransient, IZcvMarket {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    uint8 public constant ANY_METHOD = type(uint8).max;
    uint16 public constant MAX_FEE_BPS = 1000;
    uint256 public constant MAX_LISTING_LOTS = 16;
    uint256 private constant BPS = 10_000;

    IZeroCarbonValue private immutable ZCV;
    IERC20 private immutable PAYMENT_TOKEN;
    address private immutable ESCROW_IMPLEMENTATION;

    uint16 private _feeBps;
    address private _feeRecipient;
    address private _treasury;
    uint256 private _settlementRate;
    uint256 private _listingCount;
    mapping(uint256 listingId => Listing) private _listings;
    mapping(uint256 listingId => LotAmount[]) private _listingLots;
    mapping(address seller => mapping(uint64 certificateId => uint256)) private _committed;
    mapping(bytes32 statementId => Statement) private _statements;

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param operator Receives OPERATOR_ROLE (statements, conversion rate).
    /// @param zcv The ZCV token.
    /// @param paymentToken The settlement currency (any plain ERC-20; fee-on-transfer tokens are
    ///        not supported: sellers would receive less than the price).
    /// @param feeBps Fee for new listings.
    /// @param feeRecipient Receives fees.
    /// @param treasury Receives statement payments.
    constructor(
        address admin,
        address operator,
        IZeroCarbonValue zcv,
        IERC20 paymentToken,
        uint16 feeBps,
        address feeRecipient,
        address treasury
    ) {
        if (address(zcv) == address(0) || address(paymentToken) == address(0)) revert MarketZeroAddress();
        ZCV = zcv;
        PAYMENT_TOKEN = paymentToken;
        ESCROW_IMPLEMENTATION = address(new ZcvEscrow(zcv));
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
        _setFee(feeBps, feeRecipient);
        _setTreasury(treasury);
    }

    // ---------------------------------------------------------------- selling

    /// @inheritdoc IZcvMarket
    function list(
        LotAmount[] calldata lots,
        uint256 unitPrice,
        uint64 expiry,
        uint8 method,
        uint64 periodStart,
        uint64 periodEnd
    ) external nonReentrant returns (uint256 listingId) {
        uint256 n = lots.length;
        if (n == 0) revert MarketZeroUnits();
        if (n > MAX_LISTING_LOTS) revert MarketTooManyLots(MAX_LISTING_LOTS);
        if (unitPrice == 0) revert MarketZeroPrice();
        if (expiry <= block.timestamp) revert MarketBadExpiry(expiry, block.timestamp);
        if ((periodStart != 0 || periodEnd != 0) && periodEnd <= periodStart) {
            revert MarketBadPeriod(periodStart, periodEnd);
        }
        listingId = ++_listingCount;
        Listing storage l = _listings[listingId];
        l.seller = msg.sender;
        l.expiry = expiry;
        l.feeBps = _feeBps;
        l.method = method;
        l.status = ListingStatus.Open;
        l.periodStart = periodStart;
        l.periodEnd = periodEnd;
        l.unitPrice = unitPrice.toUint128();
        (uint256 total, uint64[] memory ids, uint256[] memory amounts) = _commitLots(listingId, l, lots);
        l.units = total.toUint128();
        l.remaining = uint128(total);
        emit Listed(
            listingId, msg.sender, unitPrice, total, expiry, l.feeBps, method, periodStart, periodEnd, ids, amounts
        );
    }

    /// @inheritdoc IZcvMarket
    function updatePrice(uint256 listingId, uint256 unitPrice) external {
        Listing storage l = _openListing(listingId);
        if (msg.sender != l.seller) revert MarketNotSeller(listingId, msg.sender);
        if (unitPrice == 0) revert MarketZeroPrice();
        uint256 old = l.unitPrice;
        l.unitPrice = unitPrice.toUint128();
        emit PriceUpdated(listingId, old, unitPrice);
    }

    /// @inheritdoc IZcvMarket
    function cancel(uint256 listingId) external nonReentrant returns (uint256 returnedUnits) {
        Listing storage l = _openListing(listingId);
        address seller = l.seller;
        if (msg.sender != seller && block.timestamp < l.expiry) revert MarketNotSeller(listingId, msg.sender);
        l.status = ListingStatus.Cancelled;
        l.remaining = 0;
        LotAmount[] memory lots = _listingLots[listingId];
        delete _listingLots[listingId];
        uint64[] memory ids = new uint64[](lots.length);
        uint256[] memory amounts = new uint256[](lots.length);
        uint256 movable;
        uint256 frozenUnits;
        for (uint256 i = 0; i < lots.length; ++i) {
            uint64 id = lots[i].certificateId;
            _committed[seller][id] -= lots[i].units;
            // Revoked units cannot move (DESIGN invariant 7): they stay frozen at the escrow,
            // uncommitted, instead of blocking the return of the rest.
            if (ZCV.certificate(id).revoked) {
                frozenUnits += lots[i].units;
                continue;
            }
            ids[movable] = id;
            amounts[movable] = lots[i].units;
            returnedUnits += lots[i].units;
            ++movable;
        }
        emit Cancelled(listingId, seller, msg.sender, returnedUnits, frozenUnits);
        if (movable != 0) {
            _trim(ids, amounts, movable);
            _deliver(listingId, _escrowAddress(seller), seller, ids, amounts);
        }
    }

    /// @inheritdoc IZcvMarket
    function withdraw(LotAmount[] calldata lots) external nonReentrant {
        uint256 n = lots.length;
        if (n == 0) revert MarketZeroUnits();
        if (n > MAX_LISTING_LOTS) revert MarketTooManyLots(MAX_LISTING_LOTS);
        address escrow = _escrowAddress(msg.sender);
        IZeroCarbonValue.Lot[] memory held = ZCV.lotsOf(escrow);
        uint64[] memory ids = new uint64[](n);
        uint256[] memory amounts = new uint256[](n);
        uint64 previous;
        for (uint256 i = 0; i < n; ++i) {
            uint64 id = lots[i].certificateId;
            if (id <= previous) revert MarketLotsUnordered(id);
            previous = id;
            if (lots[i].units == 0) revert MarketZeroUnits();
            // (M2): held >= committed.
            uint256 available = _heldUnits(held, id) - _committed[msg.sender][id];
            if (lots[i].units > available) revert MarketInsufficientDeposit(id, available, lots[i].units);
            ids[i] = id;
            amounts[i] = lots[i].units;
        }
        emit Withdrawn(msg.sender, ids, amounts);
        _deliver(0, escrow, msg.sender, ids, amounts);
    }

    /// @inheritdoc IZcvMarket
    function withdrawOtherToken(IERC20 token) external nonReentrant {
        if (address(token) == address(ZCV)) revert MarketNotEscrowToken(address(token));
        address escrow = _escrowAddress(msg.sender);
        uint256 amount = token.balanceOf(escrow);
        if (amount == 0) revert MarketZeroAmount();
        _ensureEscrow(msg.sender);
        emit TokensRecovered(address(token), msg.sender, amount);
        ZcvEscrow(escrow).sendToken(token, msg.sender, amount);
    }

    // ---------------------------------------------------------------- buying

    /// @inheritdoc IZcvMarket
    function buy(uint256 listingId, uint256 units, uint256 maxTotalPrice, uint64 deadline)
        external
        nonReentrant
        returns (uint256 cost)
    {
        if (block.timestamp > deadline) revert MarketDeadlinePassed(deadline, block.timestamp);
        Listing storage l = _openListing(listingId);
        if (block.timestamp >= l.expiry) revert MarketListingExpired(listingId, l.expiry);
        if (units == 0) revert MarketZeroUnits();
        uint256 remaining = l.remaining;
        if (units > remaining) revert MarketNotEnoughUnits(listingId, remaining, units);
        address seller = l.seller;
        if (seller == msg.sender) revert MarketSelfTrade(listingId);
        uint256 unitPrice = l.unitPrice;
        cost = units * unitPrice;
        if (cost > maxTotalPrice) revert MarketPriceAboveMax(cost, maxTotalPrice);
        uint256 fee = cost * l.feeBps / BPS;

        // Effects: (M1) remaining and the listing's lots drop by `units` together.
        // units <= remaining was checked above.
        unchecked {
            remaining -= units;
        }
        l.remaining = uint128(remaining);
        if (remaining == 0) l.status = ListingStatus.Filled;
        (uint64[] memory ids, uint256[] memory amounts) = _takeFromListing(listingId, seller, units);
        emit Bought(listingId, msg.sender, seller, units, unitPrice, cost, fee, remaining, ids, amounts);

        // Interactions: the certificates first (a revoked one reverts everything), then the money,
        // straight from the buyer to the fee recipient and the seller (M3).
        _deliver(listingId, _escrowAddress(seller), msg.sender, ids, amounts);
        if (fee != 0) PAYMENT_TOKEN.safeTransferFrom(msg.sender, _feeRecipient, fee);
        PAYMENT_TOKEN.safeTransferFrom(msg.sender, seller, cost - fee);
    }

    // ---------------------------------------------------------------- statements

    /// @inheritdoc IZcvMarket
    function postStatement(bytes32 statementId, address member, uint256 amountDue, uint64 dueAt)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (member == address(0)) revert MarketZeroAddress();
        if (amountDue == 0) revert MarketZeroAmount();
        Statement storage s = _statements[statementId];
        if (s.status != StatementStatus.None) revert MarketStatementExists(statementId);
        uint256 rate = _settlementRate;
        // Rounded up: a member paying in ZCV never pays less than the amount due.
        uint256 unitsDue = rate == 0 ? 0 : Math.ceilDiv(amountDue, rate);
        address payee = _treasury;
        _statements[statementId] = Statement(member, payee, dueAt, StatementStatus.Open, amountDue, unitsDue);
        emit StatementPosted(statementId, member, payee, amountDue, unitsDue, dueAt);
    }

    /// @inheritdoc IZcvMarket
    function payStatement(bytes32 statementId, uint256 maxAmount) external nonReentrant {
        Statement storage s = _openStatement(statementId);
        uint256 amount = s.amountDue;
        if (amount > maxAmount) revert MarketStatementAboveMax(amount, maxAmount);
        s.status = StatementStatus.PaidInToken;
        emit StatementPaid(statementId, s.member, msg.sender, StatementStatus.PaidInToken, amount);
        PAYMENT_TOKEN.safeTransferFrom(msg.sender, s.payee, amount);
    }

    /// @inheritdoc IZcvMarket
    function confirmZcvPayment(bytes32 statementId) external onlyRole(OPERATOR_ROLE) {
        Statement storage s = _openStatement(statementId);
        if (s.unitsDue == 0) revert MarketZcvNotAccepted(statementId);
        s.status = StatementStatus.PaidInZcv;
        emit StatementPaid(statementId, s.member, s.member, StatementStatus.PaidInZcv, s.unitsDue);
    }

    /// @inheritdoc IZcvMarket
    function voidStatement(bytes32 statementId, string calldata reason) external onlyRole(OPERATOR_ROLE) {
        Statement storage s = _openStatement(statementId);
        s.status = StatementStatus.Voided;
        emit StatementVoided(statementId, reason);
    }

    /// @inheritdoc IZcvMarket
    function setSettlementRate(uint256 paymentPerUnit) external onlyRole(OPERATOR_ROLE) {
        _settlementRate = paymentPerUnit;
        emit SettlementRateUpdated(paymentPerUnit);
    }

    // ---------------------------------------------------------------- administration

    /// @inheritdoc IZcvMarket
    function setFee(uint16 feeBps_, address feeRecipient_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setFee(feeBps_, feeRecipient_);
    }

    /// @inheritdoc IZcvMarket
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(treasury_);
    }

    /// @inheritdoc IZcvMarket
    function recoverTokens(IERC20 token, address to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (to == address(0)) revert MarketZeroAddress();
        // (M3): the market's own address never holds user funds, so anything here arrived by mistake.
        emit TokensRecovered(address(token), to, amount);
        token.safeTransfer(to, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IZcvMarket
    function listing(uint256 listingId) external view returns (Listing memory) {
        Listing storage l = _listings[listingId];
        if (l.status == ListingStatus.None) revert MarketUnknownListing(listingId);
        return l;
    }

    /// @inheritdoc IZcvMarket
    function listingLots(uint256 listingId) external view returns (LotAmount[] memory) {
        return _listingLots[listingId];
    }

    /// @inheritdoc IZcvMarket
    function listingCount() external view returns (uint256) {
        return _listingCount;
    }

    /// @inheritdoc IZcvMarket
    function escrowOf(address seller) external view returns (address) {
        return _escrowAddress(seller);
    }

    /// @inheritdoc IZcvMarket
    function committed(address seller, uint64 certificateId) external view returns (uint256) {
        return _committed[seller][certificateId];
    }

    /// @inheritdoc IZcvMarket
    function quote(uint256 listingId, uint256 units) external view returns (uint256 cost, uint256 fee) {
        Listing storage l = _listings[listingId];
        if (l.status == ListingStatus.None) revert MarketUnknownListing(listingId);
        cost = units * l.unitPrice;
        fee = cost * l.feeBps / BPS;
    }

    /// @inheritdoc IZcvMarket
    function statement(bytes32 statementId) external view returns (Statement memory) {
        Statement storage s = _statements[statementId];
        if (s.status == StatementStatus.None) revert MarketUnknownStatement(statementId);
        return s;
    }

    /// @inheritdoc IZcvMarket
    function zcv() external view returns (IZeroCarbonValue) {
        return ZCV;
    }

    /// @inheritdoc IZcvMarket
    function paymentToken() external view returns (IERC20) {
        return PAYMENT_TOKEN;
    }

    /// @inheritdoc IZcvMarket
    function feeBps() external view returns (uint16) {
        return _feeBps;
    }

    /// @inheritdoc IZcvMarket
    function feeRecipient() external view returns (address) {
        return _feeRecipient;
    }

    /// @inheritdoc IZcvMarket
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IZcvMarket
    function settlementRate() external view returns (uint256) {
        return _settlementRate;
    }

    // ---------------------------------------------------------------- internals

    function _setFee(uint16 feeBps_, address feeRecipient_) private {
        if (feeBps_ > MAX_FEE_BPS) revert MarketFeeTooHigh(feeBps_, MAX_FEE_BPS);
        // Always set, even at 0 bps: open listings keep their snapshotted fee and pay it here.
        if (feeRecipient_ == address(0)) revert MarketZeroAddress();
        _feeBps = feeBps_;
        _feeRecipient = feeRecipient_;
        emit FeeUpdated(feeBps_, feeRecipient_);
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0)) revert MarketZeroAddress();
        _treasury = treasury_;
        emit TreasuryUpdated(treasury_);
    }

    function _openListing(uint256 listingId) private view returns (Listing storage l) {
        l = _listings[listingId];
        ListingStatus status = l.status;
        if (status == ListingStatus.None) revert MarketUnknownListing(listingId);
        if (status != ListingStatus.Open) revert MarketListingNotOpen(listingId, status);
    }

    function _openStatement(bytes32 statementId) private view returns (Statement storage s) {
        s = _statements[statementId];
        if (s.status == StatementStatus.None) revert MarketUnknownStatement(statementId);
        if (s.status != StatementStatus.Open) revert MarketStatementNotOpen(statementId, s.status);
    }

    function _escrowAddress(address seller) private view returns (address) {
        return Clones.predictDeterministicAddress(ESCROW_IMPLEMENTATION, bytes32(uint256(uint160(seller))));
    }

    function _ensureEscrow(address seller) private returns (address escrow) {
        escrow = _escrowAddress(seller);
        if (escrow.code.length == 0) {
            Clones.cloneDeterministic(ESCROW_IMPLEMENTATION, bytes32(uint256(uint160(seller))));
            emit EscrowCreated(seller, escrow);
        }
    }

    /// @dev Checks each listed lot (order, certificate restriction, not revoked, deposited and not
    /// yet committed) and commits it to the listing (M1, M2).
    function _commitLots(uint256 listingId, Listing storage l, LotAmount[] calldata lots)
        private
        returns (uint256 total, uint64[] memory ids, uint256[] memory amounts)
    {
        address seller = l.seller;
        IZeroCarbonValue.Lot[] memory held = ZCV.lotsOf(_ensureEscrow(seller));
        LotAmount[] storage stored = _listingLots[listingId];
        ids = new uint64[](lots.length);
        amounts = new uint256[](lots.length);
        uint64 previous;
        for (uint256 i = 0; i < lots.length; ++i) {
            uint64 id = lots[i].certificateId;
            uint256 units = lots[i].units;
            if (id <= previous) revert MarketLotsUnordered(id);
            previous = id;
            if (units == 0) revert MarketZeroUnits();
            _checkCertificate(listingId, l, id);
            uint256 committedUnits = _committed[seller][id];
            // (M2): the escrow holds at least the committed units, so this cannot underflow.
            uint256 available = _heldUnits(held, id) - committedUnits;
            if (units > available) revert MarketInsufficientDeposit(id, available, units);
            _committed[seller][id] = committedUnits + units;
            stored.push(lots[i]);
            ids[i] = id;
            amounts[i] = units;
            total += units;
        }
    }

    /// @dev A listed certificate must exist, not be revoked, and meet the listing's restriction.
    function _checkCertificate(uint256 listingId, Listing storage l, uint64 id) private view {
        IZeroCarbonValue.Certificate memory cert = ZCV.certificate(id);
        if (cert.revoked) revert MarketCertificateRevoked(listingId, id);
        uint8 method = l.method;
        if (method != ANY_METHOD && uint8(cert.method) != method) revert MarketCertificateOutsideRestriction(id);
        uint64 periodStart = l.periodStart;
        uint64 periodEnd = l.periodEnd;
        if ((periodStart != 0 || periodEnd != 0) && (cert.periodStart < periodStart || cert.periodEnd > periodEnd)) {
            revert MarketCertificateOutsideRestriction(id);
        }
    }

    /// @dev Takes `units` from the listing's lots, last lot first, lowering `committed` (M2).
    /// The listing holds at least `units` (M1), so the loop ends before the array does.
    function _takeFromListing(uint256 listingId, address seller, uint256 units)
        private
        returns (uint64[] memory ids, uint256[] memory amounts)
    {
        LotAmount[] storage lots = _listingLots[listingId];
        uint256 n = lots.length;
        ids = new uint64[](n);
        amounts = new uint256[](n);
        uint256 k;
        uint256 need = units;
        while (need != 0) {
            LotAmount memory last = lots[n - 1];
            uint256 take = need < last.units ? need : last.units;
            ids[k] = last.certificateId;
            amounts[k] = take;
            ++k;
            _committed[seller][last.certificateId] -= take;
            // take <= need and take <= last.units by construction.
            unchecked {
                need -= take;
                if (take == last.units) {
                    lots.pop();
                    --n;
                } else {
                    lots[n - 1].units = uint192(last.units - take);
                }
            }
        }
        _trim(ids, amounts, k);
    }

    /// @dev Moves `amounts` of certificates `ids` (distinct) from `escrow` to `to`. The lot indexes
    /// are computed here from the escrow's stack as it is now, scanning from the top down, so the
    /// picks are strictly descending as `transferLots` requires; any lot of a certificate carries
    /// the same provenance. A revoked certificate surfaces as MarketCertificateRevoked.
    function _deliver(uint256 listingId, address escrow, address to, uint64[] memory ids, uint256[] memory amounts)
        private
    {
        IZeroCarbonValue.Lot[] memory held = ZCV.lotsOf(escrow);
        uint256[] memory need = new uint256[](ids.length);
        uint256 outstanding;
        for (uint256 j = 0; j < ids.length; ++j) {
            need[j] = amounts[j];
            outstanding += amounts[j];
        }
        IZeroCarbonValue.LotPick[] memory picks = new IZeroCarbonValue.LotPick[](held.length);
        uint256 p;
        for (uint256 i = held.length; i != 0 && outstanding != 0;) {
            // i != 0 is the loop condition.
            unchecked {
                --i;
            }
            IZeroCarbonValue.Lot memory lot = held[i];
            for (uint256 j = 0; j < ids.length; ++j) {
                if (ids[j] != lot.certificateId || need[j] == 0) continue;
                uint256 take = need[j] < lot.units ? need[j] : lot.units;
                picks[p++] = IZeroCarbonValue.LotPick(i, lot.certificateId, take);
                // take <= need[j] <= outstanding.
                unchecked {
                    need[j] -= take;
                    outstanding -= take;
                }
                break;
            }
        }
        if (outstanding != 0) {
            for (uint256 j = 0; j < ids.length; ++j) {
                if (need[j] != 0) revert MarketEscrowShortfall(ids[j], need[j]);
            }
        }
        // Trim the picks buffer to the picks made (p <= held.length).
        assembly ("memory-safe") {
            mstore(picks, p)
        }
        try ZcvEscrow(escrow).moveLots(to, picks) {}
        catch (bytes memory reason) {
            if (reason.length == 36 && bytes4(reason) == IZeroCarbonValue.ZcvCertificateRevoked.selector) {
                uint256 certificateId;
                assembly ("memory-safe") {
                    certificateId := mload(add(reason, 36))
                }
                revert MarketCertificateRevoked(listingId, certificateId);
            }
            assembly ("memory-safe") {
                revert(add(reason, 32), mload(reason))
            }
        }
    }

    function _heldUnits(IZeroCarbonValue.Lot[] memory held, uint64 certificateId) private pure returns (uint256 units) {
        for (uint256 i = 0; i < held.length; ++i) {
            if (held[i].certificateId == certificateId) units += held[i].units;
        }
    }

    /// @dev Shortens both arrays to `length` (<= their allocated length) in place.
    function _trim(uint64[] memory ids, uint256[] memory amounts, uint256 length) private pure {
        assembly ("memory-safe") {
            mstore(ids, length)
            mstore(amounts, length)
        }
    }
}
