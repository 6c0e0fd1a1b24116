//! Sign-up input parsed into domain types at the edge (SPEC §3).

use common::auth::Role;
use secrecy::SecretString;

use crate::error::UserError;

/// An email address, trimmed and normalised to lower case (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// At most 254 characters, one `@`, a non-empty local part, a domain
    /// with a dot, no spaces.
    ///
    /// # Errors
    /// [`UserError::InvalidFields`] naming `email`.
    pub fn parse(raw: &str) -> Result<Self, UserError> {
        let email = raw.trim().to_lowercase();
        let bad = |why: &str| Err(UserError::field("email", why));
        if email.is_empty() {
            return bad("is required");
        }
        if email.chars().count() > 254 {
            return bad("must be at most 254 characters");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return bad("is not an email address");
        };
        let valid = !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return bad("is not an email address");
        }
        Ok(Email(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 8 to 1,024 characters (SPEC §3; the upper bound caps
/// hashing work).
pub struct NewPassword(SecretString);

impl NewPassword {
    /// # Errors
    /// [`UserError::InvalidFields`] naming `password`.
    pub fn parse(raw: &str) -> Result<Self, UserError> {
        match raw.chars().count() {
            0..8 => Err(UserError::field(
                "password",
                "must be at least 8 characters",
            )),
            8..=1024 => Ok(NewPassword(SecretString::from(raw.to_owned()))),
            _ => Err(UserError::field(
                "password",
                "must be at most 1024 characters",
            )),
        }
    }

    /// The password.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// A display name: 1 to 100 characters after trimming, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// # Errors
    /// [`UserError::InvalidFields`] naming `display_name`.
    pub fn parse(raw: &str) -> Result<Self, UserError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(UserError::field("display_name", "is required"));
        }
        if name.chars().count() > 100 {
            return Err(UserError::field(
                "display_name",
                "must be at most 100 characters",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(UserError::field(
                "display_name",
                "must not contain control characters",
            ));
        }
        Ok(DisplayName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The role chosen at sign-up: `viewer` or `creator`; `admin` is refused
/// (SPEC §3: admins are made only by an operator).
///
/// # Errors
/// [`UserError::InvalidFields`] naming `role`.
pub fn parse_sign_up_role(raw: &str) -> Result<Role, UserError> {
    match Role::from_name(raw) {
        Some(role @ (Role::Viewer | Role::Creator)) => Ok(role),
        Some(Role::Admin) => Err(UserError::field(
            "role",
            "admin cannot be chosen at sign-up; must be viewer or creator",
        )),
        None => Err(UserError::field("role", "must be viewer or creator")),
    }
}

/// A validated sign-up.
pub struct NewAccount {
    /// Normalised email.
    pub email: Email,
    /// The password, not yet hashed.
    pub password: NewPassword,
    /// Display name.
    pub display_name: DisplayName,
    /// Viewer, creator, or (operators only) admin.
    pub role: Role,
}

impl NewAccount {
    /// Parses every field and reports every bad one at once.
    ///
    /// # Errors
    /// [`UserError::InvalidFields`] listing each bad field.
    pub fn parse(
        email: &str,
        password: &str,
        display_name: &str,
        role: &str,
    ) -> Result<Self, UserError> {
        let email = Email::parse(email);
        let password = NewPassword::parse(password);
        let display_name = DisplayName::parse(display_name);
        let role = parse_sign_up_role(role);
        match (email, password, display_name, role) {
            (Ok(email), Ok(password), Ok(display_name), Ok(role)) => Ok(NewAccount {
                email,
                password,
                display_name,
                role,
            }),
            (e, p, d, r) => {
                let mut fields = Vec::new();
                for err in [e.err(), p.err(), d.err(), r.err()].into_iter().flatten() {
                    if let UserError::InvalidFields(f) = err {
                        fields.extend(f);
                    }
                }
                Err(UserError::InvalidFields(fields))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: UserError) -> Vec<String> {
        match e {
            UserError::InvalidFields(f) => f.into_iter().map(|v| v.field).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn email_is_normalised_to_lower_case() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").map_err(|e| e.to_string());
        assert_eq!(
            email.map(|e| e.as_str().to_owned()),
            Ok("ada.lovelace@example.com".to_owned())
        );
    }

    #[test]
    fn bad_emails_are_refused() {
        for raw in [
            "",
            "no-at-sign",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} accepted");
        }
    }

    #[test]
    fn password_needs_eight_characters() {
        assert!(NewPassword::parse("1234567").is_err());
        assert!(NewPassword::parse("12345678").is_ok());
        // Characters, not bytes.
        assert!(NewPassword::parse("가나다라마바사").is_err());
    }

    #[test]
    fn admin_and_unknown_roles_are_refused_at_sign_up() {
        assert!(matches!(parse_sign_up_role("viewer"), Ok(Role::Viewer)));
        assert!(matches!(parse_sign_up_role("creator"), Ok(Role::Creator)));
        assert!(parse_sign_up_role("admin").is_err());
        assert!(parse_sign_up_role("Viewer").is_err());
    }

    #[test]
    fn every_bad_field_is_named() {
        let err = NewAccount::parse("nope", "short", " ", "root").err();
        let names = err.map(fields).unwrap_or_default();
        assert_eq!(names, vec!["email", "password", "display_name", "role"]);
    }
}
