//! `{{name}}` placeholders in configured texts (task titles, mapped contact fields).
//!
//! Written by hand rather than with a template engine: the syntax needed is one kind of
//! placeholder over a fixed set of names, checked when the configuration is read so that a
//! misspelt name is a configuration error with its path, never a blank in a task title.
//! `tinytemplate`, the smallest well-kept engine, would add its parser and formatter to a
//! component that is already at its size budget (see README, "Size").

/// A text with placeholders, parsed and checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(String),
}

impl Template {
    /// Parses `source`; every placeholder must be one of `names`. The error says which
    /// placeholder is wrong and lists the names available.
    pub fn parse(source: &str, names: &[&str]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| format!("\"{{{{\" at {} is not closed by \"}}}}\"", source.len() - rest.len() + start))?;
            let name = after[..end].trim();
            if !names.contains(&name) {
                return Err(format!("unknown placeholder {{{{{name}}}}} (available: {})", names.join(", ")));
            }
            parts.push(Part::Value(name.to_string()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The template that is exactly the placeholder `name` (a plain field copy), unchecked.
    pub fn placeholder(name: &str) -> Template {
        Template { parts: vec![Part::Value(name.to_string())] }
    }

    /// Fills the placeholders; a value the event does not carry renders as empty.
    pub fn render(&self, value: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Value(name) => out.push_str(&value(name).unwrap_or_default()),
            }
        }
        out.trim().to_string()
    }

    /// The template is exactly one placeholder (a plain field copy).
    pub fn single_value(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Value(name)] => Some(name),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked_and_filled() {
        let t = Template::parse("Call back {{ name }} ({{phone}})", &["name", "phone"]).unwrap();
        let filled = t.render(&|n| match n {
            "name" => Some("Dana".into()),
            _ => None,
        });
        assert_eq!(filled, "Call back Dana ()");
        assert_eq!(Template::parse("{{phone}}", &["phone"]).unwrap().single_value(), Some("phone"));
        assert_eq!(Template::parse("Hi {{nmae}}", &["name"]).unwrap_err(), "unknown placeholder {{nmae}} (available: name)");
        assert!(Template::parse("Hi {{name", &["name"]).unwrap_err().contains("not closed"));
    }
}
