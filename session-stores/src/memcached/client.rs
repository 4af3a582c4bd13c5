//! Memcached's meta protocol (`mg`, `ms`, `md`, `mn`) over one TCP
//! connection: building requests and reading replies.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// The longest reply line accepted; real ones are a few dozen bytes.
const MAX_LINE: u64 = 4096;

/// What a reply says, from its first word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// `VA`: a value follows.
    Value,
    /// `HD`: done (stored, touched, deleted).
    Done,
    /// `EN`: no such item (`mg`).
    Miss,
    /// `NS`: not stored (`ms` in add mode, the key exists).
    NotStored,
    /// `EX`: the CAS value did not match.
    Exists,
    /// `NF`: no such item (`ms` with a CAS value, `md`).
    NotFound,
    /// `MN`: the answer to `mn`.
    NoOp,
}

/// The flags of a reply this client asks for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    /// `c`: the item's CAS value.
    pub(super) cas: Option<u64>,
}

/// One reply.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: Status,
    pub(super) meta: Meta,
    pub(super) value: Option<Vec<u8>>,
}

/// Why a call on a connection failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ClientError {
    /// Reading or writing failed, or the server closed the connection.
    #[error("connection failed: {0}")]
    Io(#[from] io::Error),
    /// The server answered `SERVER_ERROR`, `CLIENT_ERROR` or `ERROR`.
    #[error("server replied {0:?}")]
    Server(String),
    /// The reply is not meta protocol this client understands.
    #[error("unexpected reply: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Whether the server said the item is above its size limit.
    pub(super) fn is_too_large(&self) -> bool {
        matches!(self, ClientError::Server(m) if m.contains("too large"))
    }
}

/// How `ms` stores.
#[derive(Debug, Clone, Copy)]
pub(super) enum SetMode {
    /// Only if the key is free (`ME`).
    Add,
    /// Only if the item's CAS value is this one (`C`).
    Cas(u64),
    /// Unconditionally.
    Set,
}

/// `mg <key> v c`: value and CAS value.
pub(super) fn get(key: &str) -> Vec<u8> {
    format!("mg {key} v c\r\n").into_bytes()
}

/// `gets <key>…`: several items, with their CAS values, in one command.
pub(super) fn gets(keys: &[&str]) -> Vec<u8> {
    format!("gets {}\r\n", keys.join(" ")).into_bytes()
}

/// `mg <key> T<exptime> c`: sets the lifetime without reading or writing
/// the value.
pub(super) fn touch(key: &str, exptime: i64) -> Vec<u8> {
    format!("mg {key} T{exptime} c\r\n").into_bytes()
}

/// `ms <key> <len> T<exptime> c [ME|C<cas>]` and the value.
pub(super) fn set(key: &str, value: &[u8], exptime: i64, mode: SetMode) -> Vec<u8> {
    let mode = match mode {
        SetMode::Add => " ME".to_owned(),
        SetMode::Cas(cas) => format!(" C{cas}"),
        SetMode::Set => String::new(),
    };
    let mut out = format!("ms {key} {} T{exptime} c{mode}\r\n", value.len()).into_bytes();
    out.reserve(value.len() + 2);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

/// `md <key>`.
pub(super) fn delete(key: &str) -> Vec<u8> {
    format!("md {key}\r\n").into_bytes()
}

/// `md <key> C<cas>`: deletes only if the item's CAS value is `cas`.
pub(super) fn delete_cas(key: &str, cas: u64) -> Vec<u8> {
    format!("md {key} C{cas}\r\n").into_bytes()
}

/// `mn`: answers `MN`, to check that a server is there.
pub(super) fn no_op() -> Vec<u8> {
    b"mn\r\n".to_vec()
}

/// One item of a `gets` reply.
#[derive(Debug)]
pub(super) struct Item {
    pub(super) key: String,
    pub(super) cas: u64,
    pub(super) value: Vec<u8>,
}

/// A request and the kind of reply it gets.
#[derive(Debug, Clone, Copy)]
pub(super) enum Request<'a> {
    /// A meta command, answered by one reply line (and a value).
    Meta(&'a [u8]),
    /// A `gets`, answered by items and `END`.
    Gets(&'a [u8]),
}

/// The answer to a [`Request`].
#[derive(Debug)]
pub(super) enum Answer {
    /// To [`Request::Meta`].
    Reply(Reply),
    /// To [`Request::Gets`].
    Items(Vec<Item>),
}

/// One open connection to one server.
#[derive(Debug)]
pub(super) struct Connection {
    io: BufStream<TcpStream>,
}

impl Connection {
    /// Connects to `addr` (`host:port`).
    pub(super) async fn open(addr: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            io: BufStream::new(stream),
        })
    }

    /// Sends `request` and reads its answer; see [`call`](Self::call).
    pub(super) async fn send(
        &mut self,
        request: Request<'_>,
        max_value: usize,
    ) -> Result<Answer, ClientError> {
        match request {
            Request::Meta(r) => self.call(r, max_value).await.map(Answer::Reply),
            Request::Gets(r) => self.call_gets(r, max_value).await.map(Answer::Items),
        }
    }

    /// Sends a `gets` request and reads the items found, until `END`.
    async fn call_gets(
        &mut self,
        request: &[u8],
        max_value: usize,
    ) -> Result<Vec<Item>, ClientError> {
        self.io.write_all(request).await?;
        self.io.flush().await?;
        let mut items = Vec::new();
        loop {
            let line = self.line().await?;
            let text = std::str::from_utf8(&line)
                .map_err(|_| ClientError::Protocol("reply line is not text".into()))?;
            if text == "END" {
                return Ok(items);
            }
            let (key, len, cas) = parse_value_line(text)?;
            if len > max_value {
                return Err(ClientError::Protocol(format!(
                    "value of {len} bytes is above the limit of {max_value}"
                )));
            }
            let value = self.value(len).await?;
            items.push(Item { key, cas, value });
        }
    }

    /// Reads one reply line, without its CRLF.
    async fn line(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut line = Vec::with_capacity(64);
        (&mut self.io)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if line.is_empty() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        if !line.ends_with(b"\r\n") {
            return Err(ClientError::Protocol("reply line cut or too long".into()));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    /// Reads a value of `len` bytes and its CRLF.
    async fn value(&mut self, len: usize) -> Result<Vec<u8>, ClientError> {
        let mut value = vec![0; len + 2];
        self.io.read_exact(&mut value).await?;
        if !value.ends_with(b"\r\n") {
            return Err(ClientError::Protocol("value not followed by CRLF".into()));
        }
        value.truncate(len);
        Ok(value)
    }

    /// Sends `request` and reads its reply; a value longer than
    /// `max_value` bytes is refused as a protocol error.
    ///
    /// After an error the connection's state is unknown: drop it.
    async fn call(&mut self, request: &[u8], max_value: usize) -> Result<Reply, ClientError> {
        self.io.write_all(request).await?;
        self.io.flush().await?;
        let line = self.line().await?;
        let (status, len, meta) = parse_head(&line)?;
        let value = match len {
            None => None,
            Some(len) if len > max_value => {
                return Err(ClientError::Protocol(format!(
                    "value of {len} bytes is above the limit of {max_value}"
                )));
            }
            Some(len) => Some(self.value(len).await?),
        };
        Ok(Reply {
            status,
            meta,
            value,
        })
    }
}

/// Parses a `VALUE <key> <flags> <bytes> <cas>` line of a `gets` reply
/// (or an error line): the key, the value's length and the CAS value.
pub(super) fn parse_value_line(text: &str) -> Result<(String, usize, u64), ClientError> {
    if text == "ERROR" || text.starts_with("SERVER_ERROR") || text.starts_with("CLIENT_ERROR") {
        return Err(ClientError::Server(text.to_owned()));
    }
    let bad = || ClientError::Protocol(format!("unexpected reply {text:?}"));
    let mut words = text.split(' ');
    if words.next() != Some("VALUE") {
        return Err(bad());
    }
    let key = words.next().filter(|k| !k.is_empty()).ok_or_else(bad)?;
    let _flags: u32 = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    let len: usize = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    let cas: u64 = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    if words.next().is_some() {
        return Err(bad());
    }
    Ok((key.to_owned(), len, cas))
}

/// Parses a reply line (without its CRLF): the status, the value's length
/// for `VA`, and the flags.
pub(super) fn parse_head(line: &[u8]) -> Result<(Status, Option<usize>, Meta), ClientError> {
    let text = std::str::from_utf8(line)
        .map_err(|_| ClientError::Protocol("reply line is not text".into()))?;
    if text == "ERROR" || text.starts_with("SERVER_ERROR") || text.starts_with("CLIENT_ERROR") {
        return Err(ClientError::Server(text.to_owned()));
    }
    let mut words = text.split(' ');
    let status = match words.next().unwrap_or("") {
        "VA" => Status::Value,
        "HD" => Status::Done,
        "EN" => Status::Miss,
        "NS" => Status::NotStored,
        "EX" => Status::Exists,
        "NF" => Status::NotFound,
        "MN" => Status::NoOp,
        _ => return Err(ClientError::Protocol(format!("unknown reply {text:?}"))),
    };
    let len = if status == Status::Value {
        let len = words
            .next()
            .and_then(|w| w.parse::<usize>().ok())
            .ok_or_else(|| ClientError::Protocol(format!("bad value length in {text:?}")))?;
        Some(len)
    } else {
        None
    };
    let mut meta = Meta::default();
    // Flags not asked for (or echoed) are ignored.
    for cas in words.filter_map(|w| w.strip_prefix('c')) {
        let cas = cas
            .parse()
            .map_err(|_| ClientError::Protocol(format!("bad CAS value in {text:?}")))?;
        meta.cas = Some(cas);
    }
    Ok((status, len, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines_parse() {
        assert_eq!(
            parse_head(b"VA 3 c17 t-1").unwrap(),
            (Status::Value, Some(3), Meta { cas: Some(17) })
        );
        assert_eq!(
            parse_head(b"HD c5").unwrap(),
            (Status::Done, None, Meta { cas: Some(5) })
        );
        for (line, status) in [
            (&b"EN"[..], Status::Miss),
            (b"NS c0", Status::NotStored),
            (b"EX", Status::Exists),
            (b"NF", Status::NotFound),
            (b"MN", Status::NoOp),
        ] {
            assert_eq!(parse_head(line).unwrap().0, status);
        }
    }

    #[test]
    fn errors_and_garbage_are_errors() {
        assert!(
            parse_head(b"SERVER_ERROR object too large for cache")
                .unwrap_err()
                .is_too_large()
        );
        for line in [
            &b"ERROR"[..],
            b"CLIENT_ERROR bad command line format",
            b"",
            b"VA",
            b"VA x",
            b"VA 3 cx",
            b"HD c",
            b"\xff\xfe",
            b"STORED",
        ] {
            assert!(parse_head(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn value_lines_parse() {
        assert_eq!(
            parse_value_line("VALUE s:a 0 12 99").unwrap(),
            ("s:a".to_owned(), 12, 99)
        );
        assert!(
            parse_value_line("SERVER_ERROR out of memory")
                .unwrap_err()
                .to_string()
                .contains("out of memory")
        );
        for line in [
            "",
            "VALUE",
            "VALUE s:a 0 12",
            "VALUE s:a x 12 1",
            "VALUE s:a 0 -1 1",
            "VALUE s:a 0 1 1 extra",
            "VA 1",
        ] {
            assert!(parse_value_line(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn requests_are_meta_commands() {
        assert_eq!(get("s:a"), b"mg s:a v c\r\n");
        assert_eq!(gets(&["s:a", "s:a~t"]), b"gets s:a s:a~t\r\n");
        assert_eq!(touch("s:a", 60), b"mg s:a T60 c\r\n");
        assert_eq!(delete("s:a"), b"md s:a\r\n");
        assert_eq!(
            set("s:a", b"xy", 0, SetMode::Add),
            b"ms s:a 2 T0 c ME\r\nxy\r\n"
        );
        assert_eq!(
            set("s:a", b"xy", -1, SetMode::Cas(9)),
            b"ms s:a 2 T-1 c C9\r\nxy\r\n"
        );
        assert_eq!(set("s:a", b"", 5, SetMode::Set), b"ms s:a 0 T5 c\r\n\r\n");
    }
}
