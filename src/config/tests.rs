use super::*;

#[test]
fn defaults_validate() {
    Config::default().validate().expect("defaults are valid");
}

#[test]
fn deny_entries_parse_as_networks() {
    assert_eq!(parse_net("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
    assert_eq!(parse_net("::1").unwrap().to_string(), "::1/128");
    assert!(parse_net("10.0.0.300").is_err());
}

/// Every key a user can set is shown in the shipped config.toml, with its default
/// (secrets and their `*_file` keys, which default to nothing, are shown commented out).
#[test]
fn the_shipped_config_shows_every_key_with_its_default() {
    // Durations compare by value: "24h" and "1day" are the same default.
    fn norm(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) => humantime::parse_duration(s)
                .map_or_else(|_| v.clone(), |d| serde_json::json!(d.as_millis() as u64)),
            serde_json::Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), norm(v))).collect(),
            other => other.clone(),
        }
    }
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
        match v {
            serde_json::Value::Object(map) if !map.contains_key("requests") => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            other => out.push((prefix.to_string(), norm(other))),
        }
    }
    let text = include_str!("../../config.toml");
    let shipped: serde_json::Value = Figment::from(Toml::string(text))
        .extract()
        .expect("config.toml parses");
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let (mut want, mut have) = (Vec::new(), Vec::new());
    flatten("", &defaults, &mut want);
    flatten("", &shipped, &mut have);
    let have: std::collections::HashMap<_, _> = have.into_iter().collect();
    for (key, default) in want {
        if key == "webhooks" {
            continue; // an array of tables, shown commented out (the next test)
        }
        if default.is_null() {
            assert!(
                text.contains(&format!("# {}", key.rsplit('.').next().unwrap())),
                "{key} is not shown (commented)"
            );
            continue;
        }
        let shown = have
            .get(&key)
            .unwrap_or_else(|| panic!("{key} is missing from config.toml"));
        assert_eq!(
            shown, &default,
            "{key}: config.toml shows another value than the default"
        );
    }
}

/// The commented `[[webhooks]]` example in config.toml, uncommented, is a valid endpoint
/// with every key, each showing its default (but the required ones and secret_file).
#[test]
fn the_shipped_webhook_example_shows_every_key_with_its_default() {
    let text = include_str!("../../config.toml");
    let example: String = text
        .lines()
        .skip_while(|l| *l != "# [[webhooks]]")
        .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
        .collect();
    assert!(example.starts_with("[[webhooks]]"), "the example is there");
    let shipped: Config = Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(&example))
        .extract()
        .expect("the example parses");
    let w = &shipped.webhooks[0];
    let mut shown = serde_json::to_value(w).unwrap();
    let mut default = serde_json::to_value(crate::config::Webhook::default()).unwrap();
    for required in ["name", "url", "secret", "secret_file"] {
        assert!(
            example.contains(&format!("\n{required} = ")),
            "{required} is shown"
        );
        shown[required] = serde_json::Value::Null;
        default[required] = serde_json::Value::Null;
    }
    let keys = default.as_object().unwrap().keys();
    assert!(keys
        .into_iter()
        .all(|k| example.contains(&format!("\n{k} = "))));
    assert_eq!(shown, default, "the example shows the defaults");
}

#[test]
fn the_guessing_bound_is_checked() {
    let mut c = Config::default();
    let odds = c.recovery.guessing_odds();
    assert!(
        (odds - 0.00771).abs() < 1e-9,
        "docs/security.md's 0.721 % + 0.05 %: {odds}"
    );
    c.recovery.code_length = 6;
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("recovery.code_length") && err.contains("accept_high_guessing_odds"),
        "{err}"
    );
    c.recovery.accept_high_guessing_odds = true;
    assert!(c.validate().is_ok(), "accepted knowingly");
    c.recovery.accept_high_guessing_odds = false;
    c.recovery.code_length = 12;
    c.recovery.failed_confirm_budget.requests = 0;
    assert!(c.recovery.guessing_odds().is_infinite());
    assert!(c.validate().unwrap_err().to_string().contains("unbounded"));
}

#[test]
fn the_admin_socket_path_must_fit() {
    let mut c = Config::default();
    c.storage.data_dir = std::path::PathBuf::from("/").join("d".repeat(120));
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("storage.data_dir") && err.contains("107"),
        "{err}"
    );
}

#[test]
fn validation_names_the_key() {
    let mut c = Config::default();
    c.recovery.code_length = 40;
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("recovery.code_length"), "{err}");
}

#[test]
fn log_levels_take_per_module_directives() {
    let mut c = Config::default();
    for good in [
        "debug",
        "warn, resetgate=info",
        "resetgate::outbox=trace",
        "info ",
    ] {
        c.log.level = good.into();
        assert!(c.validate().is_ok(), "{good}");
    }
    for bad in ["loud", "foo[{field}]=info", "info,"] {
        c.log.level = bad.into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("log.level"), "{bad}: {err}");
    }
}

/// The configuration reference cannot drift: every key of the configuration's types is in
/// the shipped config.toml (a commented-out key counts, as `# secret = ""` and the commented
/// `[[webhooks]]` example do) and in docs/configuration.md's reference table, and neither
/// names a key the types do not have.
#[test]
fn config_toml_and_the_reference_name_exactly_the_configurations_keys() {
    use std::collections::BTreeSet;
    /// The dotted keys of a configuration as JSON: a `{ requests, window }` rate is one key,
    /// and an array of tables (`[[webhooks]]`) has the keys of its first table.
    fn keys(prefix: &str, v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(map) if !map.contains_key("requests") => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    keys(&key, v, out);
                }
            }
            serde_json::Value::Array(tables) if tables.first().is_some_and(|t| t.is_object()) => {
                keys(prefix, &tables[0], out)
            }
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }
    fn compare(what: &str, named: &BTreeSet<String>, types: &BTreeSet<String>) {
        let missing: Vec<_> = types.difference(named).collect();
        let unknown: Vec<_> = named.difference(types).collect();
        assert!(missing.is_empty(), "{what} lacks the keys {missing:?}");
        assert!(
            unknown.is_empty(),
            "{what} names {unknown:?}, which the configuration's types do not have"
        );
    }

    let mut config = Config::default();
    config.webhooks.push(crate::config::Webhook::default());
    let mut types = BTreeSet::new();
    keys("", &serde_json::to_value(&config).unwrap(), &mut types);

    // config.toml, its commented-out keys and `[[webhooks]]` example uncommented.
    let uncommented: String = include_str!("../../config.toml")
        .lines()
        .map(|line| {
            let bare = line.strip_prefix("# ").unwrap_or(line);
            let key = bare.split_once(" = ").map_or("", |(k, _)| k);
            let is_key = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if is_key || bare == "[[webhooks]]" {
                format!("{bare}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let shipped: serde_json::Value = Figment::from(Toml::string(&uncommented))
        .extract()
        .expect("config.toml, uncommented, parses");
    let mut in_toml = BTreeSet::new();
    keys("", &shipped, &mut in_toml);
    compare("config.toml", &in_toml, &types);

    // The reference: the first cell of each row of the table under `| key | default |
    // meaning |`. A cell names one key or more: `a.b` / `a.c`, `a.b` / `c` (a sibling of
    // the first), `a.{b, c}`; `[[webhooks]]` only introduces the `webhooks.*` rows.
    let reference = include_str!("../../docs/configuration.md");
    let rows = reference
        .lines()
        .skip_while(|l| *l != "| key | default | meaning |")
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    let mut in_reference = BTreeSet::new();
    for row in rows {
        let cell = row.split('|').nth(1).unwrap_or_default();
        let mut parent = String::new();
        for name in cell.split('`').skip(1).step_by(2) {
            if name.starts_with("[[") {
                continue;
            }
            let full = if name.contains('.') {
                name.to_string()
            } else {
                format!("{parent}.{name}")
            };
            if let Some((stem, list)) = full.strip_suffix('}').and_then(|f| f.split_once('{')) {
                for item in list.split(',') {
                    in_reference.insert(format!("{stem}{}", item.trim()));
                }
            } else {
                in_reference.insert(full.clone());
            }
            if parent.is_empty() {
                parent = full.rsplit_once('.').map_or("", |(p, _)| p).to_string();
            }
        }
    }
    assert!(
        in_reference.len() > 50,
        "docs/configuration.md's reference table was not found"
    );
    compare("docs/configuration.md's reference", &in_reference, &types);
}

#[test]
fn a_non_loopback_admin_listener_needs_tls_with_both_files() {
    let mut c = Config::default();
    c.admin.listen = "0.0.0.0:9001".parse().unwrap();
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("`admin.listen`")
            && err.contains("admin.tls_cert_file")
            && err.contains("admin.tls_key_file"),
        "{err}"
    );
    c.admin.tls_cert_file = "cert.pem".into();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("`admin.tls_cert_file`"), "{err}");
    c.admin.tls_cert_file = std::path::PathBuf::new();
    c.admin.tls_key_file = "key.pem".into();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("`admin.tls_key_file`"), "{err}");
    c.admin.tls_cert_file = "cert.pem".into();
    assert!(c.validate().is_ok(), "with both files");
    c.admin.listen = "[::ffff:127.0.0.1]:9001".parse().unwrap();
    c.admin.tls_cert_file = std::path::PathBuf::new();
    c.admin.tls_key_file = std::path::PathBuf::new();
    assert!(c.validate().is_ok(), "loopback, mapped or not, needs none");
}
