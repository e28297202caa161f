//! One-line checks of settings, shared by every `validate`: each message names the setting, as
//! the config file or the command line spells it.

use anyhow::{Result, ensure};

/// Every `(name, value)` is at least 1, else "`name` must be at least 1" for the first that is
/// not.
pub fn at_least_one(settings: &[(&str, usize)]) -> Result<()> {
    for &(name, value) in settings {
        ensure!(value >= 1, "{name} must be at least 1");
    }
    Ok(())
}

/// `value` is a finite number above 0, else "`name` must be a positive number (got `value`)".
pub fn positive(name: &str, value: f64) -> Result<()> {
    ensure!(
        value.is_finite() && value > 0.0,
        "{name} must be a positive number (got {value})"
    );
    Ok(())
}

/// `names` (given by `flag`) is not empty and every name is one of `known`, else "`flag` names no
/// `what`" or "unknown `what` '`name`' (known: …)" for the first that is not.
pub fn known_names(flag: &str, what: &str, names: &[String], known: &[&str]) -> Result<()> {
    ensure!(!names.is_empty(), "{flag} names no {what}");
    for name in names {
        ensure!(
            known.contains(&name.as_str()),
            "unknown {what} '{name}' (known: {})",
            known.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_setting_out_of_range() {
        assert!(at_least_one(&[("a", 1), ("b", 7)]).is_ok());
        let err = at_least_one(&[("a", 1), ("b", 0), ("c", 0)]).unwrap_err();
        assert_eq!(err.to_string(), "b must be at least 1");
        assert!(positive("x", 1e-9).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = positive("x", bad).unwrap_err().to_string();
            assert!(
                err.starts_with("x must be a positive number (got "),
                "{err}"
            );
        }
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(known_names("--x", "thing", &names(&["a", "b"]), &["b", "a"]).is_ok());
        let err = known_names("--x", "thing", &names(&[]), &["a"]).unwrap_err();
        assert_eq!(err.to_string(), "--x names no thing");
        let err = known_names("--x", "thing", &names(&["a", "c"]), &["a", "b"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown thing 'c' (known: a, b)");
    }
}
