// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IZeroCarbonValue} from "./IZeroCarbonValue.sol";

/// @title IZcvMarket
/// @notice A market where members sell ZCV with its certificates for an ERC-20 payment token, and
/// pay the operator's statements.
/// @dev Custody model (v2): the market contract itself holds the ZCV it sells and keeps its own
/// books per listing and per (seller, certificate). Units enter only through `list` and `deposit`,
/// which pull the named certificates from the seller's wallet with
/// `zcv.transferLotsFrom(seller, market, picks)` (the seller approves the market first), and leave
/// only with `zcv.transferLots(to, picks)` by certificate id: to the buyer of a listing, back to
/// the seller (cancel, withdraw), or, for units nobody's books account for, to whom the admin
/// names (`recoverLots`). No entry point reads anything whose size a stranger controls: every
/// call touches the caller's picks, the listing's own entries (at most MAX_LISTING_CERTIFICATES)
/// and O(1) slots per certificate, so dust sent to the market, to a seller or to a buyer changes
/// nothing (DESIGN invariant 8). A buyer receives exactly the listed certificates (provenance), at
/// the listed price, or the transaction reverts. Payments go straight from the buyer to the
/// seller and the fee recipient: the market never holds them.
interface IZcvMarket {
    /// @notice Units of one certificate (listing contents, deposits, withdrawals and fills).
    struct LotAmount {
        uint64 certificateId;
        uint192 units;
    }

    enum ListingStatus {
        None,
        Open,
        Filled,
        Cancelled
    }

    /// @notice A sell order. `unitPrice` is in payment-token base units per ZCV unit (1 Wh).
    /// `method` is the only generation method allowed (ANY_METHOD: any); `periodStart`/`periodEnd`
    /// bound every certificate's generation period (both 0: any period). `feeBps` is the operator
    /// fee in force when the listing was made: later fee changes do not touch open listings.
    struct Listing {
        address seller;
        uint64 expiry;
        uint16 feeBps;
        uint8 method;
        ListingStatus status;
        uint64 periodStart;
        uint64 periodEnd;
        uint128 units;
        uint128 unitPrice;
        uint128 remaining;
    }

    enum StatementStatus {
        None,
        Open,
        PaidInToken,
        PaidInZcv,
        Voided
    }

    /// @notice An operator's statement (monthly bill) for one member. `amountDue` is in payment-token
    /// base units; `unitsDue` is the ZCV alternative at the operator's conversion rate when the
    /// statement was posted (0: ZCV not accepted).
    struct Statement {
        address member;
        address payee;
        uint64 dueAt;
        StatementStatus status;
        uint256 amountDue;
        uint256 unitsDue;
    }

    /// @notice Units were credited to the seller's deposit at the market: pulled from its wallet by
    /// `deposit`, or units of a revoked (frozen) certificate kept back by `cancel`.
    event Deposited(address indexed seller, uint64[] certificateIds, uint256[] certificateUnits);
    /// @notice A new listing took these units from the seller's deposit (the rest of the listing,
    /// if any, came from the seller's wallet). Emitted only when the deposit contributed.
    event DepositUsed(
        uint256 indexed listingId, address indexed seller, uint64[] certificateIds, uint256[] certificateUnits
    );
    /// @notice A listing opened with these certificates.
    event Listed(
        uint256 indexed listingId,
        address indexed seller,
        uint256 unitPrice,
        uint256 units,
        uint64 expiry,
        uint16 feeBps,
        uint8 method,
        uint64 periodStart,
        uint64 periodEnd,
        uint64[] certificateIds,
        uint256[] certificateUnits
    );
    /// @notice A buyer bought `units` of a listing; these certificates moved to the buyer.
    event Bought(
        uint256 indexed listingId,
        address indexed buyer,
        address indexed seller,
        uint256 units,
        uint256 unitPrice,
        uint256 cost,
        uint256 fee,
        uint256 remaining,
        uint64[] certificateIds,
        uint256[] certificateUnits
    );
    /// @notice The seller changed a listing's price.
    event PriceUpdated(uint256 indexed listingId, uint256 oldUnitPrice, uint256 newUnitPrice);
    /// @notice A listing closed before it was filled; `returnedUnits` went back to the seller's
    /// wallet, `frozenUnits` (revoked certificates, which cannot move) were credited to the
    /// seller's deposit at the market (a `Deposited` event names them).
    event Cancelled(
        uint256 indexed listingId, address indexed seller, address by, uint256 returnedUnits, uint256 frozenUnits
    );
    /// @notice Units went from the seller's deposit at the market back to the seller's wallet.
    event Withdrawn(address indexed seller, uint64[] certificateIds, uint256[] certificateUnits);
    /// @notice The fee for new listings changed.
    event FeeUpdated(uint16 feeBps, address feeRecipient);
    /// @notice A non-ZCV token sent to the market by mistake was recovered.
    event TokensRecovered(address indexed token, address indexed to, uint256 amount);
    /// @notice ZCV units at the market that no listing or deposit accounts for were recovered.
    event LotsRecovered(address indexed to, uint64[] certificateIds, uint256[] certificateUnits);
    /// @notice The operator's ZCV conversion rate for statements changed.
    event SettlementRateUpdated(uint256 paymentPerUnit);
    /// @notice The statement payee (the operator's treasury) changed.
    event TreasuryUpdated(address treasury);
    /// @notice The operator posted a statement (monthly bill) for a member.
    event StatementPosted(
        bytes32 indexed statementId, address indexed member, address payee, uint256 amountDue, uint256 unitsDue, uint64 dueAt
    );
    /// @notice A statement was settled: in the payment token (`amount` moved from `payer` to the
    /// payee) or in ZCV (`amount` units, confirmed by the operator from the token's Paid event).
    event StatementPaid(
        bytes32 indexed statementId, address indexed member, address payer, StatementStatus status, uint256 amount
    );
    /// @notice The operator voided an open statement posted in error.
    event StatementVoided(bytes32 indexed statementId, string reason);

    /// @notice Thrown when an address that must be set (token, fee recipient, treasury, member,
    /// recovery recipient) is the zero address.
    error MarketZeroAddress();
    /// @notice Thrown when a listing, deposit, withdrawal or fill names no units, or zero units of a
    /// certificate.
    error MarketZeroUnits();
    /// @notice Thrown when a listing's unit price is zero.
    error MarketZeroPrice();
    /// @notice Thrown when a statement or recovery amount is zero, or nothing is left to recover.
    error MarketZeroAmount();
    /// @notice Thrown when a new listing's expiry is not in the future.
    error MarketBadExpiry(uint64 expiry, uint256 now_);
    /// @notice Thrown when a restriction period does not end after it starts.
    error MarketBadPeriod(uint64 periodStart, uint64 periodEnd);
    /// @notice Thrown when a call names more than `maxCertificates` certificates.
    error MarketTooManyCertificates(uint256 maxCertificates);
    /// @notice Thrown when certificate ids are not strictly ascending (each at most once).
    error MarketLotsUnordered(uint64 certificateId);
    /// @notice Thrown when a listed certificate does not meet the listing's method or period.
    error MarketCertificateOutsideRestriction(uint64 certificateId);
    /// @notice Thrown when units of a revoked (frozen) certificate would be listed, bought,
    /// withdrawn or recovered (`listingId` 0: not about a listing).
    error MarketCertificateRevoked(uint256 listingId, uint256 certificateId);
    /// @notice Thrown when a seller's deposit holds fewer units of a certificate than asked.
    error MarketInsufficientDeposit(uint64 certificateId, uint256 available, uint256 requested);
    /// @notice Thrown when the admin asks to recover more units of a certificate than the market
    /// holds beyond what its books account for.
    error MarketNothingToRecover(uint64 certificateId, uint256 surplus, uint256 requested);
    /// @notice Thrown when no listing has this id.
    error MarketUnknownListing(uint256 listingId);
    /// @notice Thrown when a listing is filled or cancelled.
    error MarketListingNotOpen(uint256 listingId, ListingStatus status);
    /// @notice Thrown when a listing is bought at or after its expiry.
    error MarketListingExpired(uint256 listingId, uint64 expiry);
    /// @notice Thrown when a buy is mined after the buyer's deadline.
    error MarketDeadlinePassed(uint64 deadline, uint256 now_);
    /// @notice Thrown when a fill would cost more than the buyer's cap.
    error MarketPriceAboveMax(uint256 cost, uint256 maxTotalPrice);
    /// @notice Thrown when a buy asks for more units than the listing has left.
    error MarketNotEnoughUnits(uint256 listingId, uint256 remaining, uint256 requested);
    /// @notice Thrown when someone other than the seller reprices, or cancels before expiry.
    error MarketNotSeller(uint256 listingId, address caller);
    /// @notice Thrown when a seller buys its own listing.
    error MarketSelfTrade(uint256 listingId);
    /// @notice Thrown when a fee above MAX_FEE_BPS is set.
    error MarketFeeTooHigh(uint16 feeBps, uint16 maxFeeBps);
    /// @notice Thrown when `recoverTokens` is asked for ZCV (use `recoverLots`, which never
    /// touches units the books account for).
    error MarketUseRecoverLots(address token);
    /// @notice Thrown when a statement id is posted twice.
    error MarketStatementExists(bytes32 statementId);
    /// @notice Thrown when no statement has this id.
    error MarketUnknownStatement(bytes32 statementId);
    /// @notice Thrown when a statement is paid, confirmed or voided after it was closed.
    error MarketStatementNotOpen(bytes32 statementId, StatementStatus status);
    /// @notice Thrown when a statement posted without a ZCV rate is confirmed as paid in ZCV.
    error MarketZcvNotAccepted(bytes32 statementId);
    /// @notice Thrown when a statement costs more than the payer's cap.
    error MarketStatementAboveMax(uint256 amountDue, uint256 maxAmount);

    /// @notice Lists units for sale. For each certificate, units come from the caller's deposit at
    /// the market first; the rest is pulled from the caller's wallet with
    /// `zcv.transferLotsFrom(caller, market, ...)`, which spends the caller's ZCV allowance to the
    /// market. The listing then holds its own units until they are bought or cancelled.
    /// @param lots The certificates and units to sell: 1..MAX_LISTING_CERTIFICATES entries,
    /// strictly ascending certificate ids.
    /// @param unitPrice Payment-token base units per ZCV unit.
    /// @param expiry The listing cannot be bought at or after this time.
    /// @param method ANY_METHOD, or the generation method every certificate must have.
    /// @param periodStart With periodEnd: bounds of every certificate's generation period (0, 0: any).
    /// @param periodEnd See periodStart.
    /// @return listingId The new listing (ids start at 1).
    function list(
        LotAmount[] calldata lots,
        uint256 unitPrice,
        uint64 expiry,
        uint8 method,
        uint64 periodStart,
        uint64 periodEnd
    ) external returns (uint256 listingId);

    /// @notice Buys `units` of a listing at its price, in one transaction. Takes the listing's
    /// certificates lowest id first; visits only the entries it takes from.
    /// @param listingId The listing.
    /// @param units ZCV units to buy (a partial fill is fine).
    /// @param maxTotalPrice The most the buyer pays; protects against price changes after the quote.
    /// @param deadline The transaction reverts when mined after this time.
    /// @return cost What the buyer paid (fee included).
    function buy(uint256 listingId, uint256 units, uint256 maxTotalPrice, uint64 deadline)
        external
        returns (uint256 cost);

    /// @notice Changes the price of an open listing. Seller only.
    /// @param listingId The listing.
    /// @param unitPrice The new price per unit.
    function updatePrice(uint256 listingId, uint256 unitPrice) external;

    /// @notice Closes a listing and returns its units to the seller's wallet; units of a revoked
    /// certificate cannot move and are credited to the seller's deposit instead. The seller may
    /// cancel any time; anyone may close an expired listing.
    /// @param listingId The listing.
    /// @return returnedUnits Units sent back to the seller's wallet.
    function cancel(uint256 listingId) external returns (uint256 returnedUnits);

    /// @notice Moves the named certificates from the caller's wallet to its deposit at the market
    /// (`zcv.transferLotsFrom`, spending the caller's ZCV allowance to the market). Optional:
    /// `list` pulls from the wallet itself.
    /// @param lots Certificates and units, strictly ascending certificate ids.
    function deposit(LotAmount[] calldata lots) external;

    /// @notice Returns units from the caller's deposit at the market to its wallet, at any time.
    /// @param lots Certificates and units, strictly ascending certificate ids.
    function withdraw(LotAmount[] calldata lots) external;

    /// @notice Sets the fee for new listings. DEFAULT_ADMIN_ROLE only.
    /// @param feeBps Basis points of the price, at most MAX_FEE_BPS.
    /// @param feeRecipient Receives fees; must be set when feeBps > 0.
    function setFee(uint16 feeBps, address feeRecipient) external;

    /// @notice Recovers a non-ZCV token sent to the market by mistake (the market never holds
    /// payment tokens). DEFAULT_ADMIN_ROLE only.
    /// @param token The token (not ZCV).
    /// @param to Recipient.
    /// @param amount Amount.
    function recoverTokens(IERC20 token, address to, uint256 amount) external;

    /// @notice Sends ZCV units the market holds beyond what its books account for (sent to the
    /// market by plain transfer) to `to`. Never touches listed or deposited units.
    /// DEFAULT_ADMIN_ROLE only.
    /// @param to Recipient.
    /// @param lots Certificates and units, strictly ascending certificate ids, each at most
    /// `surplus(certificateId)`.
    function recoverLots(address to, LotAmount[] calldata lots) external;

    /// @notice Sets the statement payee. DEFAULT_ADMIN_ROLE only.
    function setTreasury(address treasury) external;

    /// @notice Sets the operator's ZCV conversion rate for new statements (0: ZCV not accepted).
    /// OPERATOR_ROLE only.
    /// @param paymentPerUnit Payment-token base units one ZCV unit settles.
    function setSettlementRate(uint256 paymentPerUnit) external;

    /// @notice Posts a statement. OPERATOR_ROLE only.
    /// @param statementId The statement id (the reference members pay with).
    /// @param member Who owes it.
    /// @param amountDue Payment-token base units due.
    /// @param dueAt Due date (informational).
    function postStatement(bytes32 statementId, address member, uint256 amountDue, uint64 dueAt) external;

    /// @notice Pays an open statement in the payment token (anyone may pay; usually the member).
    /// @param statementId The statement.
    /// @param maxAmount The most the payer pays.
    function payStatement(bytes32 statementId, uint256 maxAmount) external;

    /// @notice Marks a statement paid in ZCV after the member called
    /// `zcv.pay(payee, unitsDue, statementId)` (which counts the units as used coins). OPERATOR_ROLE.
    /// @param statementId The statement.
    function confirmZcvPayment(bytes32 statementId) external;

    /// @notice Voids an open statement posted in error. OPERATOR_ROLE only.
    function voidStatement(bytes32 statementId, string calldata reason) external;

    /// @notice A listing.
    /// @return The listing.
    function listing(uint256 listingId) external view returns (Listing memory);

    /// @notice The certificates (and units) a listing still holds, ascending id (the next fill
    /// takes the first).
    /// @return lots The entries.
    function listingLots(uint256 listingId) external view returns (LotAmount[] memory);

    /// @notice Number of listings made.
    /// @return The count (also the last id).
    function listingCount() external view returns (uint256);

    /// @notice Units of a certificate in a seller's deposit at the market (withdrawable, listable).
    /// @return Units.
    function depositOf(address seller, uint64 certificateId) external view returns (uint256);

    /// @notice Units of a certificate the market's books account for: every open listing's entry
    /// plus every deposit. The market holds at least this many (`zcv.lotBalance(market, id)`).
    /// @return Units.
    function custody(uint64 certificateId) external view returns (uint256);

    /// @notice Units of a certificate the market holds beyond its books (sent by plain transfer),
    /// which `recoverLots` may send on.
    /// @return Units.
    function surplus(uint64 certificateId) external view returns (uint256);

    /// @notice What buying `units` of a listing costs now, and the fee within it.
    /// @return cost Total the buyer pays.
    /// @return fee Part of cost that goes to the fee recipient.
    function quote(uint256 listingId, uint256 units) external view returns (uint256 cost, uint256 fee);

    /// @notice A statement.
    /// @return The statement.
    function statement(bytes32 statementId) external view returns (Statement memory);

    /// @notice The ZCV token.
    function zcv() external view returns (IZeroCarbonValue);

    /// @notice The payment token.
    function paymentToken() external view returns (IERC20);

    /// @notice Fee for new listings (basis points).
    function feeBps() external view returns (uint16);

    /// @notice Fee recipient.
    function feeRecipient() external view returns (address);

    /// @notice Statement payee.
    function treasury() external view returns (address);

    /// @notice Payment-token base units one ZCV unit settles (0: ZCV not accepted).
    function settlementRate() external view returns (uint256);
}
