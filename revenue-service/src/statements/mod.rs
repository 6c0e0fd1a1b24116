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
