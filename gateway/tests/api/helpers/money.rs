//! What the money tests (ledger, statements, webhooks) share: an app with
//! an admin, imported and settled days, and reads of the revenue database.

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::Value;

use super::{Options, TestApp, spawn_app_with};

/// The admin the money tests sign in as.
pub const ADMIN: (&str, &str) = ("admin@example.com", "admin-password");

/// A day, `YYYY-MM-DD`.
pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The platform with [`ADMIN`] and `options`, and the admin's access token.
pub async fn spawn_admin_app(options: Options) -> (TestApp, String) {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..options
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    (app, admin)
}

/// The single integer `sql` answers.
pub async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

impl TestApp {
    /// The revenue service's database (PostgreSQL).
    pub async fn revenue_db(&self) -> DatabaseConnection {
        sea_orm::Database::connect(self.revenue_db_url.clone().unwrap())
            .await
            .unwrap()
    }

    /// Imports `(video, day, views, ad views)` rows, 10 watch seconds a
    /// view, and checks none was refused.
    pub async fn import_counts(&self, admin: &str, rows: &[(i64, &str, i64, i64)]) {
        let mut csv = "video_id,day,views,watch_seconds,ad_views\n".to_owned();
        for (video, d, views, ad_views) in rows {
            csv.push_str(&format!("{video},{d},{views},{},{ad_views}\n", views * 10));
        }
        let report: Value = self.import_csv(admin, csv).await.json().await.unwrap();
        assert!(
            report["rejected"].as_array().unwrap().is_empty(),
            "{report}"
        );
    }

    /// Settles `from..=to` and checks every run succeeded; the runs.
    pub async fn settle_ok(&self, admin: &str, from: &str, to: &str) -> Vec<Value> {
        let runs = self.settle_days(admin, day(from), day(to)).await;
        for run in &runs {
            assert_eq!(run["status"], "succeeded", "{run}");
        }
        runs
    }
}
