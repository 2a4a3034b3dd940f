//! The no-code rules: follow-up tasks and dynamic tags, each a set of conditions over what a
//! call or a message says, read from the configuration with every problem at its path.
//!
//! A rule fires at most once per call or message: the names of the rules that fired are kept
//! with the call's activity (and shown on its note as `Automations: …`), so a redelivery, or a
//! later piece of the same call, never makes a second task.

use super::reader::Reader;
use super::template::Template;
use super::zone::Zone;
use crate::inbound::dialpad::Direction;
use serde_json::Value;

/// What a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Call,
    Sms,
}

/// A text a keyword or pattern is looked for in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Transcript,
    Recap,
    Sms,
}

/// A configured regular expression (case-insensitive). `regex-lite`: linear-time matching,
/// so a pattern a user types can never stall the plugin on a 24 KB transcript.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    regex: regex_lite::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Every condition set must hold for a rule to fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditions {
    pub on: On,
    /// Call results: `completed`, `missed`, `voicemail`.
    pub outcomes: Vec<String>,
    pub direction: Option<Direction>,
    pub min_seconds: Option<u64>,
    pub max_seconds: Option<u64>,
    /// Any of these words or phrases, case-insensitively.
    pub keywords: Vec<String>,
    pub pattern: Option<Pattern>,
    /// Where keywords and the pattern are looked for (default: every text there is).
    pub text_in: Vec<Text>,
    /// Any of these Dialpad call labels.
    pub labels: Vec<String>,
}

/// What an event tells the rules.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub sms: bool,
    pub outcome: &'a str,
    pub direction: Option<Direction>,
    pub talk_seconds: Option<u64>,
    pub transcript: Option<&'a str>,
    pub recap: Option<String>,
    pub sms_text: Option<&'a str>,
    pub labels: &'a [String],
}

impl Conditions {
    pub fn matches(&self, f: &Facts) -> bool {
        if f.sms != (self.on == On::Sms) {
            return false;
        }
        if !self.outcomes.is_empty() && !self.outcomes.iter().any(|o| o == f.outcome) {
            return false;
        }
        if self.direction.is_some() && self.direction != f.direction {
            return false;
        }
        if let Some(min) = self.min_seconds {
            if f.talk_seconds.is_none_or(|s| s < min) {
                return false;
            }
        }
        if let Some(max) = self.max_seconds {
            if f.talk_seconds.is_some_and(|s| s > max) {
                return false;
            }
        }
        if !self.labels.is_empty() && !self.labels.iter().any(|l| f.labels.iter().any(|x| x.eq_ignore_ascii_case(l))) {
            return false;
        }
        if self.keywords.is_empty() && self.pattern.is_none() {
            return true;
        }
        let texts: Vec<&str> = [(Text::Transcript, f.transcript), (Text::Recap, f.recap.as_deref()), (Text::Sms, f.sms_text)]
            .into_iter()
            .filter(|(t, _)| self.text_in.is_empty() || self.text_in.contains(t))
            .filter_map(|(_, text)| text)
            .collect();
        let lowered: Vec<String> = texts.iter().map(|t| t.to_lowercase()).collect();
        let keyword_hit = self.keywords.is_empty() || self.keywords.iter().any(|k| lowered.iter().any(|t| t.contains(k.as_str())));
        let pattern_hit = self.pattern.as_ref().is_none_or(|p| texts.iter().any(|t| p.regex.is_match(t)));
        keyword_hit && pattern_hit
    }
}

/// When a task is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// This many minutes after the event.
    AfterMinutes(u32),
    /// The next day (or `days` later) at this local time, in the configured time zone.
    DaysLaterAt { days: u32, hour: u32, minute: u32 },
}

impl Due {
    /// The due date, ISO 8601 with the zone's offset.
    pub fn at(self, event_ms: i64, zone: &Zone) -> String {
        let ms = match self {
            Due::AfterMinutes(m) => event_ms.saturating_add(i64::from(m) * 60_000),
            Due::DaysLaterAt { days, hour, minute } => zone.local_time_on_day_after(event_ms, days, hour, minute),
        };
        zone.format_iso(ms)
    }
}

/// The names a task title or body may use.
pub const TASK_PLACEHOLDERS: &[&str] = &["contact_name", "phone", "direction", "outcome", "duration", "agent", "call_id", "recap_summary", "sms_text", "rule"];

#[derive(Debug, Clone, PartialEq)]
pub struct TaskTemplate {
    pub title: Template,
    pub body: Option<Template>,
    pub assigned_to: Option<String>,
    pub due: Due,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpRule {
    pub name: String,
    pub when: Conditions,
    pub task: TaskTemplate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagRule {
    pub name: String,
    pub when: Conditions,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

/// Dialpad Ai recap action items as tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionItems {
    pub create_tasks: bool,
    pub assigned_to: Option<String>,
    pub due: Due,
}

/// The automation name under which recap action items are recorded as done.
pub const ACTION_ITEMS: &str = "recap action items";

const RULE_KEYS: &[&str] = &["name", "when", "task", "add", "remove"];
const WHEN_KEYS: &[&str] = &["on", "outcomes", "direction", "min_duration_seconds", "max_duration_seconds", "keywords", "pattern", "text_in", "labels"];
const TASK_KEYS: &[&str] = &["title", "body", "assigned_to", "due"];

pub(crate) fn read_follow_up_rules(r: &mut Reader, value: Option<&Value>, path: &str) -> Vec<FollowUpRule> {
    let mut rules = Vec::new();
    for (path, item) in r.list(value, path) {
        let Some(obj) = r.object(item, &path, RULE_KEYS) else { continue };
        let name = rule_name(r, obj, &path, &rules.iter().map(|x: &FollowUpRule| x.name.clone()).collect::<Vec<_>>());
        let when = read_conditions(r, obj.get("when"), &format!("{path}/when"));
        if obj.contains_key("add") || obj.contains_key("remove") {
            r.problem(&path, "a follow-up rule makes a task; tags belong in tag_rules");
        }
        let task = match obj.get("task") {
            Some(t) => read_task(r, t, &format!("{path}/task"), true),
            None => {
                r.problem(&format!("{path}/task"), "required: the task to create (at least a title)");
                None
            }
        };
        if let (Some(name), Some(when), Some(task)) = (name, when, task) {
            rules.push(FollowUpRule { name, when, task });
        }
    }
    rules
}

pub(crate) fn read_tag_rules(r: &mut Reader, value: Option<&Value>, path: &str) -> Vec<TagRule> {
    let mut rules = Vec::new();
    for (path, item) in r.list(value, path) {
        let Some(obj) = r.object(item, &path, RULE_KEYS) else { continue };
        let name = rule_name(r, obj, &path, &rules.iter().map(|x: &TagRule| x.name.clone()).collect::<Vec<_>>());
        let when = read_conditions(r, obj.get("when"), &format!("{path}/when"));
        if obj.contains_key("task") {
            r.problem(&format!("{path}/task"), "a tag rule adds or removes tags; tasks belong in follow_up_rules");
        }
        let add = r.strings(obj.get("add"), &format!("{path}/add"));
        let remove = r.strings(obj.get("remove"), &format!("{path}/remove"));
        if add.is_empty() && remove.is_empty() {
            r.problem(&path, "a tag rule needs tags to add or to remove");
        }
        if let (Some(name), Some(when)) = (name, when) {
            rules.push(TagRule { name, when, add, remove });
        }
    }
    rules
}

pub(crate) fn read_action_items(r: &mut Reader, value: Option<&Value>, path: &str) -> ActionItems {
    let mut items = ActionItems { create_tasks: true, assigned_to: None, due: Due::AfterMinutes(24 * 60) };
    let Some(value) = value.filter(|v| !v.is_null()) else { return items };
    let Some(obj) = r.object(value, path, &["create_tasks", "assigned_to", "due"]) else { return items };
    items.create_tasks = r.boolean(obj.get("create_tasks"), &format!("{path}/create_tasks")).unwrap_or(true);
    items.assigned_to = r.string(obj.get("assigned_to"), &format!("{path}/assigned_to"));
    if let Some(due) = obj.get("due") {
        items.due = read_due(r, due, &format!("{path}/due")).unwrap_or(items.due);
    }
    items
}

fn rule_name(r: &mut Reader, obj: &serde_json::Map<String, Value>, path: &str, taken: &[String]) -> Option<String> {
    let name = r.string(obj.get("name"), &format!("{path}/name"));
    match name {
        None => r.problem(&format!("{path}/name"), "required: a name for the rule (it is shown on the call's note when it fires)"),
        Some(ref n) if n.contains(',') || n == ACTION_ITEMS => r.problem(&format!("{path}/name"), "must not contain a comma or be \"recap action items\""),
        Some(ref n) if taken.contains(n) => r.problem(&format!("{path}/name"), format!("another rule is already named \"{n}\"")),
        _ => {}
    }
    name
}

fn read_conditions(r: &mut Reader, value: Option<&Value>, path: &str) -> Option<Conditions> {
    let Some(value) = value else {
        r.problem(path, "required: the conditions under which the rule fires");
        return None;
    };
    let obj = r.object(value, path, WHEN_KEYS)?;
    let at = |key: &str| format!("{path}/{key}");
    let on = match r.string(obj.get("on"), &at("on")).as_deref() {
        None | Some("call") => On::Call,
        Some("sms") => On::Sms,
        Some(_) => {
            r.problem(&at("on"), "must be \"call\" or \"sms\"");
            On::Call
        }
    };
    let outcomes = r.strings(obj.get("outcomes"), &at("outcomes"));
    for (i, o) in outcomes.iter().enumerate() {
        if !["completed", "missed", "voicemail"].contains(&o.as_str()) {
            r.problem(&format!("{}/{i}", at("outcomes")), "must be \"completed\", \"missed\" or \"voicemail\"");
        }
    }
    let direction = match r.string(obj.get("direction"), &at("direction")).as_deref() {
        None => None,
        Some("inbound") => Some(Direction::Inbound),
        Some("outbound") => Some(Direction::Outbound),
        Some(_) => {
            r.problem(&at("direction"), "must be \"inbound\" or \"outbound\"");
            None
        }
    };
    let min_seconds = r.uint(obj.get("min_duration_seconds"), &at("min_duration_seconds"), 0, 86_400);
    let max_seconds = r.uint(obj.get("max_duration_seconds"), &at("max_duration_seconds"), 0, 86_400);
    if let (Some(min), Some(max)) = (min_seconds, max_seconds) {
        if min > max {
            r.problem(&at("max_duration_seconds"), "must not be less than min_duration_seconds");
        }
    }
    let keywords: Vec<String> = r.strings(obj.get("keywords"), &at("keywords")).iter().map(|k| k.to_lowercase()).collect();
    let pattern = r.string(obj.get("pattern"), &at("pattern")).and_then(|source| {
        match regex_lite::RegexBuilder::new(&source).case_insensitive(true).size_limit(1 << 20).build() {
            Ok(regex) => Some(Pattern { source, regex }),
            Err(e) => {
                r.problem(&at("pattern"), format!("not a valid regular expression: {e}"));
                None
            }
        }
    });
    let mut text_in = Vec::new();
    for (i, t) in r.strings(obj.get("text_in"), &at("text_in")).iter().enumerate() {
        match t.as_str() {
            "transcript" => text_in.push(Text::Transcript),
            "recap" => text_in.push(Text::Recap),
            "sms" => text_in.push(Text::Sms),
            _ => r.problem(&format!("{}/{i}", at("text_in")), "must be \"transcript\", \"recap\" or \"sms\""),
        }
    }
    let labels = r.strings(obj.get("labels"), &at("labels"));
    if on == On::Sms {
        for key in ["outcomes", "min_duration_seconds", "max_duration_seconds", "labels"] {
            if obj.contains_key(key) {
                r.problem(&at(key), "applies to calls only (this rule is \"on\": \"sms\")");
            }
        }
        if text_in.iter().any(|t| *t != Text::Sms) {
            r.problem(&at("text_in"), "a message has only its text: use \"sms\"");
        }
    } else if text_in.contains(&Text::Sms) {
        r.problem(&at("text_in"), "a call has no SMS text: use \"transcript\" or \"recap\"");
    }
    if obj.keys().all(|k| k == "on") {
        r.problem(path, "needs at least one condition besides \"on\" (a rule that always fires is a mistake more often than not)");
    }
    Some(Conditions { on, outcomes, direction, min_seconds, max_seconds, keywords, pattern, text_in, labels })
}

fn read_task(r: &mut Reader, value: &Value, path: &str, title_required: bool) -> Option<TaskTemplate> {
    let obj = r.object(value, path, TASK_KEYS)?;
    let template = |r: &mut Reader, key: &str| -> Option<Template> {
        let source = r.string(obj.get(key), &format!("{path}/{key}"))?;
        Template::parse(&source, TASK_PLACEHOLDERS).map_err(|e| r.problem(&format!("{path}/{key}"), e)).ok()
    };
    let title = template(r, "title");
    let body = template(r, "body");
    if title.is_none() && title_required && !obj.contains_key("title") {
        r.problem(&format!("{path}/title"), "required: the task's title (placeholders such as {{contact_name}} allowed)");
    }
    let assigned_to = r.string(obj.get("assigned_to"), &format!("{path}/assigned_to"));
    let due = match obj.get("due") {
        None => Some(Due::AfterMinutes(60)),
        Some(d) => read_due(r, d, &format!("{path}/due")),
    };
    Some(TaskTemplate { title: title?, body, assigned_to, due: due? })
}

fn read_due(r: &mut Reader, value: &Value, path: &str) -> Option<Due> {
    let obj = r.object(value, path, &["after_minutes", "next_day_at", "days_later"])?;
    if let Some(minutes) = obj.get("after_minutes") {
        if obj.len() > 1 {
            r.problem(path, "use either after_minutes or next_day_at (with days_later)");
        }
        return r.uint(Some(minutes), &format!("{path}/after_minutes"), 0, 525_600).map(|m| Due::AfterMinutes(m as u32));
    }
    let days = r.uint(obj.get("days_later"), &format!("{path}/days_later"), 1, 365).unwrap_or(1) as u32;
    let at = r.string(obj.get("next_day_at"), &format!("{path}/next_day_at"));
    let clock = at.as_deref().and_then(|t| t.split_once(':')).and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)));
    match clock {
        Some((hour @ 0..=23, minute @ 0..=59)) if at.as_ref().is_some_and(|t| t.len() == 5) => Some(Due::DaysLaterAt { days, hour, minute }),
        _ => {
            r.problem(&format!("{path}/next_day_at"), "required unless after_minutes is given: a local time \"HH:MM\" (24-hour)");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions(v: Value) -> Result<Conditions, Vec<String>> {
        let mut r = Reader::default();
        let c = read_conditions(&mut r, Some(&v), "/w");
        if r.problems.is_empty() {
            Ok(c.unwrap())
        } else {
            Err(r.problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect())
        }
    }

    fn call(outcome: &'static str, seconds: u64, transcript: Option<&'static str>) -> Facts<'static> {
        Facts { outcome, direction: Some(Direction::Inbound), talk_seconds: Some(seconds), transcript, ..Facts::default() }
    }

    #[test]
    fn each_condition_kind_decides() {
        let missed = conditions(json!({"outcomes": ["missed", "voicemail"]})).unwrap();
        assert!(missed.matches(&call("missed", 0, None)));
        assert!(!missed.matches(&call("completed", 90, None)));

        let long = conditions(json!({"min_duration_seconds": 60, "direction": "inbound"})).unwrap();
        assert!(long.matches(&call("completed", 61, None)));
        assert!(!long.matches(&call("completed", 59, None)));
        let short = conditions(json!({"max_duration_seconds": 30})).unwrap();
        assert!(short.matches(&call("completed", 12, None)) && !short.matches(&call("completed", 31, None)));

        let pricing = conditions(json!({"keywords": ["Annual Pricing", "quote"], "text_in": ["transcript"]})).unwrap();
        assert!(pricing.matches(&call("completed", 1, Some("They asked about ANNUAL pricing today"))));
        assert!(!pricing.matches(&call("completed", 1, None)));

        let seats = conditions(json!({"pattern": r"\b\d+[- ]seats?\b"})).unwrap();
        assert!(seats.matches(&Facts { recap: Some("moving their 12-seat plan".into()), ..call("completed", 1, None) }));
        assert!(!seats.matches(&call("completed", 1, Some("no numbers here"))));

        let labelled = conditions(json!({"labels": ["Sales"]})).unwrap();
        let labels = ["sales".to_string()];
        assert!(labelled.matches(&Facts { labels: &labels, ..call("completed", 1, None) }));
        assert!(!labelled.matches(&call("completed", 1, None)));

        let sms = conditions(json!({"on": "sms", "keywords": ["stop"]})).unwrap();
        assert!(sms.matches(&Facts { sms: true, sms_text: Some("Please STOP texting"), ..Facts::default() }));
        assert!(!sms.matches(&call("completed", 1, Some("stop"))));
    }

    #[test]
    fn bad_conditions_are_reported_at_their_paths() {
        let problems =
            conditions(json!({"on": "fax", "outcomes": ["lost"], "pattern": "(unclosed", "min_duration_seconds": 10, "max_duration_seconds": 5, "colour": 1}))
                .unwrap_err();
        assert_eq!(
            problems.iter().map(|p| p.split(':').next().unwrap()).collect::<Vec<_>>(),
            vec!["/w/colour", "/w/on", "/w/outcomes/0", "/w/max_duration_seconds", "/w/pattern"]
        );
        assert!(conditions(json!({"on": "sms", "outcomes": ["missed"]})).unwrap_err()[0].starts_with("/w/outcomes: applies to calls only"));
        assert!(conditions(json!({"on": "call"})).unwrap_err()[0].starts_with("/w: needs at least one condition"));
    }

    #[test]
    fn due_dates_are_in_the_configured_zone() {
        let ny = super::super::zone::zone("America/New_York").unwrap();
        let ended = 1_773_155_305_067; // 2026-03-10T15:08:25Z
        assert_eq!(Due::AfterMinutes(60).at(ended, &ny), "2026-03-10T12:08:25-04:00");
        assert_eq!(Due::DaysLaterAt { days: 1, hour: 9, minute: 0 }.at(ended, &ny), "2026-03-11T09:00:00-04:00");
    }
}
