//! Officers as use-cases, what both the command line and the console's
//! officers page call: create one with a first password, reset it, reset
//! the second factor, disable. A password made here is shown once to the
//! admin, who gives it to the officer alone; they change it at sign-in.

use crate::domain::audit::Actor;
use crate::domain::officer::{self, Email, OfficerRole};
use crate::domain::{AgencyCode, Scope, text};
use crate::store::{NewOfficer, OfficerRecord, Store, StoreError};

/// An officer to create, as an admin typed it.
pub struct OfficerForm<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub role: &'a str,
    /// The agency's code; none (or empty) for the whole service.
    pub agency: Option<&'a str>,
}

/// An officer made or reset, with the password made for them.
pub struct WithPassword {
    pub officer: OfficerRecord,
    pub password: String,
}

/// Creates the officer `form` describes in `scope`, with a password made
/// for them. Audited.
pub async fn create(
    store: &Store,
    actor: &Actor,
    scope: &Scope,
    form: &OfficerForm<'_>,
) -> Result<WithPassword, StoreError> {
    let email = Email::parse("email", form.email)?;
    let role = OfficerRole::parse("role", form.role)?;
    let name = text::bounded("name", form.name, 200)?;
    let agency = form
        .agency
        .map(str::trim)
        .filter(|code| !code.is_empty())
        .map(|code| AgencyCode::parse("agency", code))
        .transpose()?;
    let password = officer::made_password();
    let officer = store
        .create_officer(
            actor,
            scope,
            &NewOfficer {
                email: &email,
                name: &name,
                role,
                agency: agency.as_ref(),
                password_hash: &officer::hash_password(&password),
            },
        )
        .await?;
    Ok(WithPassword { officer, password })
}

/// The officer of `email` in `scope`.
pub async fn by_email(
    store: &Store,
    scope: &Scope,
    email: &str,
) -> Result<OfficerRecord, StoreError> {
    let email = Email::parse("email", email)?;
    store
        .officer_by_email(scope, &email)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Makes a new password for officer `id` (in `scope`); their sessions end.
pub async fn reset_password(
    store: &Store,
    actor: &Actor,
    scope: &Scope,
    id: &str,
) -> Result<WithPassword, StoreError> {
    let officer = store
        .officer_in_scope(scope, id)
        .await?
        .ok_or(StoreError::NotFound)?;
    let password = officer::made_password();
    store
        .set_officer_password(actor, scope, id, &officer::hash_password(&password), None)
        .await?;
    Ok(WithPassword { officer, password })
}
