//! Paying creators (SPEC §11.4): the statement arithmetic with Korean
//! withholding, and the tax policy it follows (versioned and
//! effective-dated, like the rate card). The monthly close that issues
//! statements builds on these (issue 18).

mod amounts;
mod policy;

pub use amounts::{CarriedReason, StatementAmounts, StatementInputs, TaxPolicy, statement_amounts};
pub use policy::TaxPolicies;
