//! A server-sent events parser that takes bytes as they arrive (in chunks cut anywhere) and
//! yields whole events. It keeps the comment lines too, since DashScope's native stream puts the
//! status of each event in one (`:HTTP_STATUS/400`).

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    /// The status from a `:HTTP_STATUS/NNN` comment, if the event had one.
    pub http_status: Option<u16>,
}

/// The longest line accepted; a stream that sends more without a newline is broken (or hostile).
pub(crate) const MAX_LINE: usize = 4 * 1024 * 1024;

/// The most data one event may gather over its lines: a chat chunk is a few kilobytes, so an
/// event of a thousand 1 MiB lines is refused instead of holding a gigabyte.
pub(crate) const MAX_EVENT: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Parser {
    buf: Vec<u8>,
    current: Event,
    has_fields: bool,
    data_lines: usize,
    /// A line ended by CR was taken; an LF right after it belongs to the same line end.
    after_cr: bool,
    /// Whether the last `feed` completed anything but comments (see [`Parser::progressed`]).
    progressed: bool,
}

/// The stream broke the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub String);

impl Parser {
    /// Feeds bytes; returns the events they complete. Lines end in CRLF, LF or CR alone, as the
    /// SSE specification allows.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, Malformed> {
        self.buf.extend_from_slice(bytes);
        self.progressed = false;
        let mut events = Vec::new();
        let mut start = 0;
        if self.after_cr && self.buf.first() == Some(&b'\n') {
            start = 1;
        }
        self.after_cr = false;
        while let Some(pos) = self.buf[start..]
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
        {
            let end = start + pos;
            let line = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
            start = end + 1;
            if self.buf[end] == b'\r' {
                match self.buf.get(start) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    // The next chunk may begin with the LF of this CRLF.
                    None => self.after_cr = true,
                }
            }
            if let Some(event) = self.line(&line)? {
                events.push(event);
            }
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE {
            return Err(Malformed(format!("a line longer than {MAX_LINE} bytes")));
        }
        self.progressed |= !events.is_empty();
        Ok(events)
    }

    /// Whether the last [`Parser::feed`] completed an event or a field of one: keep-alive
    /// comments (and bytes of an unfinished line) are not progress.
    pub(crate) fn progressed(&self) -> bool {
        self.progressed
    }

    /// The end of the stream: a last event not followed by a blank line still counts.
    pub(crate) fn finish(&mut self) -> Result<Option<Event>, Malformed> {
        if !self.buf.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            if let Some(event) = self.line(&rest)? {
                return Ok(Some(event));
            }
        }
        Ok(self.dispatch())
    }

    fn dispatch(&mut self) -> Option<Event> {
        self.data_lines = 0;
        if !std::mem::take(&mut self.has_fields) {
            return None;
        }
        Some(std::mem::take(&mut self.current))
    }

    fn line(&mut self, line: &str) -> Result<Option<Event>, Malformed> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if let Some(comment) = line.strip_prefix(':') {
            if let Some(status) = comment.trim().strip_prefix("HTTP_STATUS/") {
                self.current.http_status = status.trim().parse().ok();
                self.has_fields = true;
                self.progressed = true;
            }
            return Ok(None);
        }
        self.progressed = true;
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.data_lines > 0 {
                    self.current.data.push('\n');
                }
                self.data_lines += 1;
                if self.current.data.len() + value.len() > MAX_EVENT {
                    return Err(Malformed(format!(
                        "an event of more than {MAX_EVENT} bytes of data"
                    )));
                }
                self.current.data.push_str(value);
                self.has_fields = true;
            }
            "event" => {
                self.current.event = Some(value.to_owned());
                self.has_fields = true;
            }
            "id" => {
                self.current.id = Some(value.to_owned());
                self.has_fields = true;
            }
            _ => {} // `retry` and unknown fields are ignored, as the specification says.
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], cut: usize) -> Vec<Event> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for chunk in input.chunks(cut.max(1)) {
            out.extend(p.feed(chunk).expect("well-formed"));
        }
        out.extend(p.finish().expect("well-formed"));
        out
    }

    #[test]
    fn native_events_in_any_chunking() {
        let input = b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"a\":1}\n\nid:2\nevent:error\n:HTTP_STATUS/400\ndata:{\"code\":\"X\"}\n\n";
        for cut in [1, 2, 3, 7, 1000] {
            let events = all(input, cut);
            assert_eq!(events.len(), 2, "cut {cut}");
            assert_eq!(events[0].event.as_deref(), Some("result"));
            assert_eq!(events[0].http_status, Some(200));
            assert_eq!(events[0].data, "{\"a\":1}");
            assert_eq!(events[1].id.as_deref(), Some("2"));
            assert_eq!(events[1].http_status, Some(400));
        }
    }

    #[test]
    fn openai_data_lines_crlf_and_a_missing_last_blank_line() {
        let events = all(b"data: {\"x\":1}\r\n\r\ndata: [DONE]", 4);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data, "{\"x\":1}");
        assert_eq!(events[1].data, "[DONE]");
    }

    #[test]
    fn multi_line_data_and_comments() {
        let events = all(b": keep-alive\n\ndata: a\ndata: b\n\n", 5);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a\nb");
    }

    #[test]
    fn cr_only_and_mixed_line_ends_in_any_chunking() {
        let input = b"data: a\r\rdata: b\r\n\r\ndata: c\n\n: ping\r";
        for cut in [1, 2, 3, 5, 1000] {
            let events = all(input, cut);
            let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["a", "b", "c"], "cut {cut}");
        }
    }

    #[test]
    fn an_event_of_many_long_lines_is_refused() {
        let mut p = Parser::default();
        let line = format!("data: {}\n", "x".repeat(1024 * 1024));
        let mut refused = false;
        for _ in 0..(MAX_EVENT / (1024 * 1024) + 2) {
            if p.feed(line.as_bytes()).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "more than MAX_EVENT bytes in one event");
    }

    #[test]
    fn keep_alive_comments_are_not_progress() {
        let mut p = Parser::default();
        assert!(
            p.feed(b": keep-alive\n\n: keep-alive\n")
                .expect("ok")
                .is_empty()
        );
        assert!(!p.progressed());
        assert!(p.feed(b"data: x").expect("ok").is_empty());
        assert!(!p.progressed(), "half a line is not progress yet");
        p.feed(b"\n").expect("ok");
        assert!(p.progressed());
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut p = Parser::default();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..5 {
            result = p.feed(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err());
    }
}
