//! Checks real responses, and the webhooks' bodies, against the checked-in OpenAPI document
//! (the subset of JSON Schema it uses: $ref, type, const, properties, required, items,
//! additionalProperties).

use serde_json::Value;

use super::Reply;

pub struct Spec(Value);

impl Spec {
    pub fn load() -> Spec {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/openapi.json");
        let text = std::fs::read_to_string(path).expect("reading openapi.json");
        Spec(serde_json::from_str(&text).expect("openapi.json is JSON"))
    }

    pub fn document(&self) -> &Value {
        &self.0
    }

    /// Panics unless `reply` is a documented response of `method path` whose body fits.
    pub fn check(&self, method: &str, path: &str, reply: &Reply) {
        let op = &self.0["paths"][path][method.to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {path} is not in the OpenAPI document"
        );
        let response = &op["responses"][reply.status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} answered {}, which the document does not list: {}",
            reply.status,
            reply.raw_body
        );
        for (name, _) in response["headers"].as_object().into_iter().flatten() {
            assert!(
                reply.header(name).is_some(),
                "{method} {path} {}: header {name} missing",
                reply.status
            );
        }
        let schema = &response["content"]["application/json"]["schema"];
        if let Err(e) = self.validate(schema, &reply.json(), "body") {
            panic!(
                "{method} {path} {}: {e}\nbody: {}",
                reply.status, reply.raw_body
            );
        }
    }

    /// Panics unless the document's `webhooks` section describes event `body` (by its
    /// `type`) with the three Standard Webhooks headers, and the body fits its schema.
    pub fn check_webhook(&self, body: &Value) {
        let kind = body["type"].as_str().unwrap_or_default();
        let op = &self.0["webhooks"][kind]["post"];
        assert!(
            op.is_object(),
            "webhook {kind} is not in the OpenAPI document"
        );
        let headers: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                self.resolve_parameter(p)["name"]
                    .as_str()
                    .unwrap_or_default()
            })
            .collect();
        for header in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            assert!(
                headers.contains(&header),
                "{kind}: header {header} not described"
            );
        }
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        if let Err(e) = self.validate(schema, body, "body") {
            panic!("webhook {kind}: {e}\nbody: {body}");
        }
    }

    fn resolve_parameter<'a>(&'a self, p: &'a Value) -> &'a Value {
        match p["$ref"].as_str() {
            Some(r) => {
                &self.0["components"]["parameters"]
                    [r.trim_start_matches("#/components/parameters/")]
            }
            None => p,
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                &self.0["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    fn validate(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        let fits = match schema["type"].as_str() {
            None => true,
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            Some(other) => return Err(format!("{at}: unsupported schema type {other}")),
        };
        if !fits {
            return Err(format!("{at}: {value} is not of type {}", schema["type"]));
        }
        if let Some(constant) = schema.get("const") {
            if constant != value {
                return Err(format!("{at}: {value} is not {constant}"));
            }
        }
        for field in schema["required"].as_array().into_iter().flatten() {
            let field = field.as_str().unwrap_or_default();
            if value.get(field).is_none() {
                return Err(format!("{at}: required field {field} missing"));
            }
        }
        let props = schema["properties"].as_object();
        if let (Some(props), Some(obj)) = (props, value.as_object()) {
            for (k, v) in obj {
                match props.get(k) {
                    Some(s) => self.validate(s, v, &format!("{at}.{k}"))?,
                    None if schema["additionalProperties"] == Value::Bool(false) => {
                        return Err(format!("{at}: field {k} is not in the schema"))
                    }
                    None => {}
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
            for (i, v) in arr.iter().enumerate() {
                self.validate(items, v, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }
}
