//! The monthly close of the simulated day's month (SPEC §11.4), checked
//! against the simulator's own reading of the statement rules: every other
//! day of the month is settled, the month is closed through the gateway,
//! and every creator's statement and the withholding totals are compared
//! with what the simulator computes from the day's checked earnings and
//! its own pricing of the imported history. Shares no code with the
//! services.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Uploaded, admin,
    client::Gateway,
    rules::{ad_amount, video_amount},
};

/// The minimum payout, won (SPEC §11.4).
const MINIMUM_PAYOUT: i64 = 10_000;
/// Income tax under this many won is not withheld (SPEC §11.4).
const SMALL_AMOUNT: i64 = 1_000;

/// A statement as SPEC §11.4 says it must be, for a creator with no
/// opening balance and no hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Won.
    pub gross: i64,
    /// Won.
    pub payout: i64,
    /// Won.
    pub income_tax: i64,
    /// Won.
    pub local_tax: i64,
    /// Won.
    pub net: i64,
    /// Won.
    pub closing_balance: i64,
    /// `below_minimum`, `negative_balance`, or none when paid.
    pub carried_reason: Option<&'static str>,
}

/// SPEC §11.4 in integers: paid when `gross` ≥ 10,000 won; income tax 3 %
/// truncated to 10 won, 0 under 1,000; local tax 10 % of it truncated to
/// 10 won.
pub fn expected(gross: i64) -> Expected {
    if gross < MINIMUM_PAYOUT {
        return Expected {
            gross,
            payout: 0,
            income_tax: 0,
            local_tax: 0,
            net: 0,
            closing_balance: gross,
            carried_reason: Some(if gross < 0 {
                "negative_balance"
            } else {
                "below_minimum"
            }),
        };
    }
    let mut income_tax = gross * 3 / 100 / 10 * 10;
    if income_tax < SMALL_AMOUNT {
        income_tax = 0;
    }
    let local_tax = income_tax / 10 / 10 * 10;
    Expected {
        gross,
        payout: gross,
        income_tax,
        local_tax,
        net: gross - income_tax - local_tax,
        closing_balance: 0,
        carried_reason: None,
    }
}

/// A statement as the gateway answers it.
#[derive(Debug, Deserialize)]
struct Statement {
    creator_id: i64,
    opening_balance: i64,
    earnings: i64,
    restatements: i64,
    adjustments: i64,
    gross: i64,
    payout: i64,
    income_tax: i64,
    local_tax: i64,
    net: i64,
    closing_balance: i64,
    carried_reason: Option<String>,
}

/// A page of statements.
#[derive(Deserialize)]
struct Page {
    items: Vec<Statement>,
    next_cursor: Option<String>,
}

/// The withholding report's totals.
#[derive(Debug, Deserialize, PartialEq, Eq)]
struct Totals {
    payout: i64,
    income_tax: i64,
    local_tax: i64,
    net: i64,
}

/// What the close found.
#[derive(Debug, Default)]
pub struct ClosedMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// Statements issued.
    pub statements: usize,
    /// Of which paid.
    pub paid: usize,
    /// Income tax withheld, won.
    pub income_tax: i64,
    /// Local income tax withheld, won.
    pub local_tax: i64,
}

/// Settles every other day of `day`'s month, closes it, and checks every
/// statement and the withholding totals; differences go to `differences`.
///
/// # Errors
/// Requests that fail, a run that does not succeed, a close refused.
pub(crate) async fn close_and_check(
    gateway: &Gateway,
    admin: &str,
    day: NaiveDate,
    videos: &[Uploaded],
    before: &HashMap<i64, (i64, i64)>,
    settling: admin::Settling,
    differences: &mut Vec<String>,
) -> anyhow::Result<ClosedMonth> {
    let first = NaiveDate::from_ymd_opt(day.year(), day.month(), 1).context("month")?;
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .context("month")?;
    let month = first.format("%Y-%m").to_string();
    let mut d = first;
    while d < next {
        if d != day {
            admin::settle(gateway, admin, d, settling).await?;
        }
        d = d.succ_opt().context("day")?;
    }
    let close: Value = gateway
        .call(
            reqwest::Method::POST,
            "/api/v1/admin/closes",
            Some(admin),
            None,
            Some(&json!({ "month": month })),
        )
        .await
        .with_context(|| format!("closing {month}"))?;
    tracing::info!(%close, "month closed");

    // Each creator's month: the day's checked earnings, and the history
    // imported for the day before when it is in the same month.
    let mut earnings: BTreeMap<i64, i64> = BTreeMap::new();
    let creators: std::collections::BTreeSet<i64> = videos.iter().map(|v| v.creator_user).collect();
    for creator in creators {
        let revenue: Value = gateway
            .get(
                &format!("/api/v1/revenues?period=day&date={day}&creator_id={creator}"),
                Some(admin),
            )
            .await?;
        *earnings.entry(creator).or_default() += revenue["total_amount"].as_i64().unwrap_or(0);
    }
    if day.pred_opt().is_some_and(|p| p >= first) {
        for v in videos {
            if let Some(&(views, ads)) = before.get(&v.id) {
                *earnings.entry(v.creator_user).or_default() +=
                    video_amount(0, views) + ad_amount(0, ads);
            }
        }
    }
    earnings.retain(|_, e| *e != 0);

    let mut statements = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Page = serde_json::from_value(
            gateway
                .get(
                    &format!("/api/v1/statements?month={month}&limit=100&cursor={cursor}"),
                    Some(admin),
                )
                .await?,
        )
        .context("the statements answer")?;
        statements.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = next,
            None => break,
        }
    }
    let mut closed = ClosedMonth {
        month: month.clone(),
        statements: statements.len(),
        ..ClosedMonth::default()
    };
    let mut totals = Totals {
        payout: 0,
        income_tax: 0,
        local_tax: 0,
        net: 0,
    };
    for (&creator, &gross) in &earnings {
        let want = expected(gross);
        if want.payout > 0 {
            closed.paid += 1;
            totals.payout += want.payout;
            totals.income_tax += want.income_tax;
            totals.local_tax += want.local_tax;
            totals.net += want.net;
        }
        let mine: Vec<&Statement> = statements
            .iter()
            .filter(|s| s.creator_id == creator)
            .collect();
        let [s] = mine.as_slice() else {
            differences.push(format!(
                "creator {creator}: {} statements of {month}, expected 1",
                mine.len()
            ));
            continue;
        };
        let got = Expected {
            gross: s.gross,
            payout: s.payout,
            income_tax: s.income_tax,
            local_tax: s.local_tax,
            net: s.net,
            closing_balance: s.closing_balance,
            carried_reason: match s.carried_reason.as_deref() {
                None => None,
                Some("below_minimum") => Some("below_minimum"),
                Some("negative_balance") => Some("negative_balance"),
                Some(_) => Some("other"),
            },
        };
        if got != want
            || s.opening_balance != 0
            || s.earnings != gross
            || s.restatements != 0
            || s.adjustments != 0
        {
            differences.push(format!(
                "creator {creator}: statement {s:?}, expected {want:?}"
            ));
        }
    }
    if statements.len() != earnings.len() {
        differences.push(format!(
            "{} statements of {month}, expected {} (one per creator who earned)",
            statements.len(),
            earnings.len()
        ));
    }
    let report: Value = gateway
        .get(
            &format!("/api/v1/admin/withholding?month={month}"),
            Some(admin),
        )
        .await?;
    let reported: Totals =
        serde_json::from_value(report["totals"].clone()).context("the withholding totals")?;
    if reported != totals {
        differences.push(format!(
            "withholding of {month}: {reported:?}, expected {totals:?}"
        ));
    }
    let items = report["items"].as_array().map_or(0, Vec::len);
    if items != closed.paid {
        differences.push(format!(
            "withholding of {month} lists {items} creators, expected {}",
            closed.paid
        ));
    }
    closed.income_tax = totals.income_tax;
    closed.local_tax = totals.local_tax;
    Ok(closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_rules_at_their_edges() {
        let paid = |g| {
            let e = expected(g);
            (e.payout, e.income_tax, e.local_tax, e.net, e.carried_reason)
        };
        assert_eq!(paid(33_334), (33_334, 1_000, 100, 32_234, None));
        assert_eq!(paid(33_333), (33_333, 0, 0, 33_333, None));
        assert_eq!(paid(10_000), (10_000, 0, 0, 10_000, None));
        assert_eq!(paid(9_999), (0, 0, 0, 0, Some("below_minimum")));
        assert_eq!(paid(-5), (0, 0, 0, 0, Some("negative_balance")));
        assert_eq!(paid(1_000_000), (1_000_000, 30_000, 3_000, 967_000, None));
        assert_eq!(expected(9_999).closing_balance, 9_999);
    }
}
