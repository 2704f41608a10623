// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IZeroCarbonValue} from "./interfaces/IZeroCarbonValue.sol";
import {IGenerationRegistry} from "./interfaces/IGenerationRegistry.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";
import {IZcvMarket} from "./interfaces/IZcvMarket.sol";

/// @title ZcvMarket
/// @notice Members sell ZCV, certificates included, for an ERC-20 payment token (JPYT on the
/// devnet); the operator posts monthly statements that members pay in the payment token or in ZCV.
/// @dev Custody and provenance: see IZcvMarket. The market holds the ZCV of every open listing and
/// every deposit at its own address and keeps the books here; ZCV moves only by certificate id
/// (`transferLotsFrom` in, `transferLots` out), so no call ever reads a lot stack or anything else
/// a stranger can grow. Cost model, per call: list O(certificates listed), buy O(listing entries
/// taken), cancel O(listing entries, <= MAX_LISTING_CERTIFICATES), deposit/withdraw/recoverLots
/// O(certificates named); independent of how many lots anyone holds or sends.
/// Invariants kept here:
///  (M1) for every listing: remaining == sum of listingLots(listing).units; an Open listing has
///       remaining > 0 and at most MAX_LISTING_CERTIFICATES entries; a closed listing holds nothing.
///  (M2) for every certificate: custody == sum of its units over open listings' entries and all
///       deposits, and zcv.lotBalance(market, id) >= custody (units leave the market only through
///       this contract, which lowers the books first; recoverLots sends only the surplus).
///  (M3) the market never holds payment tokens: buyers pay sellers and the fee recipient directly,
///       statement payers pay the treasury directly.
/// Trust: DEFAULT_ADMIN_ROLE sets the fee for new listings (capped at MAX_FEE_BPS, snapshotted per
/// listing), the fee recipient and the treasury, and recovers what nobody's books account for;
/// OPERATOR_ROLE posts and voids statements, sets the ZCV conversion rate and confirms ZCV
/// payments from the token's Paid events. Neither role can move listed or deposited units or
/// change a listing's price or contents.
contract ZcvMarket is AccessControl, ReentrancyGuardTransient, IZcvMarket {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    uint8 public constant ANY_METHOD = type(uint8).max;
    uint16 public constant MAX_FEE_BPS = 1000;
    /// @notice The most certificates a listing (or a deposit, withdrawal or recovery) may name:
    /// bounds the gas of a full buy or a cancel, whatever the listing's history.
    uint256 public constant MAX_LISTING_CERTIFICATES = 32;
    uint256 private constant BPS = 10_000;

    IZeroCarbonValue private immutable ZCV;
    IERC20 private immutable PAYMENT_TOKEN;

    uint16 private _feeBps;
    address private _feeRecipient;
    address private _treasury;
    uint256 private _settlementRate;
    uint256 private _listingCount;
    mapping(uint256 listingId => Listing) private _listings;
    mapping(uint256 listingId => LotAmount[]) private _listingLots;
    mapping(address seller => mapping(uint64 certificateId => uint256)) private _deposits;
    mapping(uint64 certificateId => uint256) private _custody;
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
        _checkCount(lots.length);
        if (unitPrice == 0) revert MarketZeroPrice();
        if (expiry <= block.timestamp) revert MarketBadExpiry(expiry, block.timestamp);
        bool restricted = periodStart != 0 || periodEnd != 0;
        if (restricted && periodEnd <= periodStart) revert MarketBadPeriod(periodStart, periodEnd);
        restricted = restricted || method != ANY_METHOD;
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
        (uint256 total, uint64[] memory ids, uint256[] memory amounts) = _fillListing(listingId, l, lots, restricted);
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
        // (M1) bounds this copy: at most MAX_LISTING_CERTIFICATES entries, whatever was sent where.
        LotAmount[] memory lots = _listingLots[listingId];
        delete _listingLots[listingId];
        uint256 n = lots.length;
        IZeroCarbonValue.LotPick[] memory picks = new IZeroCarbonValue.LotPick[](n);
        uint64[] memory frozenIds = new uint64[](n);
        uint256[] memory frozenAmounts = new uint256[](n);
        uint256 movable;
        uint256 frozen;
        uint256 frozenUnits;
        // Entries are stored highest id first (see _fillListing): walk them backwards, ascending.
        for (uint256 j = n; j != 0;) {
            // j != 0 is the loop condition.
            unchecked {
                --j;
            }
            uint64 id = lots[j].certificateId;
            uint192 units = lots[j].units;
            // Revoked units cannot move (DESIGN invariant 7): they stay at the market, credited to
            // the seller's deposit (custody unchanged), instead of blocking the return of the rest.
            if (ZCV.isFrozen(id)) {
                _deposits[seller][id] += units;
                frozenIds[frozen] = id;
                frozenAmounts[frozen] = units;
                frozenUnits += units;
                ++frozen;
                continue;
            }
            _custody[id] -= units;
            picks[movable] = IZeroCarbonValue.LotPick(id, units);
            returnedUnits += units;
            ++movable;
        }
        emit Cancelled(listingId, seller, msg.sender, returnedUnits, frozenUnits);
        if (frozen != 0) {
            _trimIds(frozenIds, frozen);
            _trimAmounts(frozenAmounts, frozen);
            emit Deposited(seller, frozenIds, frozenAmounts);
        }
        if (movable != 0) {
            _trimPicks(picks, movable);
            ZCV.transferLots(seller, picks);
        }
    }

    /// @inheritdoc IZcvMarket
    function deposit(LotAmount[] calldata lots) external nonReentrant {
        uint256 n = lots.length;
        _checkCount(n);
        IZeroCarbonValue.LotPick[] memory picks = new IZeroCarbonValue.LotPick[](n);
        (uint64[] memory ids, uint256[] memory amounts) = _amounts(lots);
        for (uint256 i = 0; i < n; ++i) {
            uint64 id = ids[i];
            _deposits[msg.sender][id] += amounts[i];
            _custody[id] += amounts[i];
            picks[i] = IZeroCarbonValue.LotPick(id, lots[i].units);
        }
        emit Deposited(msg.sender, ids, amounts);
        ZCV.transferLotsFrom(msg.sender, address(this), picks);
    }

    /// @inheritdoc IZcvMarket
    function withdraw(LotAmount[] calldata lots) external nonReentrant {
        uint256 n = lots.length;
        _checkCount(n);
        IZeroCarbonValue.LotPick[] memory picks = new IZeroCarbonValue.LotPick[](n);
        (uint64[] memory ids, uint256[] memory amounts) = _amounts(lots);
        for (uint256 i = 0; i < n; ++i) {
            uint64 id = ids[i];
            uint256 units = amounts[i];
            if (ZCV.isFrozen(id)) revert MarketCertificateRevoked(0, id);
            uint256 available = _deposits[msg.sender][id];
            if (units > available) revert MarketInsufficientDeposit(id, available, units);
            // units <= available was checked above; custody >= every deposit (M2).
            unchecked {
                _deposits[msg.sender][id] = available - units;
                _custody[id] -= units;
            }
            picks[i] = IZeroCarbonValue.LotPick(id, lots[i].units);
        }
        emit Withdrawn(msg.sender, ids, amounts);
        ZCV.transferLots(msg.sender, picks);
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

        // Effects: (M1) remaining and the listing's entries drop by `units` together.
        // units <= remaining was checked above.
        unchecked {
            remaining -= units;
        }
        l.remaining = uint128(remaining);
        if (remaining == 0) l.status = ListingStatus.Filled;
        (IZeroCarbonValue.LotPick[] memory picks, uint64[] memory ids, uint256[] memory amounts) =
            _takeFromListing(listingId, units);
        emit Bought(listingId, msg.sender, seller, units, unitPrice, cost, fee, remaining, ids, amounts);

        // Interactions: the certificates first, then the money, straight from the buyer to the fee
        // recipient and the seller (M3).
        ZCV.transferLots(msg.sender, picks);
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
        if (address(token) == address(ZCV)) revert MarketUseRecoverLots(address(token));
        if (to == address(0)) revert MarketZeroAddress();
        // (M3): the market never holds payment tokens (or any non-ZCV token) of users.
        emit TokensRecovered(address(token), to, amount);
        token.safeTransfer(to, amount);
    }

    /// @inheritdoc IZcvMarket
    function recoverLots(address to, LotAmount[] calldata lots)
        external
        nonReentrant
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (to == address(0)) revert MarketZeroAddress();
        uint256 n = lots.length;
        _checkCount(n);
        IZeroCarbonValue.LotPick[] memory picks = new IZeroCarbonValue.LotPick[](n);
        (uint64[] memory ids, uint256[] memory amounts) = _amounts(lots);
        for (uint256 i = 0; i < n; ++i) {
            uint64 id = ids[i];
            // (M2): only what the books do not account for; listed and deposited units never move.
            uint256 spare = _surplus(id);
            if (amounts[i] > spare) revert MarketNothingToRecover(id, spare, amounts[i]);
            if (ZCV.isFrozen(id)) revert MarketCertificateRevoked(0, id);
            picks[i] = IZeroCarbonValue.LotPick(id, lots[i].units);
        }
        emit LotsRecovered(to, ids, amounts);
        ZCV.transferLots(to, picks);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IZcvMarket
    function listing(uint256 listingId) external view returns (Listing memory) {
        Listing storage l = _listings[listingId];
        if (l.status == ListingStatus.None) revert MarketUnknownListing(listingId);
        return l;
    }

    /// @inheritdoc IZcvMarket
    function listingLots(uint256 listingId) external view returns (LotAmount[] memory lots) {
        LotAmount[] storage stored = _listingLots[listingId];
        uint256 n = stored.length;
        lots = new LotAmount[](n);
        // Stored highest id first; shown ascending, as listed.
        for (uint256 i = 0; i < n; ++i) {
            lots[i] = stored[n - 1 - i];
        }
    }

    /// @inheritdoc IZcvMarket
    function listingCount() external view returns (uint256) {
        return _listingCount;
    }

    /// @inheritdoc IZcvMarket
    function depositOf(address seller, uint64 certificateId) external view returns (uint256) {
        return _deposits[seller][certificateId];
    }

    /// @inheritdoc IZcvMarket
    function custody(uint64 certificateId) external view returns (uint256) {
        return _custody[certificateId];
    }

    /// @inheritdoc IZcvMarket
    function surplus(uint64 certificateId) external view returns (uint256) {
        return _surplus(certificateId);
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

    function _checkCount(uint256 n) private pure {
        if (n == 0) revert MarketZeroUnits();
        if (n > MAX_LISTING_CERTIFICATES) revert MarketTooManyCertificates(MAX_LISTING_CERTIFICATES);
    }

    /// @dev The ids and units of `lots`, checked: strictly ascending ids (each certificate once),
    /// no zero units.
    function _amounts(LotAmount[] calldata lots) private pure returns (uint64[] memory ids, uint256[] memory amounts) {
        uint256 n = lots.length;
        ids = new uint64[](n);
        amounts = new uint256[](n);
        uint64 previous;
        for (uint256 i = 0; i < n; ++i) {
            uint64 id = lots[i].certificateId;
            if (id <= previous) revert MarketLotsUnordered(id);
            previous = id;
            if (lots[i].units == 0) revert MarketZeroUnits();
            ids[i] = id;
            amounts[i] = lots[i].units;
        }
    }

    function _surplus(uint64 id) private view returns (uint256) {
        uint256 held = ZCV.lotBalance(address(this), id);
        uint256 booked = _custody[id];
        return held > booked ? held - booked : 0;
    }

    /// @dev Checks each listed certificate (order, not frozen, restriction) and books its units to
    /// the listing (M1, M2): from the seller's deposit first, the rest pulled from the seller's
    /// wallet in one `transferLotsFrom`, which reverts (ZcvLotTooSmall, ERC20InsufficientAllowance)
    /// when the wallet or the allowance is short.
    function _fillListing(uint256 listingId, Listing storage l, LotAmount[] calldata lots, bool restricted)
        private
        returns (uint256 total, uint64[] memory ids, uint256[] memory amounts)
    {
        (ids, amounts) = _amounts(lots);
        uint256 n = ids.length;
        address seller = msg.sender;
        LotAmount[] storage stored = _listingLots[listingId];
        IZeroCarbonValue.LotPick[] memory pulls = new IZeroCarbonValue.LotPick[](n);
        uint64[] memory usedIds = new uint64[](n);
        uint256[] memory usedAmounts = new uint256[](n);
        uint256 pulled;
        uint256 used;
        for (uint256 i = 0; i < n; ++i) {
            uint64 id = ids[i];
            uint256 units = amounts[i];
            if (ZCV.isFrozen(id)) revert MarketCertificateRevoked(listingId, id);
            if (restricted) _checkRestriction(l, id);
            uint256 fromDeposit = _deposits[seller][id];
            if (fromDeposit != 0) {
                if (fromDeposit > units) fromDeposit = units;
                // fromDeposit <= the deposit, just read.
                unchecked {
                    _deposits[seller][id] -= fromDeposit;
                }
                usedIds[used] = id;
                usedAmounts[used] = fromDeposit;
                ++used;
            }
            if (units > fromDeposit) {
                // units > fromDeposit was checked; the rest comes from the wallet.
                uint256 fromWallet;
                unchecked {
                    fromWallet = units - fromDeposit;
                }
                _custody[id] += fromWallet;
                pulls[pulled] = IZeroCarbonValue.LotPick(id, uint192(fromWallet));
                ++pulled;
            }
            total += units;
        }
        // Stored highest id first, so that fills pop from the end and take the lowest ids first,
        // in the strictly ascending order `transferLots` requires.
        for (uint256 i = n; i != 0;) {
            // i != 0 is the loop condition.
            unchecked {
                --i;
            }
            stored.push(lots[i]);
        }
        if (used != 0) {
            _trimIds(usedIds, used);
            _trimAmounts(usedAmounts, used);
            emit DepositUsed(listingId, seller, usedIds, usedAmounts);
        }
        if (pulled != 0) {
            _trimPicks(pulls, pulled);
            ZCV.transferLotsFrom(seller, address(this), pulls);
        }
    }

    /// @dev A certificate's generation method. Schema 2 (hourly) does not copy it into the
    /// certificate: it is the meter's, in the member registry behind the certificate's registry.
    function _methodOf(IZeroCarbonValue.Certificate memory cert) private view returns (uint8) {
        if (cert.schemaVersion < 2) return uint8(cert.method);
        IMemberRegistry members = IGenerationRegistry(cert.registry).memberRegistry();
        return uint8(members.meter(cert.meterId).spec.method);
    }

    /// @dev A listed certificate must meet the listing's method and period restriction.
    function _checkRestriction(Listing storage l, uint64 id) private view {
        IZeroCarbonValue.Certificate memory cert = ZCV.certificate(id);
        uint8 method = l.method;
        if (method != ANY_METHOD && _methodOf(cert) != method) revert MarketCertificateOutsideRestriction(id);
        uint64 periodStart = l.periodStart;
        uint64 periodEnd = l.periodEnd;
        if ((periodStart != 0 || periodEnd != 0) && (cert.periodStart < periodStart || cert.periodEnd > periodEnd)) {
            revert MarketCertificateOutsideRestriction(id);
        }
    }

    /// @dev Takes `units` from the listing's entries, from the end of the stored array (the lowest
    /// certificate id first, so the picks ascend), lowering custody (M1, M2).
    /// The listing holds at least `units` (M1), so the loop ends before the array does, and it
    /// visits only the entries it takes from. A frozen entry refuses the fill with a clear error.
    function _takeFromListing(uint256 listingId, uint256 units)
        private
        returns (IZeroCarbonValue.LotPick[] memory picks, uint64[] memory ids, uint256[] memory amounts)
    {
        LotAmount[] storage lots = _listingLots[listingId];
        uint256 n = lots.length;
        picks = new IZeroCarbonValue.LotPick[](n);
        ids = new uint64[](n);
        amounts = new uint256[](n);
        uint256 k;
        uint256 need = units;
        while (need != 0) {
            LotAmount memory last = lots[n - 1];
            uint64 id = last.certificateId;
            if (ZCV.isFrozen(id)) revert MarketCertificateRevoked(listingId, id);
            uint256 take = need < last.units ? need : last.units;
            picks[k] = IZeroCarbonValue.LotPick(id, uint192(take));
            ids[k] = id;
            amounts[k] = take;
            ++k;
            _custody[id] -= take;
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
        _trimPicks(picks, k);
        _trimIds(ids, k);
        _trimAmounts(amounts, k);
    }

    /// @dev Shortens memory arrays in place to their first `k` entries.
    function _trimPicks(IZeroCarbonValue.LotPick[] memory a, uint256 k) private pure {
        // Memory-safe: only lowers the length word of an array this contract allocated (k <= length).
        assembly ("memory-safe") {
            mstore(a, k)
        }
    }

    function _trimIds(uint64[] memory a, uint256 k) private pure {
        // Memory-safe: only lowers the length word of an array this contract allocated (k <= length).
        assembly ("memory-safe") {
            mstore(a, k)
        }
    }

    function _trimAmounts(uint256[] memory a, uint256 k) private pure {
        // Memory-safe: only lowers the length word of an array this contract allocated (k <= length).
        assembly ("memory-safe") {
            mstore(a, k)
        }
    }
}
