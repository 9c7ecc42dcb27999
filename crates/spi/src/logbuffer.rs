//! A container's output, for factories that read it themselves (feature `log-buffer`; used by
//! the `process` and `docker` factories): background tasks read the runtime's stdout and stderr pipes line by
//! line, timestamp each line when it is read, and keep it in a bounded per-container buffer until
//! [`LogBuffer::collect`] takes it.
//!
//! Each stream has its own queue, because one activation's output ends with a sentinel line on
//! *each* stream and they arrive independently: after stdout's sentinel, stdout lines belong to
//! the next activation and must stay queued while we wait for stderr's. Every entry carries a
//! global sequence number so the two streams can be merged back in arrival order.
//!
//! Lines tagged with an activation id ([`whirl_model::logtag`], printed by runtimes that run
//! several activations at once) are kept apart, one queue per activation, and collected by
//! [`LogBuffer::collect_activation`]: each activation gets exactly the lines it wrote, however
//! they interleave with its neighbours'. Tagged lines of an activation already collected, and
//! untagged lines in such a container, belong to no record and are dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::container::{CollectedLogs, LogLine, LogStream};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::Notify;
use tokio::time::Instant;
use whirl_model::logtag;

/// The line OpenWhisk runtimes print on stdout and on stderr after each activation.
pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// Longer lines are split (Docker's log driver splits at 16 KiB too), so one runaway line without
/// a newline cannot make the reader buffer grow without bound.
pub const MAX_LINE: u64 = 16 * 1024;

/// Bookkeeping cost counted per entry on top of its text, so a flood of empty lines is bounded too.
const ENTRY_OVERHEAD: usize = 64;

/// How many collected activation ids are remembered, so their late lines are dropped at once.
const FINISHED_IDS: usize = 1024;

struct Entry {
    seq: u64,
    time: SystemTime,
    /// `None` for a sentinel.
    text: Option<String>,
}

impl Entry {
    fn cost(&self) -> usize {
        ENTRY_OVERHEAD + self.text.as_ref().map_or(0, String::len)
    }
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    /// The pipe was closed: nothing more will come.
    eof: bool,
}

/// The tagged output of one activation: both streams in arrival order.
#[derive(Default)]
struct Tagged {
    /// (stream, entry)
    entries: VecDeque<(usize, Entry)>,
    /// Lines were dropped to keep the buffer bounded.
    dropped: bool,
}

#[derive(Default)]
struct State {
    /// stdout, stderr.
    queues: [Queue; 2],
    /// Tagged lines by activation id.
    tagged: HashMap<String, Tagged>,
    /// Activations whose tagged output was collected (oldest first), for dropping late lines.
    finished: VecDeque<String>,
    finished_set: HashSet<String>,
    next_seq: u64,
    cost: usize,
    /// Lines were dropped because nobody collected them; reported as truncation by the next
    /// collection.
    dropped: bool,
}

impl State {
    /// The stream whose front entry is oldest, among `eligible` streams with something queued.
    fn oldest(&self, eligible: [bool; 2]) -> Option<usize> {
        (0..2)
            .filter(|&s| eligible[s])
            .filter_map(|s| self.queues[s].entries.front().map(|e| (e.seq, s)))
            .min()
            .map(|(_, s)| s)
    }

    fn pop(&mut self, s: usize) -> Option<Entry> {
        let e = self.queues[s].entries.pop_front()?;
        self.cost -= e.cost();
        Some(e)
    }

    /// Drops the oldest entry, tagged or not, to stay within the bound.
    fn drop_oldest(&mut self) -> bool {
        let untagged = self
            .oldest([true, true])
            .and_then(|s| self.queues[s].entries.front().map(|e| (e.seq, s)));
        let tagged = self
            .tagged
            .iter()
            .filter_map(|(id, t)| t.entries.front().map(|(_, e)| (e.seq, id)))
            .min()
            .map(|(seq, id)| (seq, id.clone()));
        match (untagged, tagged) {
            (Some((u, s)), Some((t, _))) if u < t => {
                self.pop(s);
                self.dropped = true;
            }
            (Some((_, s)), None) => {
                self.pop(s);
                self.dropped = true;
            }
            (_, Some((_, id))) => {
                if let Some(t) = self.tagged.get_mut(&id) {
                    if let Some((_, e)) = t.entries.pop_front() {
                        self.cost -= e.cost();
                    }
                    t.dropped = true;
                }
            }
            (None, None) => return false,
        }
        true
    }

    fn finish(&mut self, id: String) {
        if self.finished_set.insert(id.clone()) {
            self.finished.push_back(id);
            if self.finished.len() > FINISHED_IDS {
                if let Some(old) = self.finished.pop_front() {
                    self.finished_set.remove(&old);
                }
            }
        }
    }
}

/// One container's buffered output.
pub struct LogBuffer {
    state: Mutex<State>,
    /// Woken when a sentinel arrives or a stream ends: the only events a waiting collector needs.
    wake: Notify,
    max_cost: usize,
}

fn stream_of(s: usize) -> LogStream {
    if s == 0 {
        LogStream::Stdout
    } else {
        LogStream::Stderr
    }
}

impl LogBuffer {
    pub fn new(max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            max_cost: max_bytes.max(ENTRY_OVERHEAD),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is a push or a pop).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one line (without its newline) read from stream `s` (0 stdout, 1 stderr).
    pub fn push(&self, s: usize, line: String) {
        let time = SystemTime::now();
        let tag = logtag::split(&line).map(|(id, message)| (id.to_string(), message.len()));
        let sentinel = match &tag {
            Some((_, len)) => line[line.len() - len..] == *SENTINEL,
            None => line == SENTINEL,
        };
        {
            let mut st = self.lock();
            let seq = st.next_seq;
            st.next_seq += 1;
            match tag {
                None => {
                    let entry = Entry {
                        seq,
                        time,
                        text: if sentinel { None } else { Some(line) },
                    };
                    st.cost += entry.cost();
                    st.queues[s].entries.push_back(entry);
                }
                Some((id, len)) => {
                    if st.finished_set.contains(&id) {
                        // Written after its activation's logs were collected: no record is left
                        // to hold it.
                        return;
                    }
                    let text = (!sentinel).then(|| {
                        let mut line = line;
                        line.drain(..line.len() - len);
                        line
                    });
                    let entry = Entry { seq, time, text };
                    st.cost += entry.cost();
                    st.tagged
                        .entry(id)
                        .or_default()
                        .entries
                        .push_back((s, entry));
                }
            }
            while st.cost > self.max_cost {
                if !st.drop_oldest() {
                    break;
                }
            }
        }
        if sentinel {
            self.wake.notify_waiters();
        }
    }

    /// Marks stream `s` (0 stdout, 1 stderr) as ended: nothing more will come.
    pub fn end(&self, s: usize) {
        self.lock().queues[s].eof = true;
        self.wake.notify_waiters();
    }

    /// Takes the lines printed since the previous call (see `Container::logs`).
    pub async fn collect(
        &self,
        limit_bytes: usize,
        wait_for_sentinel: bool,
        timeout: Duration,
    ) -> CollectedLogs {
        let deadline = Instant::now() + timeout;
        let mut out = CollectedLogs::default();
        let mut bytes = 0usize;
        // Past the limit, the rest of the activation's output is discarded (not just long lines).
        let mut over_limit = false;
        // Which streams have shown this activation's sentinel.
        let mut ended = [false; 2];
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            // Register before looking, so a sentinel pushed after the look still wakes us.
            woken.as_mut().enable();
            {
                let mut st = self.lock();
                out.truncated |= std::mem::take(&mut st.dropped);
                loop {
                    let eligible = if wait_for_sentinel {
                        [!ended[0], !ended[1]]
                    } else {
                        [true, true]
                    };
                    let Some(s) = st.oldest(eligible) else { break };
                    let Some(entry) = st.pop(s) else { break };
                    match entry.text {
                        None => ended[s] |= wait_for_sentinel,
                        Some(message) if over_limit || bytes + message.len() > limit_bytes => {
                            // Over the limit: keep draining to the sentinel, discarding.
                            over_limit = true;
                            out.truncated = true;
                        }
                        Some(message) => {
                            bytes += message.len();
                            out.lines.push(LogLine {
                                time: entry.time,
                                stream: stream_of(s),
                                message,
                            });
                        }
                    }
                }
                if !wait_for_sentinel {
                    return out;
                }
                if ended == [true, true] {
                    out.complete = true;
                    return out;
                }
                // A stream that ended without its sentinel will never show it.
                if (0..2).all(|s| ended[s] || (st.queues[s].eof && st.queues[s].entries.is_empty()))
                {
                    return out;
                }
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return out;
            }
        }
    }
}

impl LogBuffer {
    /// Takes the lines tagged with activation `id` (see `Container::activation_logs`), and drops
    /// the untagged output queued so far (it belongs to no activation).
    pub async fn collect_activation(
        &self,
        id: &str,
        limit_bytes: usize,
        wait_for_sentinel: bool,
        timeout: Duration,
    ) -> CollectedLogs {
        let deadline = Instant::now() + timeout;
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            {
                let mut st = self.lock();
                let ended = st.tagged.get(id).map_or([false; 2], |t| {
                    let mut ended = [false; 2];
                    for (s, e) in &t.entries {
                        if e.text.is_none() {
                            ended[*s] = true;
                        }
                    }
                    ended
                });
                let complete = ended == [true, true];
                let streams_over = (0..2).all(|s| ended[s] || st.queues[s].eof);
                if !wait_for_sentinel || complete || streams_over {
                    return Self::take_activation(&mut st, id, limit_bytes, complete);
                }
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                let mut st = self.lock();
                return Self::take_activation(&mut st, id, limit_bytes, false);
            }
        }
    }

    fn take_activation(
        st: &mut State,
        id: &str,
        limit_bytes: usize,
        complete: bool,
    ) -> CollectedLogs {
        for s in 0..2 {
            while st.pop(s).is_some() {}
        }
        st.dropped = false;
        let tagged = st.tagged.remove(id).unwrap_or_default();
        st.finish(id.to_string());
        let mut out = CollectedLogs {
            lines: Vec::new(),
            truncated: tagged.dropped,
            complete,
        };
        let mut bytes = 0usize;
        let mut over_limit = false;
        // A stream's sentinel ends the activation's output on that stream: later lines are late.
        let mut ended = [false; 2];
        for (s, entry) in tagged.entries {
            st.cost -= entry.cost();
            if ended[s] {
                continue;
            }
            match entry.text {
                None => ended[s] = true,
                Some(message) if over_limit || bytes + message.len() > limit_bytes => {
                    over_limit = true;
                    out.truncated = true;
                }
                Some(message) => {
                    bytes += message.len();
                    out.lines.push(LogLine {
                        time: entry.time,
                        stream: stream_of(s),
                        message,
                    });
                }
            }
        }
        out
    }
}

/// Starts the background task that reads stream `s` of a container into `buffer`.
pub fn spawn_reader(
    reader: impl AsyncRead + Unpin + Send + 'static,
    s: usize,
    buffer: Arc<LogBuffer>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            match (&mut reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    buffer.push(s, String::from_utf8_lossy(&line).into_owned());
                }
            }
        }
        buffer.end(s);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: usize = 0;
    const ERR: usize = 1;

    fn texts(logs: &CollectedLogs) -> Vec<(LogStream, &str)> {
        logs.lines
            .iter()
            .map(|l| (l.stream, l.message.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn frames_one_activation_per_pair_of_sentinels() {
        let b = LogBuffer::new(1 << 20);
        b.push(OUT, "a".into());
        b.push(ERR, "b".into());
        b.push(OUT, SENTINEL.into());
        b.push(OUT, "next out".into()); // the next activation's, printed before stderr's sentinel
        b.push(ERR, "c".into());
        b.push(ERR, SENTINEL.into());
        // Already there: returns at once even with no time to wait.
        let logs = b.collect(1 << 20, true, Duration::ZERO).await;
        assert!(logs.complete && !logs.truncated);
        assert_eq!(
            texts(&logs),
            [
                (LogStream::Stdout, "a"),
                (LogStream::Stderr, "b"),
                (LogStream::Stderr, "c")
            ]
        );
        b.push(ERR, "next err".into());
        let logs = b.collect(1 << 20, false, Duration::ZERO).await;
        assert!(!logs.complete);
        assert_eq!(
            texts(&logs),
            [
                (LogStream::Stdout, "next out"),
                (LogStream::Stderr, "next err")
            ]
        );
    }

    #[tokio::test]
    async fn limit_truncates_and_drains_to_the_sentinels() {
        let b = LogBuffer::new(1 << 20);
        for line in ["1234", "56789", "0"] {
            b.push(OUT, line.into());
        }
        b.push(OUT, SENTINEL.into());
        b.push(ERR, SENTINEL.into());
        b.push(OUT, "after".into());
        let logs = b.collect(5, true, Duration::ZERO).await;
        assert!(logs.complete && logs.truncated);
        assert_eq!(
            texts(&logs),
            [(LogStream::Stdout, "1234")],
            "a prefix within the limit"
        );
        let logs = b.collect(5, false, Duration::ZERO).await;
        assert_eq!(texts(&logs), [(LogStream::Stdout, "after")]);
        assert!(!logs.truncated);
    }

    #[tokio::test]
    async fn waits_for_sentinels_and_gives_up_at_end_of_output_or_timeout() {
        let b = LogBuffer::new(1 << 20);
        b.push(OUT, "x".into());
        let pusher = {
            let b = b.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                b.push(OUT, SENTINEL.into());
                b.push(ERR, SENTINEL.into());
            })
        };
        let logs = b.collect(100, true, Duration::from_secs(10)).await;
        assert!(logs.complete, "{logs:?}");
        assert_eq!(texts(&logs), [(LogStream::Stdout, "x")]);
        pusher.await.unwrap();

        let logs = b.collect(100, true, Duration::from_millis(10)).await;
        assert!(!logs.complete, "timed out");

        b.push(ERR, "dying words".into());
        b.end(OUT);
        b.end(ERR);
        let start = std::time::Instant::now();
        let logs = b.collect(100, true, Duration::from_secs(10)).await;
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no wait once both streams ended"
        );
        assert!(!logs.complete);
        assert_eq!(texts(&logs), [(LogStream::Stderr, "dying words")]);
    }

    #[tokio::test]
    async fn bounded_when_nobody_collects() {
        let b = LogBuffer::new(10 * (ENTRY_OVERHEAD + 10));
        for i in 0..1000 {
            b.push(OUT, format!("line {i:05}"));
        }
        let logs = b.collect(1 << 20, false, Duration::ZERO).await;
        assert!(logs.truncated, "dropping is reported");
        assert_eq!(logs.lines.len(), 10);
        assert_eq!(
            logs.lines.last().unwrap().message,
            "line 00999",
            "the newest lines are kept"
        );
        b.push(OUT, "fresh".into());
        assert!(
            !b.collect(1 << 20, false, Duration::ZERO).await.truncated,
            "reported once"
        );
    }

    fn tag(id: &str, m: &str) -> String {
        logtag::tagged(id, m)
    }

    #[tokio::test]
    async fn tagged_lines_go_to_their_own_activation() {
        let b = LogBuffer::new(1 << 20);
        b.push(OUT, "orphan".into());
        b.push(OUT, tag("a", "a1"));
        b.push(ERR, tag("b", "b1"));
        b.push(OUT, tag("b", "b2"));
        b.push(ERR, tag("a", "a2"));
        b.push(OUT, tag("a", SENTINEL));
        b.push(OUT, tag("b", SENTINEL));
        b.push(OUT, tag("a", "late: after a's stdout sentinel"));
        b.push(ERR, tag("a", "a3"));
        b.push(ERR, tag("a", SENTINEL));
        b.push(OUT, tag("a", "after a was collected"));
        let a = b
            .collect_activation("a", 1 << 20, true, Duration::ZERO)
            .await;
        assert!(a.complete && !a.truncated);
        assert_eq!(
            texts(&a),
            [
                (LogStream::Stdout, "a1"),
                (LogStream::Stderr, "a2"),
                (LogStream::Stderr, "a3"),
            ]
        );
        // b's stderr sentinel is still to come: waits, then gets its lines when it arrives.
        let pusher = {
            let b = b.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                b.push(ERR, tag("b", "b3"));
                b.push(ERR, tag("b", SENTINEL));
            })
        };
        let got = b
            .collect_activation("b", 1 << 20, true, Duration::from_secs(10))
            .await;
        pusher.await.unwrap();
        assert!(got.complete);
        assert_eq!(
            texts(&got),
            [
                (LogStream::Stderr, "b1"),
                (LogStream::Stdout, "b2"),
                (LogStream::Stderr, "b3")
            ]
        );
        // Late lines of a collected activation and untagged lines were dropped.
        b.push(OUT, tag("a", "later still"));
        let st = b.lock();
        assert!(st.tagged.is_empty() && st.queues.iter().all(|q| q.entries.is_empty()));
        assert_eq!(st.cost, 0);
    }

    #[tokio::test]
    async fn tagged_collection_honours_the_limit_timeout_and_bound() {
        let b = LogBuffer::new(1 << 20);
        for m in ["1234", "56789", "0"] {
            b.push(OUT, tag("x", m));
        }
        b.push(OUT, tag("x", SENTINEL));
        b.push(ERR, tag("x", SENTINEL));
        let x = b.collect_activation("x", 5, true, Duration::ZERO).await;
        assert!(x.complete && x.truncated);
        assert_eq!(texts(&x), [(LogStream::Stdout, "1234")]);

        b.push(OUT, tag("y", "no sentinel"));
        let y = b
            .collect_activation("y", 100, true, Duration::from_millis(10))
            .await;
        assert!(!y.complete);
        assert_eq!(texts(&y), [(LogStream::Stdout, "no sentinel")]);

        let small = LogBuffer::new(10 * (ENTRY_OVERHEAD + 10));
        for i in 0..100 {
            small.push(OUT, tag("z", &format!("{i:03}")));
        }
        small.push(OUT, tag("w", "w's own"));
        let z = small
            .collect_activation("z", 1 << 20, false, Duration::ZERO)
            .await;
        assert!(z.truncated && z.lines.len() < 10, "{z:?}");
        let w = small
            .collect_activation("w", 1 << 20, false, Duration::ZERO)
            .await;
        assert_eq!(texts(&w), [(LogStream::Stdout, "w's own")]);
    }

    #[tokio::test]
    async fn reader_splits_lines_and_stamps_them() {
        let b = LogBuffer::new(1 << 20);
        let long = "y".repeat(MAX_LINE as usize + 10);
        let input = format!("one\n{long}\nlast without newline");
        let before = SystemTime::now();
        b.end(OUT);
        spawn_reader(std::io::Cursor::new(input.into_bytes()), ERR, b.clone());
        // Returns once the reader hit the end of its input (no sentinels will come).
        let logs = b.collect(usize::MAX, true, Duration::from_secs(10)).await;
        let lens: Vec<usize> = logs.lines.iter().map(|l| l.message.len()).collect();
        assert_eq!(lens, [3, MAX_LINE as usize, 10, 20]);
        assert!(logs
            .lines
            .iter()
            .all(|l| l.stream == LogStream::Stderr && l.time >= before));
    }
}
