//! The discrete-event core of ctsim: a virtual clock, an event queue, seeded
//! randomness, links with impairments, and the nodes that sit between them
//! (smoltcp hosts, raw hosts, routers).
//!
//! A run is a pure function of its inputs: time is an integer count of
//! nanoseconds that only the event loop advances, all randomness comes from
//! one seeded ChaCha8 stream forked per node and per link in declaration
//! order, and nothing iterates an unordered collection into output.

pub mod dumbbell;
pub mod host;
pub mod link;
pub mod node;
pub mod pcap;
pub mod queue;
pub mod raw;
pub mod rng;
pub mod router;
pub mod sim;
pub mod switch;
pub mod time;
pub mod topology;
pub mod trace;

pub use link::{LinkChange, LinkParams, LinkStats};
pub use node::{AppOutcome, Command, Cx, Node};
pub use sim::{Action, BuildError, Builder, PortSpec, Sim};
pub use time::{Duration, Instant};
pub use topology::{Cidr, LinkId, NodeId, Port};
pub use trace::{DropReason, Place, Record, Tapped, What};
