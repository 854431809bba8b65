//! Where `serve` writes its log: stderr, in batches, from one writer thread.
//!
//! A request thread appends its formatted line to a shared buffer (one short lock, no
//! allocation, no wake-up); the writer thread takes the whole buffer every
//! [`FLUSH_EVERY`], or as soon as it holds [`WAKE_AT`] bytes, and writes it with one
//! system call. tracing-appender, used before, sent each line through a channel as its own
//! allocation and woke its thread for it; this sink made scenario 2 of the load benchmark
//! about 6 % faster (docs/performance.md).
//!
//! Nothing is dropped: when [`MAX_PENDING`] bytes wait (stderr is stuck), writers wait for
//! room. Dropping the [`Flusher`] writes what is left.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The longest a line waits before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// A buffer this full is written at once.
const WAKE_AT: usize = 64 * 1024;
/// Beyond this, writers wait for the writer thread.
const MAX_PENDING: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Tells the writer thread: a full buffer, or closing.
    wake: Condvar,
    /// Tells waiting writers: the buffer was taken.
    room: Condvar,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer handle given to tracing-subscriber (`MakeWriter`).
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

/// Keep it alive while logging: dropping it writes the remaining lines and stops the thread.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `out`.
pub fn start(mut out: impl Write + Send + 'static) -> (LogSink, Flusher) {
    let shared = Arc::new(Shared::default());
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name("resetgate-log".into())
        .spawn(move || {
            let mut batch = Vec::new();
            loop {
                let closing = {
                    let mut state = s.lock();
                    while state.pending.len() < WAKE_AT && !state.closing {
                        let (next, waited) = s
                            .wake
                            .wait_timeout(state, FLUSH_EVERY)
                            .unwrap_or_else(|p| p.into_inner());
                        state = next;
                        if waited.timed_out() {
                            break;
                        }
                    }
                    std::mem::swap(&mut state.pending, &mut batch);
                    state.closing
                };
                s.room.notify_all();
                if !batch.is_empty() {
                    // Nowhere to report a failing stderr; the lines are dropped then.
                    let _ = out.write_all(&batch).and_then(|()| out.flush());
                    batch.clear();
                }
                if closing {
                    break;
                }
            }
        })
        .expect("spawning a thread at start-up succeeds");
    let sink = LogSink {
        shared: shared.clone(),
    };
    let flusher = Flusher {
        shared,
        thread: Some(thread),
    };
    (sink, flusher)
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One event's formatted line arrives in one `write_all`, so lines never interleave.
impl Write for &LogSink {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = &self.shared;
        let mut state = shared.lock();
        while state.pending.len() >= MAX_PENDING && !state.closing {
            state = shared.room.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.pending.extend_from_slice(line);
        if state.pending.len() >= WAKE_AT {
            shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = &'a LogSink;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `out` the test can read while the writer thread holds it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_whole_from_many_threads() {
        let out = Captured::default();
        let (sink, flusher) = start(out.clone());
        std::thread::scope(|scope| {
            for t in 0..4 {
                let sink = sink.clone();
                scope.spawn(move || {
                    for i in 0..20_000 {
                        let line = format!("thread {t} line {i} {}\n", "x".repeat(i % 300));
                        (&sink).write_all(line.as_bytes()).unwrap();
                    }
                });
            }
        });
        drop(flusher);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 80_000);
        for line in lines {
            let mut words = line.split(' ');
            let i: usize = words.nth(3).unwrap().parse().unwrap();
            assert_eq!(words.next().unwrap_or_default().len(), i % 300, "{line}");
        }
    }

    #[test]
    fn a_lone_line_is_written_without_waiting_for_more() {
        let out = Captured::default();
        let (sink, _flusher) = start(out.clone());
        (&sink).write_all(b"ready\n").unwrap();
        // The writer's timer, not the flusher's drop, must bring it out. The bound only
        // keeps a broken sink from hanging the test.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while out.0.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line never came out"
            );
            std::thread::yield_now();
        }
        assert_eq!(&out.0.lock().unwrap()[..], b"ready\n");
    }
}
