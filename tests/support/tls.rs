//! The admin API over TLS as an application on another host reaches it: a certificate for
//! 127.0.0.1 from a private CA made in the test run (openssl, [`super::private_ca`]), and a
//! real TLS client, Python's `ssl` and `http.client` (tests/support/tls_client.py).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::json;

use super::Setup;

/// The CA the client trusts, and the admin listener's certificate and key (mode 0600).
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    pub fn make(dir: &Path) -> Certs {
        use std::os::unix::fs::PermissionsExt;
        let (ca, cert, key) = super::private_ca(dir, "admin");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        Certs { ca, cert, key }
    }

    /// The `[admin]` keys that name the certificate and the key.
    pub fn keys(&self) -> String {
        format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
            self.cert.display(),
            self.key.display()
        )
    }
}

/// A test setup (with `extra` TOML) whose admin listener is on `ip` (a free port) and speaks
/// TLS with a certificate made for this test.
pub fn setup(extra: &str, ip: &str) -> (Setup, Certs) {
    let setup = Setup::new(extra);
    let certs = Certs::make(setup.dir.path());
    let text = std::fs::read_to_string(&setup.config).expect("the test config");
    let admin = "[admin]\nlisten = \"127.0.0.1:";
    assert!(
        text.contains(admin),
        "Setup writes the admin listener first"
    );
    let with_tls = format!("[admin]\n{}listen = \"{ip}:", certs.keys());
    std::fs::write(&setup.config, text.replacen(admin, &with_tls, 1)).expect("the config");
    (setup, certs)
}

/// One request for [`calls`]; each goes on a fresh connection.
#[derive(Default, Clone)]
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The bearer token (none: no `Authorization` header).
    pub token: Option<&'a str>,
    pub body: &'a str,
    /// The local address to connect from (another loopback address: another client).
    pub source: Option<&'a str>,
    /// Offer only this TLS version ("1.2", "1.1"); None: the client's defaults.
    pub version: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str, token: Option<&'a str>) -> Call<'a> {
        Call {
            method: "GET",
            path,
            token,
            ..Call::default()
        }
    }

    pub fn with_path(self, path: &'a str) -> Call<'a> {
        Call { path, ..self }
    }
}

/// What the client got: the status, the headers (names in lower case), the body and the
/// TLS version, or the error when no answer came.
#[derive(Debug, Deserialize)]
pub struct Answer {
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub headers: HashMap<String, String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub version: String,
    pub error: Option<String>,
}

/// Sends `calls` to `https://127.0.0.1:<port>`, trusting only `certs.ca`; one answer each.
pub fn calls(certs: &Certs, port: u16, calls: &[Call]) -> Vec<Answer> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_client.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(&certs.ca)
        .args(["127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let mut input = String::new();
    for c in calls {
        let line = json!({
            "method": c.method, "path": c.path, "token": c.token, "body": c.body,
            "source": c.source, "version": c.version,
        });
        input.push_str(&format!("{line}\n"));
    }
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).expect("the requests");
    drop(stdin);
    let out = child.wait_with_output().expect("the client ran");
    assert!(out.status.success(), "tls_client.py failed");
    let answers: Vec<Answer> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON answer"))
        .collect();
    assert_eq!(answers.len(), calls.len(), "one answer per request");
    answers
}

/// One request; see [`calls`].
pub fn call(certs: &Certs, port: u16, call: Call) -> Answer {
    calls(certs, port, &[call]).remove(0)
}

/// The token the service generated, without `Bearer `.
pub fn token(setup: &Setup) -> String {
    let auth = setup.admin_auth();
    auth.trim_start_matches("Bearer ").to_string()
}
