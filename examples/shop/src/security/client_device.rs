//! The device a request comes from, as an extractor: what the session
//! listing shows about a log-in.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use session_core::Device;

use super::ClientIp;

/// Longest User-Agent the shop records, in characters.
const MAX_USER_AGENT: usize = 200;

/// The client's address and its `User-Agent` (control characters dropped,
/// cut at [`MAX_USER_AGENT`] characters).
#[derive(Debug, Clone)]
pub(crate) struct ClientDevice {
    /// The address, which the log-in limits count by.
    pub(crate) ip: ClientIp,
    user_agent: Option<String>,
}

impl ClientDevice {
    /// What the session index records about this device.
    pub(crate) fn device(&self) -> Device {
        let device = Device::new();
        let device = match &self.user_agent {
            Some(agent) => device.with_user_agent(agent.as_str()),
            None => device,
        };
        match self.ip.0 {
            Some(ip) => device.with_ip(ip.to_string()),
            None => device,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientDevice {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ip = ClientIp::from_request_parts(parts, state).await?;
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .map(|value| {
                String::from_utf8_lossy(value.as_bytes())
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT)
                    .collect::<String>()
            })
            .filter(|agent| !agent.trim().is_empty());
        Ok(ClientDevice { ip, user_agent })
    }
}
