//! The part of OpenAPI v3 (as a Kubernetes structural schema uses it) that
//! the SpinApp CRD's `openAPIV3Schema` needs: `type` (with `format: int32`
//! and `int64` ranges), `required`, `properties`, `additionalProperties`,
//! `items`, `enum`, `anyOf`, `pattern`, `minimum`, `maximum` and
//! `x-kubernetes-int-or-string`. A field the schema does not name is an
//! error, as `kubectl apply`'s strict field validation makes it. A keyword
//! outside this list on a node that a manifest reaches is an error too, so
//! the validator never passes what it cannot check.

use serde_json::Value;

/// Keywords that describe or annotate and constrain nothing checked here.
const ANNOTATIONS: &[&str] = &[
    "description",
    "default",
    "x-kubernetes-map-type",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
];

/// Keywords this validator checks.
const CHECKED: &[&str] = &[
    "type",
    "format",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "enum",
    "anyOf",
    "pattern",
    "minimum",
    "maximum",
    "x-kubernetes-int-or-string",
];

/// Every way `value` breaks `schema`, each as `path: problem`.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "", &mut errors);
    errors
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        errors.push(format!("{path}: the schema here is not an object"));
        return;
    };
    for keyword in schema.keys() {
        if !ANNOTATIONS.contains(&keyword.as_str()) && !CHECKED.contains(&keyword.as_str()) {
            errors.push(format!(
                "{path}: schema keyword {keyword} is not supported by this validator"
            ));
        }
    }
    let at = |path: &str| {
        if path.is_empty() {
            "(root)".to_string()
        } else {
            path.to_string()
        }
    };

    if let Some(alternatives) = schema.get("anyOf").and_then(Value::as_array) {
        let is_any = alternatives
            .iter()
            .any(|alternative| validate_at(alternative, value, path).is_empty());
        if !is_any {
            errors.push(format!("{}: matches none of anyOf", at(path)));
        }
    }
    let is_int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if is_int_or_string && !(value.is_i64() || value.is_u64() || value.is_string()) {
        errors.push(format!("{}: must be an integer or a string", at(path)));
    }
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let is_kind = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            other => {
                errors.push(format!("{}: unknown schema type {other}", at(path)));
                return;
            }
        };
        if !is_kind {
            errors.push(format!("{}: must be of type {kind}, is {value}", at(path)));
            return;
        }
    }
    if let (Some(format), Some(number)) =
        (schema.get("format").and_then(Value::as_str), value.as_i64())
    {
        let is_in_range = match format {
            "int32" => i32::try_from(number).is_ok(),
            _ => true,
        };
        if !is_in_range {
            errors.push(format!("{}: {number} is outside {format}", at(path)));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            errors.push(format!("{}: {value} is not one of {allowed:?}", at(path)));
        }
    }
    if let (Some(pattern), Some(text)) = (
        schema.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) {
        match regex::Regex::new(pattern) {
            Ok(regex) if regex.is_match(text) => {}
            Ok(_) => errors.push(format!("{}: {text:?} does not match {pattern}", at(path))),
            Err(error) => errors.push(format!(
                "{}: schema pattern does not compile: {error}",
                at(path)
            )),
        }
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64) {
            if number < minimum {
                errors.push(format!("{}: {number} is below {minimum}", at(path)));
            }
        }
        if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64) {
            if number > maximum {
                errors.push(format!("{}: {number} is above {maximum}", at(path)));
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    errors.push(format!("{}: required field {name} is missing", at(path)));
                }
            }
        }
        for (name, field) in object {
            let field_path = format!("{path}.{name}");
            match (
                properties.and_then(|properties| properties.get(name)),
                schema.get("additionalProperties"),
            ) {
                (Some(field_schema), _) => check(field_schema, field, &field_path, errors),
                (None, Some(Value::Bool(true))) => {}
                (None, Some(additional @ Value::Object(_))) => {
                    check(additional, field, &field_path, errors)
                }
                // A schema with neither lists no fields at all: an object of
                // anything (`metadata`, say) only when it names no properties.
                (None, None) if properties.is_none() => {}
                (None, _) => errors.push(format!("{field_path}: unknown field")),
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            check(items, item, &format!("{path}[{index}]"), errors);
        }
    }
}

fn validate_at(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, path, &mut errors);
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string"},
                        "replicas": {"type": "integer", "format": "int32"},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "limits": {
                            "type": "object",
                            "additionalProperties": {
                                "anyOf": [{"type": "integer"}, {"type": "string"}],
                                "pattern": "^[0-9]+(Mi|m)?$",
                                "x-kubernetes-int-or-string": true
                            }
                        },
                        "variables": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}}
                            }
                        }
                    }
                },
                "metadata": {"type": "object"}
            }
        })
    }

    #[test]
    fn a_valid_object_passes() {
        let value = json!({"metadata": {"name": "x", "labels": {"a": "b"}},
                           "spec": {"image": "i", "replicas": 2, "mode": "a",
                                    "limits": {"cpu": "100m", "memory": 5},
                                    "variables": [{"name": "v"}]}});
        assert_eq!(validate(&schema(), &value), Vec::<String>::new());
    }

    #[test]
    fn each_broken_rule_is_named() {
        let cases = [
            (json!({}), "(root): required field spec is missing"),
            (
                json!({"spec": {}}),
                ".spec: required field image is missing",
            ),
            (
                json!({"spec": {"image": 3}}),
                ".spec.image: must be of type string",
            ),
            (
                json!({"spec": {"image": "i", "replicas": "2"}}),
                ".spec.replicas: must be of type integer",
            ),
            (
                json!({"spec": {"image": "i", "replicas": 4_000_000_000_u64}}),
                ".spec.replicas: 4000000000 is outside int32",
            ),
            (
                json!({"spec": {"image": "i", "mode": "c"}}),
                ".spec.mode: \"c\" is not one of",
            ),
            (
                json!({"spec": {"image": "i", "replica": 2}}),
                ".spec.replica: unknown field",
            ),
            (
                json!({"spec": {"image": "i", "limits": {"cpu": "lots"}}}),
                ".spec.limits.cpu: \"lots\" does not match",
            ),
            (
                json!({"spec": {"image": "i", "limits": {"cpu": true}}}),
                ".spec.limits.cpu: matches none of anyOf",
            ),
            (
                json!({"spec": {"image": "i", "variables": [{"value": "x"}]}}),
                ".spec.variables[0]: required field name is missing",
            ),
        ];
        for (value, expected) in cases {
            let errors = validate(&schema(), &value);
            assert!(
                errors.iter().any(|error| error.starts_with(expected)),
                "{value}: expected {expected:?}, got {errors:?}"
            );
        }
    }

    #[test]
    fn a_keyword_it_cannot_check_is_an_error_not_a_pass() {
        let schema = json!({"type": "string", "maxLength": 3});
        let errors = validate(&schema, &json!("abcdef"));
        assert!(
            errors[0].contains("maxLength is not supported"),
            "{errors:?}"
        );
    }
}
