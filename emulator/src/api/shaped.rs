//! What the request asks of an answer's form: JSON for `response_format`, a cut for
//! `max_tokens` and `stop`, arguments that fit a tool's schema, the tool `auto` would pick.
//! Pure functions of the request; the emulator's text says what it received.

use serde_json::{Map, Value, json};

/// The answer's text and why it ended.
pub(crate) struct Shaped {
    pub(crate) text: String,
    pub(crate) finish: &'static str,
}

/// Shapes `answer` by the request's parameters (`params`: the compatible body, or the native
/// `parameters`): `response_format` `json_object` (an object holding the text) or `json_schema`
/// (a value valid against the schema), then `stop` (cut before the first stop string), then
/// `max_tokens` (cut at that many tokens, `finish_reason` `length`).
pub(crate) fn shape(params: Option<&Value>, answer: &str, prompt: &str) -> Shaped {
    let param = |name: &str| params.and_then(|p| p.get(name));
    let format = param("response_format");
    let kind = format.and_then(|f| f.get("type")).and_then(Value::as_str);
    let json = matches!(kind, Some("json_schema" | "json_object"));
    let mut text = match kind {
        Some("json_schema") => {
            let schema = format
                .and_then(|f| f.pointer("/json_schema/schema"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            example(&schema, prompt, 0).to_string()
        }
        Some("json_object") => json!({"answer": answer}).to_string(),
        _ => answer.to_owned(),
    };
    // Stop strings do not cut JSON: a cut object is no answer to a format that asked for one.
    if !json {
        let stops: Vec<String> = match param("stop") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        if let Some(at) = stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            text.truncate(at);
        }
    }
    let limit = param("max_tokens")
        .or_else(|| param("max_completion_tokens"))
        .and_then(Value::as_u64);
    if let Some(limit) = limit
        && crate::media::text_tokens(&text) > limit
    {
        // About four characters a token, as the usage counts them.
        let keep = usize::try_from(limit.saturating_mul(4)).unwrap_or(usize::MAX);
        text = text.chars().take(keep).collect();
        return Shaped {
            text,
            finish: "length",
        };
    }
    Shaped {
        text,
        finish: "stop",
    }
}

/// A value valid against a JSON schema (the subset structured outputs use: `type`, `properties`,
/// `required`, `items`, `enum`, `const`, `anyOf`/`oneOf`, `$ref` to `$defs`): every property
/// given, strings carrying the prompt.
pub(crate) fn example(schema: &Value, prompt: &str, depth: usize) -> Value {
    example_in(schema, schema, prompt, depth)
}

fn example_in(root: &Value, schema: &Value, prompt: &str, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer));
        return target.map_or(Value::Null, |t| example_in(root, t, prompt, depth + 1));
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(first) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
        .and_then(|options| {
            options
                .iter()
                .find(|o| o.get("type").and_then(Value::as_str) != Some("null"))
                .or_else(|| options.first())
        })
    {
        return example_in(root, first, prompt, depth + 1);
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // A list of types: the first that is not null.
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut object = Map::new();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    object.insert(name.clone(), example_in(root, property, prompt, depth + 1));
                }
            }
            Value::Object(object)
        }
        "array" => {
            let item = schema.get("items").map_or(Value::Null, |items| {
                example_in(root, items, prompt, depth + 1)
            });
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1);
            Value::Array(vec![item; usize::try_from(min.clamp(1, 8)).unwrap_or(1)])
        }
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(0)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0)),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => json!(prompt),
    }
}

/// The tool `auto` picks: the one whose name and description share the most words with the
/// prompt, the first on a tie (no model runs; this one is at least about the question).
pub(crate) fn pick_tool<'a>(tools: &'a [Value], prompt: &str) -> Option<&'a Value> {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 2)
            .map(str::to_lowercase)
            .collect()
    };
    let asked = words(prompt);
    let score = |tool: &Value| {
        let function = tool.get("function").unwrap_or(tool);
        let mut text = String::new();
        for field in ["name", "description"] {
            if let Some(s) = function.get(field).and_then(Value::as_str) {
                text.push_str(&s.replace('_', " "));
                text.push(' ');
            }
        }
        words(&text).iter().filter(|w| asked.contains(w)).count()
    };
    let mut best: Option<(&Value, usize)> = None;
    for tool in tools {
        let s = score(tool);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((tool, s));
        }
    }
    best.map(|(tool, _)| tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_gets_every_property_of_its_type() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1},
                "unit": {"enum": ["celsius", "fahrenheit"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "where": {"$ref": "#/$defs/place"},
                "maybe": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}
            },
            "required": ["city", "days", "unit", "tags", "where", "maybe"],
            "$defs": {"place": {"type": "object", "properties": {"lat": {"type": "number"}}}}
        });
        assert_eq!(
            example(&schema, "Hangzhou?", 0),
            json!({"city": "Hangzhou?", "days": 1, "unit": "celsius", "tags": ["Hangzhou?"],
                   "where": {"lat": 0.0}, "maybe": false})
        );
    }

    #[test]
    fn stop_and_max_tokens_cut_the_text() {
        let params = json!({"stop": ["media"], "max_tokens": 100});
        let shaped = shape(Some(&params), "received 2 media: a, b", "?");
        assert_eq!(
            (shaped.text.as_str(), shaped.finish),
            ("received 2 ", "stop")
        );
        let params = json!({"max_tokens": 2});
        let shaped = shape(Some(&params), "a long answer of many words", "?");
        assert_eq!(
            (shaped.text.as_str(), shaped.finish),
            ("a long a", "length")
        );
        let params = json!({"response_format": {"type": "json_object"}, "stop": "x"});
        let shaped = shape(Some(&params), "x y", "?");
        assert_eq!(shaped.text, r#"{"answer":"x y"}"#);
    }

    #[test]
    fn auto_picks_the_tool_the_prompt_is_about() {
        let tools = vec![
            json!({"type": "function", "function": {"name": "get_time", "description": "The time"}}),
            json!({"type": "function", "function": {"name": "get_weather", "description": "The weather in a city"}}),
        ];
        let picked = pick_tool(&tools, "What is the weather in Hangzhou?");
        assert_eq!(
            picked.and_then(|t| t.pointer("/function/name")),
            Some(&json!("get_weather"))
        );
        let picked = pick_tool(&tools, "Hello");
        assert_eq!(
            picked.and_then(|t| t.pointer("/function/name")),
            Some(&json!("get_time"))
        );
    }
}
