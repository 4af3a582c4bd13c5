//! `Device`: what the app chose to record about where a session is used.

/// What the app chose to record about the device of a session, shown in
/// listings ([`SessionInfo::device`](crate::SessionInfo::device)).
///
/// Nothing is recorded unless the app says so, typically from the log-in
/// request's `User-Agent` header and client address:
///
/// ```
/// use session_core::Device;
///
/// let device = Device::new()
///     .with_user_agent("Mozilla/5.0 (X11; Linux x86_64)")
///     .with_ip("203.0.113.7");
/// assert_eq!(device.ip.as_deref(), Some("203.0.113.7"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Device {
    /// The browser's `User-Agent`, as the app recorded it.
    pub user_agent: Option<String>,
    /// The client's IP address, as the app recorded it.
    pub ip: Option<String>,
}

impl Device {
    /// Nothing recorded.
    pub fn new() -> Self {
        Device::default()
    }

    /// Records the user agent.
    pub fn with_user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    /// Records the IP address.
    pub fn with_ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }
}
