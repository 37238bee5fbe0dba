//! Rules: let producers send bare business events and decide here who hears what
//! (`NOTIFY_RULES=rules.toml`, contract section 1).

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{Event, Priority, Recipients};

/// One `[[rule]]` of the rules file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Event type: exact (`purchase.requested`) or a prefix glob (`purchase.*`, `*`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// User templates; a template that is one placeholder naming an array expands to its items.
    #[serde(default)]
    pub to_users: Vec<String>,
    /// Group templates, expanded like the user templates; members of each group receive it.
    #[serde(default)]
    pub to_groups: Vec<String>,
    /// When true, the notification also goes to everybody (one stored broadcast notification).
    #[serde(default)]
    pub broadcast: bool,
    /// Template of the notification's title; placeholders like `{data.item}` read the event.
    pub title: Option<String>,
    /// Template of the notification's message text, with the same placeholders.
    pub message: Option<String>,
    /// Template of the link the widget opens when the notification is clicked.
    pub link: Option<String>,
    /// Priority when the event has none.
    pub priority: Option<Priority>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<Rule>,
}

/// What an event becomes after its rule is applied: everything a notification needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Final recipients (never empty).
    pub recipients: Recipients,
    /// The event's own title, else the rule's title template rendered over the event.
    pub title: String,
    /// The event's own message, else the rule's message template rendered over the event.
    pub message: String,
    /// The event's own link, else the rule's link template rendered over the event.
    pub link: Option<String>,
    /// The event's priority, else the rule's, else `normal`.
    pub priority: Priority,
}

/// A set of rules, matched by event type (exact beats the longest prefix glob).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// No rules: events must carry recipients, title and message themselves.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses a rules file; errors name `NOTIFY_RULES` and the problem (e.g. an unknown field).
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: RulesFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
            Error::config("NOTIFY_RULES", format!("{at}{}", e.message().trim()))
        })?;
        for (i, rule) in file.rule.iter().enumerate() {
            if rule.event_type.is_empty() {
                return Err(Error::config(
                    "NOTIFY_RULES",
                    format!("rule {}: `type` must not be empty", i + 1),
                ));
            }
            for template in rule
                .to_users
                .iter()
                .chain(&rule.to_groups)
                .chain(&rule.title)
                .chain(&rule.message)
                .chain(&rule.link)
            {
                parse_template(template).map_err(|m| {
                    Error::config(
                        "NOTIFY_RULES",
                        format!("rule {} ({}): {m}", i + 1, rule.event_type),
                    )
                })?;
            }
        }
        Ok(Rules { rules: file.rule })
    }

    /// Reads and parses a rules file.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                "NOTIFY_RULES",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        Self::from_toml(&text)
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule for an event type, if any.
    pub fn find(&self, event_type: &str) -> Option<&Rule> {
        let mut best: Option<(usize, &Rule)> = None;
        for rule in &self.rules {
            let score = if rule.event_type == event_type {
                usize::MAX
            } else if let Some(prefix) = rule.event_type.strip_suffix('*') {
                if event_type.starts_with(prefix) {
                    prefix.len()
                } else {
                    continue;
                }
            } else {
                continue;
            };
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, rule));
            }
        }
        best.map(|(_, r)| r)
    }

    /// Applies the matching rule: explicit event fields win; templates read event fields; a
    /// template naming a missing field is an error that names it. Errors also when the
    /// result has no recipient, title or message.
    pub fn resolve(&self, event: &Event) -> Result<Resolved> {
        let rule = self.find(&event.event_type);
        let render_opt = |t: &Option<String>| -> Result<Option<String>> {
            t.as_deref().map(|t| render(t, &event.raw)).transpose()
        };
        let recipients = match &event.recipients {
            Some(r) if !r.is_empty() => r.clone(),
            _ => match rule {
                Some(rule) => {
                    let mut r = Recipients {
                        broadcast: rule.broadcast,
                        ..Recipients::default()
                    };
                    for t in &rule.to_users {
                        r.users
                            .extend(render_list(t, &event.raw, "recipients.users")?);
                    }
                    for t in &rule.to_groups {
                        r.groups
                            .extend(render_list(t, &event.raw, "recipients.groups")?);
                    }
                    r
                }
                None => Recipients::default(),
            },
        };
        if recipients.is_empty() {
            return Err(Error::invalid(
                "recipients",
                "the event has no recipient (and no rule supplies one)",
            ));
        }
        let title = match &event.title {
            Some(t) => t.clone(),
            None => render_opt(&rule.and_then(|r| r.title.clone()))?
                .ok_or_else(|| Error::invalid("title", "is required (no rule supplies it)"))?,
        };
        let message = match &event.message {
            Some(m) => m.clone(),
            None => render_opt(&rule.and_then(|r| r.message.clone()))?
                .ok_or_else(|| Error::invalid("message", "is required (no rule supplies it)"))?,
        };
        let link = match &event.link {
            Some(l) => Some(l.clone()),
            None => render_opt(&rule.and_then(|r| r.link.clone()))?,
        };
        let priority = event
            .priority
            .or(rule.and_then(|r| r.priority))
            .unwrap_or_default();
        Ok(Resolved {
            recipients,
            title,
            message,
            link,
            priority,
        })
    }
}

enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

fn parse_template(t: &str) -> std::result::Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{{") {
            out.push(Piece::Text("{"));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("}}") {
            out.push(Piece::Text("}"));
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in template {t:?}"))?;
            let path = r[..end].trim();
            if path.is_empty() {
                return Err(format!("empty placeholder in template {t:?}"));
            }
            out.push(Piece::Field(path));
            rest = &r[end + 1..];
        } else if rest.starts_with('}') {
            return Err(format!("unmatched `}}` in template {t:?} (write `}}}}`)"));
        } else {
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            out.push(Piece::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(out)
}

fn lookup<'v>(root: &'v Value, path: &str) -> Result<&'v Value> {
    let mut v = root;
    for part in path.split('.') {
        v = match v {
            Value::Object(m) => m.get(part),
            Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .filter(|v| !v.is_null())
        .ok_or_else(|| Error::invalid(path, "is missing but a rule template needs it"))?;
    }
    Ok(v)
}

fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders a template against the event JSON (`{data.item}`; `{{` for a literal brace).
pub fn render(template: &str, event: &Value) -> Result<String> {
    let pieces = parse_template(template).map_err(|m| Error::invalid("rule", m))?;
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Field(path) => out.push_str(&to_text(lookup(event, path)?)),
        }
    }
    Ok(out)
}

fn render_list(template: &str, event: &Value, field: &str) -> Result<Vec<String>> {
    let pieces = parse_template(template).map_err(|m| Error::invalid("rule", m))?;
    if let [Piece::Field(path)] = pieces.as_slice() {
        if let Value::Array(items) = lookup(event, path)? {
            return items
                .iter()
                .map(|v| match v {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    other => Err(Error::invalid(
                        *path,
                        format!(
                            "must list {field} as strings, found {}",
                            crate::model::json_kind(other)
                        ),
                    )),
                })
                .collect();
        }
    }
    let name = render(template, event)?;
    if name.is_empty() {
        return Err(Error::invalid(
            field,
            format!("template {template:?} rendered empty"),
        ));
    }
    Ok(vec![name])
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
[[rule]]
type = "purchase.requested"
to_groups = ["purchasing-admins"]
to_users = ["{data.approver}"]
title = "New purchase request"
message = "{data.requester} requested {data.item} ({data.qty}) {{x}}"
link = "/purchases/{data.purchaseId}"

[[rule]]
type = "purchase.*"
to_users = ["{data.watchers}"]
title = "Purchase update"
message = "{type}"
priority = "low"
"#;

    fn event(json: &str) -> Event {
        Event::from_slice(json.as_bytes()).unwrap()
    }

    #[test]
    fn exact_rule_renders_templates() {
        let rules = Rules::from_toml(RULES).unwrap();
        let r = rules
            .resolve(&event(
                r#"{"id":"1","type":"purchase.requested","data":{"approver":"bob","requester":"alice","item":"desk","qty":2,"purchaseId":42}}"#,
            ))
            .unwrap();
        assert_eq!(r.recipients.users, vec!["bob"]);
        assert_eq!(r.recipients.groups, vec!["purchasing-admins"]);
        assert_eq!(r.message, "alice requested desk (2) {x}");
        assert_eq!(r.link.as_deref(), Some("/purchases/42"));
        assert_eq!(r.priority, Priority::Normal);
    }

    #[test]
    fn glob_rule_expands_arrays_and_explicit_fields_win() {
        let rules = Rules::from_toml(RULES).unwrap();
        let r = rules
            .resolve(&event(
                r#"{"id":"1","type":"purchase.shipped","title":"Mine","data":{"watchers":["a","b"]}}"#,
            ))
            .unwrap();
        assert_eq!(r.recipients.users, vec!["a", "b"]);
        assert_eq!(r.title, "Mine");
        assert_eq!(r.message, "purchase.shipped");
        assert_eq!(r.priority, Priority::Low);
        let r = rules
            .resolve(&event(
                r#"{"id":"1","type":"purchase.shipped","recipients":{"users":["z"]},"data":{}}"#,
            ))
            .unwrap();
        assert_eq!(r.recipients.users, vec!["z"]);
    }

    #[test]
    fn missing_template_field_is_an_error_naming_it() {
        let rules = Rules::from_toml(RULES).unwrap();
        let err = rules
            .resolve(&event(
                r#"{"id":"1","type":"purchase.requested","data":{"approver":"bob","requester":"alice"}}"#,
            ))
            .unwrap_err();
        assert_eq!(err.field(), Some("data.item"));
    }

    #[test]
    fn no_recipient_no_title_are_errors() {
        let rules = Rules::empty();
        let err = rules
            .resolve(&event(r#"{"id":"1","type":"x","title":"t","message":"m"}"#))
            .unwrap_err();
        assert_eq!(err.field(), Some("recipients"));
        let err = rules
            .resolve(&event(
                r#"{"id":"1","type":"x","recipients":{"broadcast":true},"message":"m"}"#,
            ))
            .unwrap_err();
        assert_eq!(err.field(), Some("title"));
    }

    #[test]
    fn bad_files_name_the_variable_and_problem() {
        let err = Rules::from_toml("[[rule]]\ntype='a'\ncolour='red'\n").unwrap_err();
        assert_eq!(err.field(), Some("NOTIFY_RULES"));
        assert!(err.to_string().contains("colour"), "{err}");
        let err = Rules::from_toml("[[rule]]\ntype='a'\ntitle='{oops'\n").unwrap_err();
        assert!(err.to_string().contains("unclosed"), "{err}");
    }
}
