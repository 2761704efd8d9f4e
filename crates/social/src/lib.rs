//! stentor-social: the rules of the platform around the Spaces, without I/O.
//!
//! What a post may say ([`text`]), who may subscribe to an account's live alerts
//! ([`audience`]), how a home timeline is put together from what was fanned out on write and
//! what is merged at read time ([`timeline`]), how likes and follows are written in batches so
//! that a burst on one post never serialises on one row ([`batch`]), and how fast the alerts of
//! an account going live go out so that they never ask more people to come than the waiting
//! room lets in ([`pacing`]).

pub mod audience;
pub mod batch;
pub mod pacing;
pub mod text;
pub mod timeline;

pub use audience::Audience;
