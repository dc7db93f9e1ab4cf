//! lephi: cashless fee payment service for public administrative procedures.
//!
//! Data flows one way: [`routes`] parse requests into [`domain`] types, call a
//! [`store`] method that owns its transaction, and render the response.

pub mod bench;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod console;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod imports;
pub mod janitor;
pub mod jobs;
pub mod notify;
pub mod origin;
pub mod pages;
pub mod providers;
pub mod reconcile;
pub mod routes;
pub mod sandbox;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod usecases;
