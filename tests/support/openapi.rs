//! Checks real responses against the checked-in OpenAPI document (the subset of JSON
//! Schema it uses: $ref, type, properties, required, items, additionalProperties).

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
