//! What the benchmarks share: reading the service's address from its log, and one
//! keep-alive HTTP/1.1 connection that times forgot-password requests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The public address from the "resetgate ready" log line.
pub fn ready_address(log: &mut impl BufRead) -> SocketAddr {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            log.read_line(&mut line).expect("service log") > 0,
            "the service exited"
        );
        if let Some(rest) = line.split("public=").nth(1) {
            return rest
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .expect("address");
        }
    }
}

/// One keep-alive HTTP/1.1 connection, answers read by Content-Length.
pub struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream: BufReader::new(stream),
        }
    }

    pub fn forgot(&mut self, email: &str) -> Duration {
        let body = format!("{{\"email\": \"{email}\"}}");
        let req = format!(
            "POST /api/v1/user/forgot-password HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let started = Instant::now();
        self.stream
            .get_mut()
            .write_all(req.as_bytes())
            .expect("send");
        let (status, length) = self.head();
        let mut rest = vec![0; length];
        self.stream.read_exact(&mut rest).expect("body");
        let took = started.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&rest));
        took
    }

    fn head(&mut self) -> (u16, usize) {
        let (mut status, mut length, mut line) = (0, 0, String::new());
        loop {
            line.clear();
            self.stream.read_line(&mut line).expect("header line");
            let l = line.trim_end();
            if l.is_empty() {
                return (status, length);
            }
            if let Some(code) = l.strip_prefix("HTTP/1.1 ") {
                status = code[..3].parse().expect("status");
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().expect("length");
                }
            }
        }
    }
}
