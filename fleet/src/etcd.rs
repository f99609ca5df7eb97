//! The connection to etcd: one client (cheap to clone, one HTTP/2 channel shared by every task
//! that clones it), the endpoints for error messages, and the timeout every call is held to.

use crate::credentials::Credentials;
use crate::error::FleetError;
use crate::feed::Feeds;
use etcd_client::{Client, ConnectOptions};
use std::future::Future;
use std::time::Duration;

/// How long a call may take before it is reported as `etcd unavailable` (default 5 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to an etcd cluster.
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    endpoints: String,
    timeout: Duration,
    /// The watches that keep this connection's members' mirrors current, one per subnet.
    feeds: Feeds,
}

impl Etcd {
    /// Connects to `endpoints` (`http://127.0.0.1:2379`, ...) and checks that the cluster
    /// answers, giving up after `timeout`; every later call is held to the same timeout.
    ///
    /// # Errors
    /// [`FleetError::Unavailable`] or [`FleetError::Timeout`] naming the endpoints.
    pub async fn connect(endpoints: &[String], timeout: Duration) -> Result<Self, FleetError> {
        Self::connect_with(endpoints, timeout, &Credentials::new()).await
    }

    /// Connects as [`connect`](Self::connect) does, authenticating with `credentials` (TLS with
    /// a CA and a client certificate, an etcd user).
    ///
    /// # Errors
    /// [`FleetError::Credentials`] for credentials that cannot be used (naming the file);
    /// [`FleetError::Rejected`] naming the endpoints when etcd refuses the client certificate;
    /// [`FleetError::Unavailable`] when it cannot be reached or refuses the user and password;
    /// [`FleetError::Timeout`].
    pub async fn connect_with(
        endpoints: &[String],
        timeout: Duration,
        credentials: &Credentials,
    ) -> Result<Self, FleetError> {
        let names = endpoints.join(",");
        let options = credentials.apply(
            endpoints,
            ConnectOptions::new()
                .with_connect_timeout(timeout)
                .with_timeout(timeout),
        )?;
        let client =
            match tokio::time::timeout(timeout, Client::connect(endpoints, Some(options))).await {
                Ok(Ok(c)) => c,
                Ok(Err(source)) => {
                    return Err(FleetError::Unavailable {
                        endpoints: names,
                        source,
                    })
                }
                Err(_) => {
                    return Err(FleetError::Timeout {
                        endpoints: names,
                        after: timeout,
                    })
                }
            };
        let etcd = Etcd {
            client,
            endpoints: names,
            timeout,
            feeds: Feeds::default(),
        };
        // The client connects lazily: ask the cluster once, so a wrong endpoint is reported
        // here and not at the first claim.
        match etcd.call(etcd.client().status()).await {
            Ok(_) => Ok(etcd),
            // A TLS session that fails after the connection was made: etcd refused the client's
            // certificate (with --client-cert-auth it ends the session, and the client sees
            // only a closed connection or a broken pipe), or the client refused etcd's.
            Err(FleetError::Unavailable { endpoints, source })
                if credentials.uses_tls() && tls_refusal(&source).is_some() =>
            {
                Err(FleetError::Rejected {
                    endpoints,
                    reason: tls_refusal(&source).unwrap_or_default().into(),
                    source,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// A client handle for one call (a clone shares the connection).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The subnet watches of this connection.
    pub(crate) fn feeds(&self) -> &Feeds {
        &self.feeds
    }

    /// The endpoints, as errors name them.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    /// Runs one etcd call under the timeout, naming the endpoints on failure.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, FleetError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(FleetError::Unavailable {
                endpoints: self.endpoints.clone(),
                source,
            }),
            Err(_) => Err(FleetError::Timeout {
                endpoints: self.endpoints.clone(),
                after: self.timeout,
            }),
        }
    }
}

/// Why a TLS connection failed once made, as far as the client can tell; `None` when it was
/// never made (nothing listens, a timeout).
fn tls_refusal(e: &etcd_client::Error) -> Option<&'static str> {
    let text = format!("{e:?}");
    if text.contains("tcp connect error") || !text.contains("Transport") {
        return None;
    }
    Some(
        if text.contains("invalid peer certificate") || text.contains("UnknownIssuer") {
            "etcd's certificate is not signed by the given CA, or not for this address"
        } else {
            "etcd ended the TLS session as it was set up: it refuses this client's certificate \
             (none given, or not signed by the CA etcd trusts)"
        },
    )
}
