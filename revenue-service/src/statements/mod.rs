//! Paying creators (SPEC §11.4): the statement arithmetic with Korean
//! withholding, the tax policy it follows (versioned and effective-dated,
//! like the rate card), the monthly close that issues statements, and what
//! admins record afterwards (the bank transfer, holds).

mod amounts;
mod close;
mod payments;
mod policy;

pub use amounts::{CarriedReason, StatementAmounts, StatementInputs, TaxPolicy, statement_amounts};
pub use close::{
    CloseError, Closed, close_month, find as find_close, month_text, parse_month,
    statement_violations,
};
pub use payments::{PaidError, mark_paid, release_hold, set_hold};
pub use policy::TaxPolicies;

/// A statement as webhook data (SPEC §11.4's fields, whole won).
pub fn statement_json(s: &crate::entity::statement::Model) -> serde_json::Value {
    serde_json::json!({
        "statement_id": s.statement_id,
        "creator_id": s.creator_id,
        "month": month_text(s.month),
        "opening_balance": s.opening_balance,
        "earnings": s.earnings,
        "restatements": s.restatements,
        "adjustments": s.adjustments,
        "gross": s.gross,
        "payout": s.payout,
        "income_tax": s.income_tax,
        "local_tax": s.local_tax,
        "net": s.net,
        "closing_balance": s.closing_balance,
        "carried_reason": s.carried_reason,
        "status": s.status,
        "issued_at": s.issued_at,
        "paid_at": s.paid_at,
        "payout_reference": s.payout_reference,
        "currency": "KRW",
    })
}
