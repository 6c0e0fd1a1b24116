//! What the rules track per play session and per viewer key, and what they
//! expect of a pause report given both (SPEC §4).

use std::collections::HashMap;

use crate::rules::{Bracket, Expect, Rules};

/// The state the rules keep per viewer key and video (SPEC §4).
#[derive(Default)]
pub(crate) struct KeyState {
    /// The last counted view.
    pub last_view: Option<Bracket>,
    /// The last counted ad view per slot position.
    pub last_ad: HashMap<i64, Bracket>,
    /// The saved position.
    pub resume: i64,
}

/// A play session, as the simulator follows it.
pub(crate) struct Session {
    /// The service's session id.
    pub id: String,
    /// Where the player is, seconds: where the play resumed, then the last
    /// report's position (capped at the end).
    pub pos: i64,
    /// The play's stamp.
    pub started: Bracket,
    /// The last play's or report's stamp.
    pub reported: Bracket,
    /// Watched seconds the service counted in it so far.
    pub watched: i64,
    /// Ad views the service counted in it so far.
    pub ad_views: i64,
}

/// What the rules expect of one pause report (SPEC §4).
pub(crate) struct PauseExpectation {
    /// The session's position before the report, seconds.
    pub last: i64,
    /// The position the report saves: the reported one, capped at the end.
    pub position: i64,
    /// Watched seconds it adds.
    pub watch: Expect<i64>,
    /// Ad slots it crosses (none for the owner).
    pub crossed: usize,
    /// The one slot whose ad it may count: the last one crossed.
    pub slot: Option<i64>,
    /// Whether it counts an ad view.
    pub ads: Expect<bool>,
}

impl PauseExpectation {
    /// The expectation of a report stamped in `at` that moves `session`
    /// to `position`, given the viewer key's `state` (the owner's reports
    /// add nothing).
    pub(crate) fn of(
        rules: &Rules,
        state: &KeyState,
        session: &Session,
        owner: bool,
        position: i64,
        at: Bracket,
    ) -> Self {
        let last = session.pos;
        let watch = if owner {
            Expect::Exactly(0)
        } else {
            rules.watched_seconds(last, position, session.started, at, session.watched)
        };
        // One ad view at most, for the last slot crossed, unless the key
        // counted that slot within the window or the session has had its
        // share; the owner's never count (SPEC §4).
        let crossed = if owner || position <= last {
            0
        } else {
            rules.slots_crossed(last, position).count()
        };
        let slot = if owner {
            None
        } else {
            rules.ad_slot(last, position)
        };
        let ads = match slot {
            None => Expect::Exactly(false),
            Some(slot) => {
                let window = rules.outside_window(state.last_ad.get(&slot).copied(), at);
                let room = rules.ad_room(session.started, at, session.ad_views);
                match (window, room) {
                    (Expect::Exactly(false), _) | (_, Expect::Exactly(false)) => {
                        Expect::Exactly(false)
                    }
                    (Expect::Exactly(true), Expect::Exactly(true)) => Expect::Exactly(true),
                    _ => Expect::OneOf(vec![false, true]),
                }
            }
        };
        Self {
            last,
            position,
            watch,
            crossed,
            slot,
            ads,
        }
    }
}
