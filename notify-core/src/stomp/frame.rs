//! The STOMP 1.2 frame codec: parsing with limits (never panics on any input), header
//! escaping, `content-length`, heart-beat EOLs, and encoding.

use std::fmt::Write as _;

use crate::trace::{TraceContext, TRACEPARENT, TRACESTATE};

/// Largest frame accepted from a client, in bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Most headers accepted in one frame.
pub const MAX_HEADERS: usize = 64;

/// One STOMP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command (`CONNECT`, `SUBSCRIBE`, `MESSAGE`...).
    pub command: String,
    /// Headers in order; for repeated names the first one counts.
    pub headers: Vec<(String, String)>,
    /// The body (may be empty).
    pub body: Vec<u8>,
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    #[error("frame larger than {MAX_FRAME_BYTES} bytes")]
    TooLarge,
    /// The bytes do not form a frame.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

impl Frame {
    /// A frame with no headers or body.
    pub fn new(command: impl Into<String>) -> Self {
        Frame {
            command: command.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (builder style).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Encodes to text (bodies here are UTF-8; invalid bytes are replaced).
    pub fn encode(&self) -> String {
        let escape = !matches!(self.command.as_str(), "CONNECT" | "CONNECTED");
        let mut out = String::with_capacity(64 + self.body.len());
        out.push_str(&self.command);
        out.push('\n');
        let mut has_length = false;
        for (n, v) in &self.headers {
            has_length |= n == "content-length";
            push_header(&mut out, n, v, escape);
        }
        if !self.body.is_empty() && !has_length {
            let _ = writeln!(out, "content-length:{}", self.body.len());
        }
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(&self.body));
        out.push('\0');
        out
    }
}

fn push_header(out: &mut String, name: &str, value: &str, escape: bool) {
    if escape {
        push_escaped(out, name);
        out.push(':');
        push_escaped(out, value);
    } else {
        // CONNECT/CONNECTED cannot escape; keep them parseable by dropping EOLs and colons
        // in names.
        out.extend(name.chars().filter(|c| !matches!(c, '\n' | '\r' | ':')));
        out.push(':');
        out.extend(value.chars().filter(|c| !matches!(c, '\n' | '\r')));
    }
    out.push('\n');
}

/// Appends `s` with STOMP 1.2 header escaping.
pub fn push_escaped(out: &mut String, s: &str) {
    // Most values (ids, destinations) need no escaping: one scan and one copy instead of a
    // push per character; this runs for every frame to every session.
    if !s.bytes().any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b':')) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ':' => out.push_str("\\c"),
            c => out.push(c),
        }
    }
}

/// Encodes a MESSAGE frame around an already serialized JSON body, with one copy.
pub fn encode_message(
    destination: &str,
    subscription: &str,
    message_id: &str,
    body: &[u8],
) -> String {
    encode_traced_message(destination, subscription, message_id, None, body)
}

/// Like [`encode_message`], with a `traceparent` header (and `tracestate` when there is
/// one) when `trace` is given.
pub fn encode_traced_message(
    destination: &str,
    subscription: &str,
    message_id: &str,
    trace: Option<&TraceContext>,
    body: &[u8],
) -> String {
    let tail = message_tail(message_id, trace, body);
    let mut out = String::with_capacity(40 + destination.len() + subscription.len() + tail.len());
    push_message(&mut out, destination, subscription, &tail);
    out
}

/// Appends a MESSAGE frame to `out`: its `destination` and `subscription` headers, then
/// `tail` from [`message_tail`]. A push goes to many sessions with the same tail: only
/// these two headers differ between them.
pub fn push_message(out: &mut String, destination: &str, subscription: &str, tail: &str) {
    out.reserve(40 + destination.len() + subscription.len() + tail.len());
    out.push_str("MESSAGE\n");
    push_header(out, "destination", destination, true);
    push_header(out, "subscription", subscription, true);
    out.push_str(tail);
}

/// What follows `subscription` in a MESSAGE frame: the `message-id`, trace and content
/// headers, the body and the closing NUL.
pub fn message_tail(message_id: &str, trace: Option<&TraceContext>, body: &[u8]) -> String {
    let mut out = String::with_capacity(120 + message_id.len() + body.len());
    push_header(&mut out, "message-id", message_id, true);
    if let Some(trace) = trace {
        push_header(&mut out, TRACEPARENT, trace.traceparent(), true);
        if let Some(state) = trace.tracestate() {
            push_header(&mut out, TRACESTATE, state, true);
        }
    }
    out.push_str("content-type:application/json\n");
    let _ = write!(out, "content-length:{}\n\n", body.len());
    // Bodies are our own serde_json output, always UTF-8.
    out.push_str(std::str::from_utf8(body).unwrap_or("{}"));
    out.push('\0');
    out
}

fn unescape(raw: &[u8], escape: bool) -> Result<String, FrameError> {
    let s = std::str::from_utf8(raw).map_err(|_| FrameError::Malformed("header is not UTF-8"))?;
    if !escape || !s.contains('\\') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('c') => out.push(':'),
            _ => return Err(FrameError::Malformed("undefined escape sequence in header")),
        }
    }
    Ok(out)
}

/// Parses every frame in one WebSocket message. Leading and trailing EOLs are heart-beats
/// and yield no frame. Never panics.
pub fn parse_all(mut input: &[u8]) -> Result<Vec<Frame>, FrameError> {
    if input.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge);
    }
    let mut frames = Vec::new();
    loop {
        input = skip_eols(input);
        if input.is_empty() {
            return Ok(frames);
        }
        let (frame, rest) = parse_one(input)?;
        frames.push(frame);
        input = rest;
    }
}

fn skip_eols(mut input: &[u8]) -> &[u8] {
    loop {
        match input {
            [b'\n', rest @ ..] => input = rest,
            [b'\r', b'\n', rest @ ..] => input = rest,
            _ => return input,
        }
    }
}

/// Reads one line (without its EOL); errors if no EOL.
fn line(input: &[u8]) -> Result<(&[u8], &[u8]), FrameError> {
    let pos = input
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(FrameError::Malformed("missing end of line"))?;
    let mut l = &input[..pos];
    if let [head @ .., b'\r'] = l {
        l = head;
    }
    Ok((l, &input[pos + 1..]))
}

fn parse_one(input: &[u8]) -> Result<(Frame, &[u8]), FrameError> {
    let (command, mut rest) = line(input)?;
    if command.is_empty() || !command.iter().all(|b| b.is_ascii_uppercase()) {
        return Err(FrameError::Malformed("invalid command"));
    }
    let command = String::from_utf8_lossy(command).into_owned();
    let escape = !matches!(command.as_str(), "CONNECT" | "CONNECTED");
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let (l, r) = line(rest)?;
        rest = r;
        if l.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(FrameError::Malformed("too many headers"));
        }
        let colon = l
            .iter()
            .position(|&b| b == b':')
            .ok_or(FrameError::Malformed("header without a colon"))?;
        let name = unescape(&l[..colon], escape)?;
        let value = unescape(&l[colon + 1..], escape)?;
        if name.is_empty() {
            return Err(FrameError::Malformed("empty header name"));
        }
        headers.push((name, value));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.trim().parse::<usize>())
        .transpose()
        .map_err(|_| FrameError::Malformed("invalid content-length"))?;
    let (body, rest) = match length {
        // A claimed length is only trusted up to the frame limit: anything larger cannot be
        // in the input, and arithmetic on it (`len + 1`) could overflow.
        Some(len) if len > MAX_FRAME_BYTES => return Err(FrameError::TooLarge),
        Some(len) => {
            let (body, after) = rest
                .split_at_checked(len)
                .ok_or(FrameError::Malformed("body shorter than content-length"))?;
            match after {
                [0, rest @ ..] => (body, rest),
                [] => return Err(FrameError::Malformed("body shorter than content-length")),
                _ => return Err(FrameError::Malformed("body not terminated by NUL")),
            }
        }
        None => {
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(FrameError::Malformed("frame not terminated by NUL"))?;
            (&rest[..nul], &rest[nul + 1..])
        }
    };
    Ok((
        Frame {
            command,
            headers,
            body: body.to_vec(),
        },
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_stompjs_connect() {
        let f = parse_all(b"CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:10000,10000\n\n\0")
            .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].command, "CONNECT");
        assert_eq!(f[0].get("heart-beat"), Some("10000,10000"));
        assert_eq!(f[0].get("host"), None);
    }

    #[test]
    fn heartbeats_yield_no_frames() {
        assert!(parse_all(b"\n").unwrap().is_empty());
        assert!(parse_all(b"\r\n\n").unwrap().is_empty());
    }

    #[test]
    fn escapes_round_trip() {
        let f = Frame::new("SEND")
            .header("destination", "/app/read")
            .header("weird:name", "a\nb\\c:d\r")
            .body(b"{\"all\":true}".to_vec());
        let text = f.encode();
        let back = parse_all(text.as_bytes()).unwrap();
        assert_eq!(back[0].get("weird:name"), Some("a\nb\\c:d\r"));
        assert_eq!(back[0].body, b"{\"all\":true}");
    }

    #[test]
    fn content_length_allows_nul_in_body_and_multiple_frames() {
        let input = b"SEND\ncontent-length:3\n\na\0b\0\nSEND\n\nx\0\n";
        let f = parse_all(input).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].body, b"a\0b");
        assert_eq!(f[1].body, b"x");
    }

    #[test]
    fn first_repeated_header_wins_and_crlf_lines() {
        let f = parse_all(b"SEND\r\nfoo:1\r\nfoo:2\r\n\r\n\0").unwrap();
        assert_eq!(f[0].get("foo"), Some("1"));
    }

    #[test]
    fn rejects_malformed_and_large() {
        for bad in [
            &b"SEND\nfoo\n\n\0"[..],
            b"send\n\n\0",
            b"SEND\n\nno nul",
            b"SEND\ncontent-length:10\n\nab\0",
            b"SEND\ncontent-length:x\n\n\0",
            b"SEND\nbad:\\t\n\n\0",
            b"SEND",
        ] {
            assert!(
                parse_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = vec![b'a'; MAX_FRAME_BYTES + 1];
        assert_eq!(parse_all(&big), Err(FrameError::TooLarge));
    }

    #[test]
    fn huge_content_length_is_refused_without_overflow() {
        // usize::MAX used to wrap `len + 1` and panic on indexing.
        for len in [
            "18446744073709551615",
            "18446744073709551614",
            "65537",
            "9223372036854775808",
        ] {
            let input = format!("SEND\ncontent-length:{len}\n\nabc\0");
            assert_eq!(
                parse_all(input.as_bytes()),
                Err(FrameError::TooLarge),
                "{len}"
            );
        }
        let input = "SEND\ncontent-length:99999999999999999999999\n\n\0";
        assert!(parse_all(input.as_bytes()).is_err());
        let exact = format!("SEND\ncontent-length:{MAX_FRAME_BYTES}\n\nab\0");
        assert!(parse_all(exact.as_bytes()).is_err());
    }

    #[test]
    fn message_encoding_is_parseable() {
        let text = encode_message("/user/queue/notifications", "sub:0", "n_1", br#"{"a":1}"#);
        let f = parse_all(text.as_bytes()).unwrap();
        assert_eq!(f[0].get("subscription"), Some("sub:0"));
        assert_eq!(f[0].get("content-length"), Some("7"));
        assert_eq!(f[0].body, br#"{"a":1}"#);
        assert_eq!(f[0].get("traceparent"), None);

        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = TraceContext::parse(tp, Some("congo=t61rcWkgMzE")).unwrap();
        let text = encode_traced_message("/topic/notifications", "s", "n_2", Some(&trace), b"{}");
        let f = parse_all(text.as_bytes()).unwrap();
        assert_eq!(f[0].get("traceparent"), Some(tp));
        assert_eq!(f[0].get("tracestate"), Some("congo=t61rcWkgMzE"));
        assert_eq!(f[0].get("message-id"), Some("n_2"));
    }

    proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_all(&bytes);
        }

        #[test]
        fn parser_never_panics_on_framelike_input(
            cmd in "[A-Z]{1,12}",
            headers in proptest::collection::vec(("[a-z:\\\\-]{0,8}", "[ -~\\\\]{0,16}"), 0..8),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            tail in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut input = format!("{cmd}\n").into_bytes();
            for (n, v) in headers { input.extend(format!("{n}:{v}\n").into_bytes()); }
            input.push(b'\n');
            input.extend(body);
            input.extend(tail);
            let _ = parse_all(&input);
        }

        #[test]
        fn encode_then_parse_round_trips(
            name in "[a-z][a-z\\-]{0,10}",
            value in "[ -~\\n\\r]{0,32}",
            body in "[ -~]{0,64}",
        ) {
            let f = Frame::new("SEND").header(name.clone(), value.clone()).body(body.clone().into_bytes());
            let back = parse_all(f.encode().as_bytes()).unwrap();
            prop_assert_eq!(back.len(), 1);
            prop_assert_eq!(back[0].get(&name), Some(value.as_str()));
            prop_assert_eq!(&back[0].body, &body.into_bytes());
        }
    }
}
