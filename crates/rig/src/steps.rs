//! The scenario's steps, one file each, in the order they run (see [`crate::scenario::steps_for`]).
//! A step is a function returning a [`crate::scenario::Step`]: its dom0 scripts (under
//! crates/rig/scripts/steps/), the files it puts into the image, and its host-side check.

pub mod autostart;
pub mod bootloader;
pub mod devices;
pub mod failures;
#[cfg(test)]
pub(crate) mod fake_dom0;
pub mod guest_list;
pub mod hello;
pub mod hvm;
pub mod info;
pub mod linux;
pub mod pv;
pub mod pvgrub;
pub mod rxl_hello;
pub mod side_by_side;
pub mod xenstore;
