//! Stable names of the domain's unit enums: one list per enum, from which
//! `as_str`, `Display`, `FromStr` and `ALL` are all derived.
//!
//! These names are persisted (read-model rows, index rows, keys) and shown
//! in the API and metrics: never rename one. They are not the serde names
//! of the enums (events and rows encode variants by serde, unchanged).

/// A text that is not the stable name of any value of an enum.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a known {what}")]
pub struct UnknownName {
    /// What was being parsed (`target system`, `purpose`, ...).
    pub what: &'static str,
    /// The text refused.
    pub name: String,
}

/// Implements `ALL`, `as_str`, `Display` and `FromStr` (error
/// [`UnknownName`]) for a unit enum from one `Variant => "name"` list.
macro_rules! stable_names {
    ($ty:ident, $what:literal, $n:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: [Self; $n] = [$(Self::$variant),+];

            /// The stable lowercase name (persisted and shown; never renamed).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::names::UnknownName;

            /// Parses the stable name written by `as_str`.
            fn from_str(name: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|value| value.as_str() == name)
                    .ok_or_else(|| $crate::names::UnknownName {
                        what: $what,
                        name: name.to_owned(),
                    })
            }
        }
    };
}

pub(crate) use stable_names;

#[cfg(test)]
mod tests {
    use crate::idempotency::{Purpose, TargetSystem};
    use crate::outcome::OutcomeClass;

    #[test]
    fn every_name_round_trips_and_names_are_the_persisted_ones() {
        for system in TargetSystem::ALL {
            assert_eq!(system.as_str().parse(), Ok(system));
            assert_eq!(system.to_string(), system.as_str());
        }
        for purpose in Purpose::ALL {
            assert_eq!(purpose.as_str().parse(), Ok(purpose));
        }
        for class in OutcomeClass::ALL {
            assert_eq!(class.as_str().parse(), Ok(class));
        }
        assert_eq!(Purpose::ActivateBilling.as_str(), "activate_billing");
        assert_eq!(TargetSystem::Crm.as_str(), "crm");
        assert_eq!(
            OutcomeClass::SecurityConfiguration.as_str(),
            "security_configuration"
        );
    }

    #[test]
    fn rejects_an_unknown_name() {
        let error = "Inventory".parse::<TargetSystem>().expect_err("refused");
        assert_eq!(
            error.to_string(),
            "`Inventory` is not a known target system"
        );
        assert!("reserve ".parse::<Purpose>().is_err());
        assert!("".parse::<OutcomeClass>().is_err());
    }
}
