//! Paying creators (SPEC §11.4): the statement arithmetic with Korean
//! withholding and the tax policy it follows. The monthly close that issues
//! statements builds on these (issue 18).

mod amounts;

pub use amounts::{CarriedReason, StatementAmounts, StatementInputs, TaxPolicy, statement_amounts};
