// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IZeroCarbonValue} from "./IZeroCarbonValue.sol";

/// @title IZcvMarket
/// @notice A market where members sell ZCV with its certificates for an ERC-20 payment token, and
/// pay the operator's statements.
/// @dev Escrow model: every seller has one deposit address (`escrowOf(seller)`), a minimal clone
/// that only this market can command. The seller moves the exact certificate lots it wants to sell
/// there (`zcv.transferLots(escrowOf(seller), picks)`, or a plain transfer), then lists them by
/// certificate id. Whatever sits at a seller's deposit address is the seller's, so deposits are
/// attributed without a race, and listed units are committed: they leave the escrow only to the
/// buyer of that listing or back to the seller on cancel. A buyer receives exactly the listed
/// certificates (provenance), at the listed price, or the transaction reverts. Payments go
/// straight from the buyer to the seller and the fee recipient: the market never holds them.
interface IZcvMarket {
    /// @notice Units of one certificate (used for listing contents, deposits and fills).
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

    /// @notice A seller's deposit address was deployed.
    event EscrowCreated(address indexed seller, address escrow);
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
    /// @notice A listing closed before it was filled; `returnedUnits` went back to the seller,
    /// `frozenUnits` (revoked certificates) stay frozen at the seller's deposit address.
    event Cancelled(
        uint256 indexed listingId, address indexed seller, address by, uint256 returnedUnits, uint256 frozenUnits
    );
    /// @notice Unlisted units went from the seller's deposit address back to the seller.
    event Withdrawn(address indexed seller, uint64[] certificateIds, uint256[] certificateUnits);
    /// @notice The fee for new listings changed.
    event FeeUpdated(uint16 feeBps, address feeRecipient);
    /// @notice Tokens sent to the market's own address by mistake were recovered.
    event TokensRecovered(address indexed token, address indexed to, uint256 amount);
    /// @notice The operator's ZCV conversion rate for statements changed.
    event SettlementRateUpdated(uint256 paymentPerUnit);
    /// @notice The statement payee (the operator's treasury) changed.
    event TreasuryUpdated(address treasury);
    event StatementPosted(
        bytes32 indexed statementId, address indexed member, address payee, uint256 amountDue, uint256 unitsDue, uint64 dueAt
    );
    /// @notice A statement was settled: in the payment token (`amount` moved from `payer` to the
    /// payee) or in ZCV (`amount` units, confirmed by the operator from the token's Paid event).
    event StatementPaid(
        bytes32 indexed statementId, address indexed member, address payer, StatementStatus status, uint256 amount
    );
    event StatementVoided(bytes32 indexed statementId, string reason);

    error MarketZeroAddress();
    error MarketZeroUnits();
    error MarketZeroPrice();
    error MarketZeroAmount();
    error MarketBadExpiry(uint64 expiry, uint256 now_);
    error MarketBadPeriod(uint64 periodStart, uint64 periodEnd);
    error MarketTooManyLots(uint256 maxLots);
    error MarketLotsUnordered(uint64 certificateId);
    error MarketCertificateOutsideRestriction(uint64 certificateId);
    error MarketCertificateRevoked(uint256 listingId, uint256 certificateId);
    error MarketInsufficientDeposit(uint64 certificateId, uint256 available, uint256 requested);
    error MarketUnknownListing(uint256 listingId);
    error MarketListingNotOpen(uint256 listingId, ListingStatus status);
    error MarketListingExpired(uint256 listingId, uint64 expiry);
    error MarketDeadlinePassed(uint64 deadline, uint256 now_);
    error MarketPriceAboveMax(uint256 cost, uint256 maxTotalPrice);
    error MarketNotEnoughUnits(uint256 listingId, uint256 remaining, uint256 requested);
    error MarketNotSeller(uint256 listingId, address caller);
    error MarketSelfTrade(uint256 listingId);
    error MarketFeeTooHigh(uint16 feeBps, uint16 maxFeeBps);
    error MarketEscrowShortfall(uint64 certificateId, uint256 missing);
    error MarketNotEscrowToken(address token);
    error MarketStatementExists(bytes32 statementId);
    error MarketUnknownStatement(bytes32 statementId);
    error MarketStatementNotOpen(bytes32 statementId, StatementStatus status);
    error MarketZcvNotAccepted(bytes32 statementId);
    error MarketStatementAboveMax(uint256 amountDue, uint256 maxAmount);

    /// @notice Lists units already at the caller's deposit address.
    /// @param lots The certificates and units to sell, strictly ascending certificate ids.
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

    /// @notice Buys `units` of a listing at its price, in one transaction.
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

    /// @notice Closes a listing and returns its units to the seller. The seller may cancel any
    /// time; anyone may close an expired listing.
    /// @param listingId The listing.
    /// @return returnedUnits Units sent back to the seller.
    function cancel(uint256 listingId) external returns (uint256 returnedUnits);

    /// @notice Returns unlisted units from the caller's deposit address to the caller.
    /// @param lots Certificates and units, strictly ascending certificate ids.
    function withdraw(LotAmount[] calldata lots) external;

    /// @notice Returns a non-ZCV token sent to the caller's deposit address by mistake.
    /// @param token The token (not ZCV; use `withdraw` for ZCV).
    function withdrawOtherToken(IERC20 token) external;

    /// @notice Sets the fee for new listings. DEFAULT_ADMIN_ROLE only.
    /// @param feeBps Basis points of the price, at most MAX_FEE_BPS.
    /// @param feeRecipient Receives fees; must be set when feeBps > 0.
    function setFee(uint16 feeBps, address feeRecipient) external;

    /// @notice Recovers tokens sent to the market's own address (it never holds user funds there).
    /// DEFAULT_ADMIN_ROLE only.
    function recoverTokens(IERC20 token, address to, uint256 amount) external;

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

    /// @notice The certificates (and units) a listing still holds.
    /// @return The lots.
    function listingLots(uint256 listingId) external view returns (LotAmount[] memory);

    /// @notice Number of listings made.
    /// @return The count (also the last id).
    function listingCount() external view returns (uint256);

    /// @notice A seller's deposit (escrow) address; deterministic, deployed on first use.
    /// @return The address.
    function escrowOf(address seller) external view returns (address);

    /// @notice Units of a certificate at a seller's deposit address committed to open listings.
    /// @return Units.
    function committed(address seller, uint64 certificateId) external view returns (uint256);

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
