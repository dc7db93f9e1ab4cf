//! API tests: the real app over real HTTP, on SQLite and on PostgreSQL.

mod browser;
mod helpers;
mod postgres_server;
mod process;

mod agencies;
mod audit;
mod auth;
mod bench;
mod callbacks;
mod checkout;
mod citizen;
mod cli;
mod console;
mod crash;
mod deploy;
mod dossiers;
mod fuzz;
mod gateways;
mod invoices;
mod janitor;
mod keys;
mod multi_process;
mod openapi;
mod operations;
mod payments;
mod recoveries;
mod refund_crash;
mod refunds;
mod register_jobs;
mod reports;
mod sandbox;
mod settlement_edges;
mod settlements;
mod statement_jobs;
mod webhooks;
