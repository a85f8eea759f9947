//! The allowed values of the schema's enums, for errors: a filter or
//! argument given a value its enum does not have is refused by the engine's
//! validation with the enum's name only; [`explain`] adds the values the
//! client may send.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Every enum of the served schema with its values, in schema order.
fn enums() -> &'static HashMap<String, Vec<String>> {
    static ENUMS: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    ENUMS.get_or_init(|| from_sdl(&super::sdl()))
}

/// The enums of `sdl`: `enum Name { VALUE ... }` blocks.
fn from_sdl(sdl: &str) -> HashMap<String, Vec<String>> {
    let mut enums = HashMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    let mut in_description = false;
    for line in sdl.lines().map(str::trim) {
        // Descriptions: `"""` on its own line opens and closes a block.
        if line == "\"\"\"" {
            in_description = !in_description;
            continue;
        }
        if in_description || line.starts_with('"') {
            continue;
        }
        if let Some((name, values)) = current.as_mut() {
            if line.starts_with('}') {
                enums.insert(std::mem::take(name), std::mem::take(values));
                current = None;
            } else if let Some(value) = line.split_whitespace().next() {
                values.push(value.to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("enum ") {
            let name = rest.split([' ', '{']).next().unwrap_or_default();
            current = Some((name.to_owned(), Vec::new()));
        }
    }
    enums
}

/// The enum a validation message says lacks a value: the engine's
/// messages for a literal argument and for a variable.
fn enum_named_in(message: &str) -> Option<&str> {
    fn quoted(rest: &str) -> Option<&str> {
        rest.split('"').next()
    }
    if let Some((_, rest)) = message.split_once("enumeration type \"") {
        return quoted(rest);
    }
    if message.contains("Enumeration type does not contain value") {
        if let Some((_, rest)) = message.split_once("Failed to parse \"") {
            return quoted(rest);
        }
    }
    None
}

/// `message` with the allowed values of the enum it names appended, or
/// `None` when it is not about a value missing from an enum.
pub fn explain(message: &str) -> Option<String> {
    let values = enums().get(enum_named_in(message)?)?;
    Some(format!("{message}; allowed values: {}", values.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_enum_value_is_explained_with_the_allowed_values() {
        let literal = r#"Invalid value for argument "status", enumeration type "OrderStatus" does not contain the value "DONE""#;
        let explained = explain(literal).unwrap_or_default();
        assert!(
            explained.ends_with("allowed values: OPEN, COMPLETED, CANCELLED"),
            "{explained}"
        );
        let variable =
            r#"Failed to parse "OrderStatus": Enumeration type does not contain value "DONE"."#;
        assert!(explain(variable).is_some_and(|m| m.contains("COMPLETED")));
        assert_eq!(explain("Unknown field \"x\""), None);
    }
}
