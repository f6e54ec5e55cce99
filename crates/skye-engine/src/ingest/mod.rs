//! Ingestion: the embedding, real-time and delta consumers (spec AC §4) and the loop that feeds
//! them from the event bus.
//!
//! Every consumer commits a batch's offsets only after its writes are durable; a backend failure
//! rewinds to the batch's first offsets and retries after a back-off; an event that can never be
//! applied goes to a failure topic with the reason and does not hold up the rest.

pub mod embedding;
pub mod events;
pub mod failures;
pub mod payload;
pub mod points;
pub mod progress;
pub mod realtime;
pub mod runner;
pub mod wire;
