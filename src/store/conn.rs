//! The connection a store function's statements run on: a connection of
//! the pool (or its transaction), or, in a SQLite writer's turn, the
//! writers' own connection driven directly (see [`super::direct`]). Both
//! take the same `sqlx::query(...)` and answer with the same rows, so the
//! store's code is written once for both.

use futures_util::{FutureExt, StreamExt, future, stream};
use sqlx::AnyConnection;
use sqlx::any::{Any, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::{Either, Execute, Executor};
use sqlx_core::sql_str::SqlStr;

use super::direct::{DirectSqlite, Step};

#[derive(Debug)]
pub(super) enum Conn<'a> {
    Any(&'a mut AnyConnection),
    Direct(&'a mut DirectSqlite),
}

impl<'a> From<&'a mut AnyConnection> for Conn<'a> {
    fn from(conn: &'a mut AnyConnection) -> Conn<'a> {
        Conn::Any(conn)
    }
}

/// Runs `query` on the direct connection, at once.
fn run_direct<'q>(
    conn: &mut DirectSqlite,
    mut query: impl Execute<'q, Any>,
) -> Result<Vec<Step>, sqlx::Error> {
    let arguments = query.take_arguments().map_err(sqlx::Error::Encode)?;
    let sql = query.sql();
    conn.run(sql.as_str(), arguments)
}

impl<'c> Executor<'c> for &'c mut Conn<'_> {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures_util::stream::BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Conn::Any(conn) => conn.fetch_many(query),
            Conn::Direct(conn) => match run_direct(conn, query) {
                Ok(steps) => stream::iter(steps.into_iter().map(Ok)).boxed(),
                Err(error) => stream::once(future::ready(Err(error))).boxed(),
            },
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures_util::future::BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Conn::Any(conn) => conn.fetch_optional(query),
            Conn::Direct(conn) => {
                let row =
                    run_direct(conn, query).map(|steps| steps.into_iter().find_map(Either::right));
                future::ready(row).boxed()
            }
        }
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> futures_util::future::BoxFuture<'e, Result<AnyStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Conn::Any(conn) => conn.prepare_with(sql, parameters),
            Conn::Direct(_) => future::ready(Err(sqlx::Error::Protocol(
                "the writers' connection prepares its statements as it runs them".into(),
            )))
            .boxed(),
        }
    }
}
