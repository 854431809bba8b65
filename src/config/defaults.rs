//! The built-in defaults of every section: what `config.toml` shows and what applies
//! where a key is left out.

use std::path::PathBuf;
use std::time::Duration;

use super::sections::*;
use super::HttpUrl;

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:9000".parse().expect("literal address"),
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024,
            max_connections: 1024,
            max_connections_per_client: 64,
            write_timeout: Duration::from_secs(10),
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(10),
            secret: None,
            secret_file: None,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            client_ip_header: ClientIpHeader::XForwardedFor,
        }
    }
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: "127.0.0.1:9001".parse().expect("literal address"),
            max_body_bytes: 64 * 1024 * 1024,
            token: None,
            token_file: None,
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
            token_failures: Rate {
                requests: 10,
                window: Duration::from_secs(900),
            },
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            data_dir: PathBuf::from("./data"),
            cache_capacity_mb: 4,
            durability: Durability::Fsync,
            flush_every: Duration::from_millis(500),
            sweep_interval: Duration::from_secs(60),
            min_free: 64_000_000,
        }
    }
}

impl Default for Mail {
    fn default() -> Self {
        Mail {
            transport: Transport::File,
            from: "resetgate <noreply@localhost>".into(),
            reply_to: String::new(),
            product_name: "your account".into(),
            support_contact: String::new(),
            templates_dir: PathBuf::new(),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            batch: 16,
            smtp: Smtp::default(),
            file: FileMail::default(),
            dkim: Dkim::default(),
            dns_resolver: String::new(),
            outbound_ips: Vec::new(),
        }
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: "localhost".into(),
            port: 587,
            security: Security::Starttls,
            username: String::new(),
            password: None,
            password_file: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            helo_name: String::new(),
            ca_file: PathBuf::new(),
            connections: 1,
        }
    }
}

impl Default for FileMail {
    fn default() -> Self {
        FileMail {
            dir: PathBuf::new(),
        }
    }
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            code_length: 12,
            code_ttl: Duration::from_secs(600),
            resend_cooldown: Duration::from_secs(60),
            confirm_window: Duration::from_secs(600),
            require_session: false,
            max_account_failures: 100,
            failures_forgotten_after: Duration::from_secs(7 * 24 * 3600),
            failed_confirm_budget: Rate {
                requests: 10_000,
                window: Duration::from_secs(3600),
            },
            hide_unknown_accounts: false,
            accept_high_guessing_odds: false,
        }
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords {
            pbkdf2_iterations: 600_000,
            min_length: 15,
            max_length: 256,
            max_concurrent_hashes: 2,
            min_guess_score: 3,
            breach_api: HttpUrl::default(),
            breach_timeout: Duration::from_secs(2),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let rate = |requests, secs| Rate {
            requests,
            window: Duration::from_secs(secs),
        };
        Limits {
            forgot_password: EndpointLimits {
                per_client: rate(30, 60),
                per_email: rate(30, 3600),
                per_email_per_client: rate(3, 3600),
                global: rate(3_000, 60),
            },
            confirm_otp_reset: EndpointLimits {
                per_client: rate(30, 60),
                per_email: rate(20, 3600),
                per_email_per_client: Rate::off(),
                global: rate(6_000, 60),
            },
            password_reset: EndpointLimits {
                per_client: rate(30, 60),
                per_email: rate(10, 3600),
                per_email_per_client: Rate::off(),
                global: rate(3_000, 60),
            },
            confirm_failures_per_client: rate(10, 900),
            reset_failures_per_client: rate(10, 900),
            reset_failures_per_email: rate(10, 3600),
            mail_reserve: rate(6_000, 60),
            networks: Networks::default(),
            max_tracked_keys: 100_000,
        }
    }
}

impl Default for Networks {
    fn default() -> Self {
        Networks {
            ipv4_24: 8,
            ipv6_56: 8,
            ipv6_48: 32,
        }
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            deny: Vec::new(),
            allow_only: Vec::new(),
            ban_after: Rate {
                requests: 20,
                window: Duration::from_secs(600),
            },
            ban_for: Duration::from_secs(900),
            ban_max: Duration::from_secs(24 * 3600),
        }
    }
}

impl Default for History {
    fn default() -> Self {
        History {
            per_account: 50,
            keep: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for Webhook {
    fn default() -> Self {
        Webhook {
            name: String::new(),
            url: HttpUrl::default(),
            secret: None,
            secret_file: None,
            events: crate::events::Kind::ALL.to_vec(),
            include_password_hash: false,
            timeout: Duration::from_secs(10),
            max_age: Duration::from_secs(3 * 24 * 3600),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(3600),
            ca_file: PathBuf::new(),
        }
    }
}

impl Default for Web {
    fn default() -> Self {
        Web {
            enabled: true,
            path: "/reset".into(),
            public_url: String::new(),
            product_name: String::new(),
            accent_color: "#0b57d0".into(),
            logo_file: PathBuf::new(),
            templates_dir: PathBuf::new(),
        }
    }
}
