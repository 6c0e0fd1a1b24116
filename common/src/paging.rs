//! Opaque list cursors (SPEC §7): a cursor names the last id of the page
//! before, for one kind of list, base64url-encoded so clients treat it as
//! opaque.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QuerySelect, Select};

/// Page size when none is asked for (SPEC §7).
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page (SPEC §7).
pub const MAX_PAGE_SIZE: u32 = 100;

/// The cursor after id `last_id` in a list of `kind` (e.g. `"video"`).
pub fn encode_cursor(kind: &str, last_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{last_id}"))
}

/// The id a cursor of `kind` continues after; 0 for the empty cursor (the
/// first page).
///
/// # Errors
/// A cursor not made by [`encode_cursor`] for `kind`.
pub fn decode_cursor(kind: &str, cursor: &str) -> Result<i64, String> {
    if cursor.is_empty() {
        return Ok(0);
    }
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.strip_prefix(kind)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|id| id.parse().ok())
        })
        .ok_or_else(|| "is not a cursor from this list".to_owned())
}

/// A requested page size: 0 means the default; 1 to 100 as given.
///
/// # Errors
/// Anything above [`MAX_PAGE_SIZE`].
pub fn page_size(limit: u32) -> Result<u32, String> {
    match limit {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n <= MAX_PAGE_SIZE => Ok(n),
        _ => Err(format!("must be between 1 and {MAX_PAGE_SIZE}")),
    }
}

/// One page of a keyset-paged list: up to `limit` rows of `query` (already
/// filtered past the cursor and ordered by id), and whether more follow
/// (one row more than the page is read to know).
///
/// # Errors
/// Database failures.
pub async fn fetch_page<E: EntityTrait>(
    query: Select<E>,
    limit: u32,
    db: &impl ConnectionTrait,
) -> Result<(Vec<E::Model>, bool), DbErr> {
    let mut rows = query.limit(u64::from(limit) + 1).all(db).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor("user", &encode_cursor("user", 41)), Ok(41));
        assert_eq!(decode_cursor("user", ""), Ok(0));
        assert!(decode_cursor("video", &encode_cursor("user", 41)).is_err());
        assert!(decode_cursor("user", "bm9wZQ").is_err());
        assert!(decode_cursor("user", "%%%").is_err());
        assert_eq!(page_size(0), Ok(20));
        assert!(page_size(101).is_err());
    }
}
