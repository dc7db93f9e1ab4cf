//! What the app serves: the one table that declares every route, of the
//! API ([`crate::routes`]), the citizens' pages and the console
//! ([`crate::console`]). It both configures the app and lists what the app
//! serves (checked against `openapi.yaml`).

use actix_web::{HttpRequest, web};

use crate::{console, routes};

/// Declares the routes: `path => { METHOD handler, ... }`.
macro_rules! route_table {
    ($($path:literal => { $($method:ident $handler:path),+ $(,)? }),+ $(,)?) => {
        /// Every `(method, path)` the app serves.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),+];

        /// Registers every route, with a JSON 405 for a known path and an
        /// unknown method.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                cfg.service(
                    web::resource($path)
                        $(.route(route_table!(@method $method).to($handler)))+
                        .default_service(web::to(|req: HttpRequest| {
                            routes::method_not_allowed(req, &[$(stringify!($method)),+])
                        })),
                );
            )+
        }
    };
    (@method GET) => { web::get() };
    (@method POST) => { web::post() };
    (@method PUT) => { web::put() };
}

route_table! {
    "/health/live" => { GET routes::health::live },
    "/health/ready" => { GET routes::health::ready },
    "/metrics" => { GET routes::metrics::render },
    "/v1/agencies" => { POST routes::agencies::create, GET routes::agencies::list },
    "/v1/agencies/{code}" => { GET routes::agencies::get },
    "/v1/agencies/{code}/webhook" => { PUT routes::agencies::set_webhook },
    "/v1/agencies/{code}/bank-account" => { PUT routes::agencies::set_bank_account, GET routes::agencies::bank_account },
    "/v1/keys" => { POST routes::keys::create, GET routes::keys::list },
    "/v1/keys/{id}/revoke" => { POST routes::keys::revoke },
    "/v1/invoices" => { POST routes::invoices::create, GET routes::invoices::list },
    "/v1/invoices/{id}" => { GET routes::invoices::get },
    "/v1/invoices/{id}/cancel" => { POST routes::invoices::cancel },
    "/v1/invoices/{id}/attempts" => { POST routes::attempts::start },
    "/v1/invoices/{id}/payments" => { GET routes::payments::of_invoice },
    "/v1/invoices/{id}/cash-payments" => { POST routes::payments::record_cash },
    "/v1/payments" => { GET routes::payments::list },
    "/v1/payments/{id}/refunds" => { POST routes::refunds::request },
    "/v1/refunds" => { GET routes::refunds::list },
    "/v1/refunds/{id}" => { GET routes::refunds::get },
    "/v1/refunds/{id}/approve" => { POST routes::refunds::approve },
    "/v1/refunds/{id}/reject" => { POST routes::refunds::reject },
    "/v1/refunds/{id}/complete" => { POST routes::refunds::complete },
    "/v1/exceptions" => { GET routes::exceptions::list },
    "/v1/exceptions/{id}" => { GET routes::exceptions::get },
    "/v1/exceptions/{id}/resolve" => { POST routes::exceptions::resolve },
    "/v1/settlements" => { POST routes::settlements::import, GET routes::settlements::list },
    "/v1/settlements/{id}" => { GET routes::settlements::get },
    "/v1/settlements/{id}/lines" => { GET routes::settlements::lines },
    "/v1/events" => { GET routes::events::list },
    "/v1/events/{id}/redeliver" => { POST routes::events::redeliver },
    "/v1/audit" => { GET routes::audit::list },
    "/v1/dossiers" => { GET routes::dossiers::list },
    "/v1/dossiers/import" => { POST routes::dossiers::import },
    "/v1/dossiers/imports/{id}" => { GET routes::dossiers::import_job },
    "/v1/reports/cashless" => { GET routes::reports::cashless },
    "/callbacks/vnpay" => { GET routes::callbacks::vnpay },
    "/callbacks/momo" => { POST routes::callbacks::momo },
    "/callbacks/zalopay" => { POST routes::callbacks::zalopay },
    "/callbacks/sepay" => { POST routes::callbacks::sepay },
    "/callbacks/casso" => { POST routes::callbacks::casso },
    "/sandbox/vnpay/paymentv2/vpcpay.html" => { GET routes::sandbox::vnpay_page },
    "/sandbox/vnpay/pay" => { POST routes::sandbox::vnpay_decide },
    "/sandbox/vnpay/merchant_webapi/api/transaction" => { POST routes::sandbox::vnpay_transaction },
    "/sandbox/momo/v2/gateway/api/create" => { POST routes::sandbox::momo_create },
    "/sandbox/momo/v2/gateway/api/query" => { POST routes::sandbox::momo_query },
    "/sandbox/momo/v2/gateway/api/refund" => { POST routes::sandbox::momo_refund },
    "/sandbox/momo/pay" => { GET routes::sandbox::momo_page, POST routes::sandbox::momo_decide },
    "/sandbox/zalopay/v2/create" => { POST routes::sandbox::zalopay_create },
    "/sandbox/zalopay/v2/query" => { POST routes::sandbox::zalopay_query },
    "/sandbox/zalopay/v2/refund" => { POST routes::sandbox::zalopay_refund },
    "/sandbox/zalopay/v2/query_refund" => { POST routes::sandbox::zalopay_query_refund },
    "/sandbox/zalopay/pay" => { GET routes::sandbox::zalopay_page, POST routes::sandbox::zalopay_decide },
    "/sandbox/bank/transfer" => { GET routes::sandbox::bank_page, POST routes::sandbox::bank_send },
    "/pay/{code}" => { GET routes::pay::checkout },
    "/pay/{code}/start/{channel}" => { POST routes::pay::start },
    "/pay/{code}/transfer" => { GET routes::pay::transfer },
    "/pay/{code}/return/{channel}" => { GET routes::pay::returned },
    "/pay/{code}/receipt" => { GET routes::pay::receipt },
    "/console" => { GET console::session::sign_in_page, POST console::session::sign_in },
    "/console/sign-out" => { POST console::session::sign_out },
    "/console/second-factor" => { GET console::second_factor::show, POST console::second_factor::confirm },
    "/console/password" => { GET console::password::show, POST console::password::change },
    "/console/officers" => { GET console::officers::list, POST console::officers::create },
    "/console/officers/{id}/{action}" => { POST console::officers::change },
    "/console/dashboard" => { GET console::dashboard::show },
    "/console/exceptions" => { GET console::exceptions::list },
    "/console/exceptions/{id}" => { GET console::exceptions::show },
    "/console/exceptions/{id}/resolve" => { POST console::exceptions::resolve },
    "/console/exceptions/{id}/refund" => { POST console::refunds::ask },
    "/console/refunds" => { GET console::refunds::list },
    "/console/refunds/{id}" => { GET console::refunds::show },
    "/console/refunds/{id}/approve" => { POST console::refunds::approve },
    "/console/refunds/{id}/reject" => { POST console::refunds::reject },
    "/console/refunds/{id}/complete" => { POST console::refunds::complete },
    "/console/uploads" => { GET console::uploads::show },
    "/console/uploads/statement" => { POST console::uploads::statement },
    "/console/uploads/statements/{id}" => { GET console::uploads::statement_import },
    "/console/uploads/register" => { POST console::uploads::register },
    "/console/uploads/registers/{id}" => { GET console::uploads::register_import },
    "/console/payments" => { GET console::payments::list },
    "/console/invoices" => { GET console::invoices::list },
    "/console/register" => { GET console::register::list },
    "/console/statements" => { GET console::statements::list },
    "/console/statements/{id}" => { GET console::statements::lines },
    "/console/attempts" => { GET console::attempts::list },
    "/console/webhooks" => { GET console::webhooks::list },
    "/console/webhooks/{id}/redeliver" => { POST console::webhooks::redeliver },
    "/console/audit" => { GET console::audit::list },
    "/console/invoices/{id}" => { GET console::payments::invoice },
    "/console/invoices/{id}/cash" => { POST console::payments::record_cash },
    "/console/invoices/{id}/refund" => { POST console::refunds::ask_from_invoice },
}
