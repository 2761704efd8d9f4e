//! Trust and safety without I/O: one append-only, hash-chained log of moderation events
//! (reports, decisions, appeals, reversals, notes) and everything derived from it — the
//! statement of reasons an affected account reads (DSA Art. 17), the payload sent to the
//! Commission's Transparency Database and its validation (Art. 24(5)), the appeal rules
//! (Art. 20) and the transparency report. The time is always an argument.

pub mod export;
pub mod log;
pub mod model;
pub mod report;
pub mod statement;
pub mod tdb;
