//! The open connections of one listener: how many each client key holds, which are idle,
//! and a way to close the idle ones when a new client needs the room.
//!
//! A connection is idle while no request of it is being handled: a keep-alive connection
//! between requests, or a fresh one that has not sent its first request yet. Closing an idle
//! connection loses no answer; its client reconnects when it next has something to ask.
//! Request handling touches only the connection's own atomics; the registry's lock is taken
//! when a connection opens or closes, and when room is made.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// One open connection's state, shared by its task and the registry.
pub(super) struct Conn {
    /// The client key (IPv4 address or IPv6 /64) of a TCP peer; None for the local socket.
    key: Option<IpAddr>,
    /// Requests being handled now.
    busy: AtomicU32,
    /// When the connection last turned idle, in µs after the registry's start.
    idle_since: AtomicU64,
    /// Set once the registry asked it to close, so that it is not chosen twice.
    closing: AtomicBool,
    /// Wakes the connection's task to close it gracefully.
    pub(super) close: Notify,
    registry: Arc<Registry>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    conns: HashMap<u64, Arc<Conn>>,
    per_key: HashMap<IpAddr, usize>,
}

pub(super) struct Registry {
    open: Mutex<Open>,
    started: Instant,
    /// True while the accept loop waits for room: only then is a connection turning idle
    /// worth a wake-up.
    waiting: AtomicBool,
    /// Wakes the accept loop when a connection turned idle.
    pub(super) idled: Notify,
    /// The last time handed out by `now_micros`.
    last: AtomicU64,
}

impl Registry {
    pub(super) fn new() -> Arc<Registry> {
        Arc::new(Registry {
            open: Mutex::default(),
            started: Instant::now(),
            waiting: AtomicBool::new(false),
            idled: Notify::new(),
            last: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Microseconds since start, strictly increasing from call to call: of two connections
    /// that turned idle within the same microsecond, the later one is still the younger.
    fn now_micros(&self) -> u64 {
        let now = self.started.elapsed().as_micros() as u64;
        let previous = self
            .last
            .fetch_update(Relaxed, Relaxed, |last| Some(now.max(last + 1)))
            .unwrap_or_else(|last| last);
        now.max(previous + 1)
    }

    /// Whether a new connection of `key` may come in: yes while the key holds fewer than
    /// `cap` connections (0: no cap); at the cap, its oldest idle connection is asked to
    /// close to make room; with none idle, no. Checked before a slot is taken, so a client
    /// at its cap cannot make other clients' connections give way.
    pub(super) fn may_enter(&self, key: Option<IpAddr>, cap: usize) -> bool {
        let Some(k) = key.filter(|_| cap > 0) else {
            return true;
        };
        let open = self.lock();
        open.per_key.get(&k).copied().unwrap_or(0) < cap || self.close_oldest_idle(&open, Some(k))
    }

    /// Registers a new connection of `key` (after [`Registry::may_enter`]).
    pub(super) fn enter(self: &Arc<Self>, key: Option<IpAddr>) -> (Arc<Conn>, u64) {
        let mut open = self.lock();
        if let Some(k) = key {
            *open.per_key.entry(k).or_default() += 1;
        }
        let id = open.next_id;
        open.next_id += 1;
        let conn = Arc::new(Conn {
            key,
            busy: AtomicU32::new(0),
            idle_since: AtomicU64::new(self.now_micros()),
            closing: AtomicBool::new(false),
            close: Notify::new(),
            registry: self.clone(),
        });
        open.conns.insert(id, conn.clone());
        (conn, id)
    }

    /// Forgets a connection that ended.
    pub(super) fn leave(&self, id: u64) {
        let mut open = self.lock();
        let Some(conn) = open.conns.remove(&id) else {
            return;
        };
        if let Some(k) = conn.key {
            if let Some(n) = open.per_key.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    open.per_key.remove(&k);
                }
            }
        }
    }

    /// Asks the oldest idle connection (of `key`, or of anyone) to close; false if none is idle.
    pub(super) fn make_room(&self, key: Option<IpAddr>) -> bool {
        let open = self.lock();
        self.close_oldest_idle(&open, key)
    }

    fn close_oldest_idle(&self, open: &Open, key: Option<IpAddr>) -> bool {
        let oldest = open
            .conns
            .values()
            .filter(|c| key.is_none() || c.key == key)
            .filter(|c| c.busy.load(SeqCst) == 0 && !c.closing.load(Relaxed))
            .min_by_key(|c| c.idle_since.load(Relaxed));
        match oldest {
            Some(conn) => {
                conn.closing.store(true, Relaxed);
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Marks the accept loop as waiting for room (or not). SeqCst here and in [`Busy`]'s
    /// drop: either the accept loop sees the connection idle, or the connection sees the
    /// loop waiting and wakes it; never neither.
    pub(super) fn set_waiting(&self, waiting: bool) {
        self.waiting.store(waiting, SeqCst);
    }
}

impl Conn {
    /// A request started; the connection is busy until the guard is dropped.
    pub(super) fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, SeqCst);
        Busy(self.clone())
    }

    /// No request of this connection is being handled now.
    pub(super) fn idle(&self) -> bool {
        self.busy.load(SeqCst) == 0
    }
}

/// Held while a request is handled.
pub(super) struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        let conn = &self.0;
        let registry = &conn.registry;
        conn.idle_since.store(registry.now_micros(), Relaxed);
        if conn.busy.fetch_sub(1, SeqCst) == 1 && registry.waiting.load(SeqCst) {
            registry.idled.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_key_at_its_cap_gives_up_its_oldest_idle_connection() {
        let reg = Registry::new();
        let a = ip("192.0.2.1");
        let (first, _) = reg.enter(a);
        let (second, _) = reg.enter(a);
        let busy = second.busy();
        assert!(reg.may_enter(a, 2), "room made");
        let (third, _) = reg.enter(a);
        assert!(
            first.closing.load(Relaxed),
            "the idle one was asked to close"
        );
        assert!(!second.closing.load(Relaxed), "not the busy one");
        // Now nothing of this key is idle and not already closing: refused.
        let _busy3 = third.busy();
        assert!(!reg.may_enter(a, 2));
        assert!(
            reg.may_enter(ip("192.0.2.2"), 2),
            "other keys are not affected"
        );
        assert!(reg.may_enter(a, 0), "no cap");
        drop(busy);
    }

    #[test]
    fn room_is_made_oldest_idle_first() {
        let reg = Registry::new();
        let (a, _) = reg.enter(ip("192.0.2.1"));
        let (b, _) = reg.enter(ip("192.0.2.2"));
        drop(a.busy()); // a turned idle again just now: b has been idle longer
        assert!(reg.make_room(None));
        assert!(b.closing.load(Relaxed) && !a.closing.load(Relaxed));
        assert!(reg.make_room(None));
        assert!(a.closing.load(Relaxed));
        assert!(!reg.make_room(None), "nothing idle is left");
    }

    #[test]
    fn leaving_frees_the_keys_count() {
        let reg = Registry::new();
        let (conn, id) = reg.enter(ip("192.0.2.1"));
        let _busy = conn.busy();
        assert!(!reg.may_enter(ip("192.0.2.1"), 1));
        reg.leave(id);
        assert!(reg.may_enter(ip("192.0.2.1"), 1));
    }
}
