//! Incremental splitting of a `text/event-stream` into events (blank-line separated; lines end
//! with `\r\n`, `\n` or `\r`), so each complete event can be passed on, or rewritten, as soon
//! as it has arrived.

/// Splits a stream fed in arbitrary chunks into whole events.
#[derive(Debug)]
pub struct EventSplitter {
    /// The start of the event not yet complete.
    buf: Vec<u8>,
    /// Where scanning resumes: always at the start of a line in `buf`.
    scan: usize,
    /// `buf[scan..searched]` holds no line break (so a long line is searched once).
    searched: usize,
    /// The line at `scan` started in bytes already dropped: it is not empty.
    mid_line: bool,
    /// The current event outgrew `max` and is being dropped up to its end.
    discarding: bool,
    max: usize,
}

impl EventSplitter {
    /// `max` bounds one event; a larger one is dropped (see [`EventSplitter::push`]).
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            scan: 0,
            searched: 0,
            mid_line: false,
            discarding: false,
            max,
        }
    }

    /// Feeds `chunk`; calls `on_event` with each complete event (bytes including its blank
    /// line). At `end`, what is left is passed as a final event. An event larger than `max`
    /// is dropped whole, and `on_event` is not called for it; returns how many were dropped.
    pub fn push(&mut self, chunk: &[u8], end: bool, mut on_event: impl FnMut(&[u8])) -> usize {
        let mut dropped = 0usize;
        self.buf.extend_from_slice(chunk);
        loop {
            let from = self.searched.max(self.scan);
            let rest = self.buf.get(from..).unwrap_or_default();
            let Some(found) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                self.searched = self.buf.len();
                break;
            };
            let at = from.saturating_add(found);
            self.searched = at;
            let offset = at.saturating_sub(self.scan);
            let length = match (self.buf.get(at), self.buf.get(at.saturating_add(1))) {
                (Some(b'\r'), Some(b'\n')) => 2,
                (Some(b'\r'), None) if !end => break, // a `\n` may follow in the next chunk
                _ => 1,
            };
            let empty_line = offset == 0 && !self.mid_line;
            self.mid_line = false;
            self.scan = at.saturating_add(length);
            if empty_line {
                let event: Vec<u8> = self.buf.drain(..self.scan).collect();
                self.scan = 0;
                self.searched = 0;
                // An event being discarded was counted when it outgrew the bound.
                if !std::mem::take(&mut self.discarding) {
                    on_event(&event);
                }
            }
        }
        if end {
            if !self.buf.is_empty() && !self.discarding {
                on_event(&self.buf);
            }
            self.buf.clear();
            self.scan = 0;
            self.searched = 0;
            self.mid_line = false;
            self.discarding = false;
        } else if self.buf.len() > self.max {
            // Too large to hold: drop what is here and the rest of this event as it arrives.
            if !self.discarding {
                self.discarding = true;
                dropped = dropped.saturating_add(1);
            }
            let partial = self.buf.get(self.scan..).unwrap_or_default();
            let pending_cr = partial.last() == Some(&b'\r');
            let text_len = partial.len().saturating_sub(usize::from(pending_cr));
            self.mid_line = text_len > 0 || (self.mid_line && self.scan == 0);
            self.buf = if pending_cr { vec![b'\r'] } else { Vec::new() };
            self.scan = 0;
            self.searched = 0;
        }
        dropped
    }

    /// Bytes held back (an incomplete event).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.buf.len()
    }

    /// At an event boundary: nothing held and no oversized event being dropped, so the stream
    /// can pass as it comes. (Holding nothing is not enough: the rest of a dropped event must
    /// still be dropped; the sse fuzz target caught its tail passing as an event of its own.)
    pub fn idle(&self) -> bool {
        self.buf.is_empty() && !self.discarding
    }
}

/// The event's `data`: its `data` field lines joined with `\n`; `None` when it has none.
pub fn event_data(event: &[u8]) -> Option<String> {
    let mut data: Option<String> = None;
    for line in lines(event) {
        let Some(value) = field_value(line, b"data") else {
            continue;
        };
        // Lossy, as a lenient client reads it: an answer with a stray invalid byte must still
        // be filtered, not passed whole (the fuzz oracle found that).
        let value = String::from_utf8_lossy(value);
        match data.as_mut() {
            Some(joined) => {
                joined.push('\n');
                joined.push_str(&value);
            }
            None => data = Some(value.to_string()),
        }
    }
    data
}

/// The event with its `data` replaced by one `data: <data>` line (at the first data line's
/// place); every other line is kept as it was. `data` must not contain line breaks.
pub fn replace_data(event: &[u8], data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().saturating_add(64));
    let mut written = false;
    for line in lines(event) {
        if field_value(line, b"data").is_some() {
            if !written {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(data.as_bytes());
                out.push(b'\n');
                written = true;
            }
        } else if !line.is_empty() {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    if !written {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(data.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// The lines of an event, without terminators.
fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = event;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
            .unwrap_or(rest.len());
        let (line, tail) = rest.split_at(end);
        let skip = match tail {
            [b'\r', b'\n', ..] => 2,
            [] => 0,
            _ => 1,
        };
        rest = tail.get(skip..).unwrap_or_default();
        Some(line)
    })
}

/// The value of `line` when its field is `name` (`name:value`, one leading space dropped;
/// a bare `name` has an empty value).
fn field_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?;
    if rest.is_empty() {
        return Some(rest);
    }
    let value = rest.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}
