//! API tests: the real app over real HTTP, on SQLite and on PostgreSQL.

mod browser;
mod helpers;
mod postgres_server;

mod agencies;
mod audit;
mod auth;
mod callbacks;
mod checkout;
mod citizen;
mod cli;
mod console;
mod dossiers;
mod gateways;
mod invoices;
mod janitor;
mod keys;
mod openapi;
mod operations;
mod payments;
mod reports;
mod sandbox;
mod settlement_edges;
mod settlements;
mod webhooks;
