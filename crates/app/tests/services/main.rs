//! The services' decisions, driven through the in-memory ports (`ephemera_app::memory`): no
//! emulator, each test a few milliseconds. One binary, one module per service.

mod harness;

mod accounts;
mod catch_up;
mod commands;
mod dashboard;
mod installations;
mod intake;
mod notifier;
mod provisioner;
mod reaper;
mod repo_config;
mod selfservice;
mod stack_events;
