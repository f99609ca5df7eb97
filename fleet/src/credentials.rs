//! How a member proves who it is to etcd: TLS with the cluster's CA and a client certificate
//! (etcd's `--client-cert-auth`), and etcd's own users and roles. Secrets are read from files
//! and kept only inside the client: no error, log or `Debug` output carries them.

use crate::error::FleetError;
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use std::path::{Path, PathBuf};

/// The files and user a connection authenticates with. The default is none (plain `http://`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// The CA that signed etcd's server certificate (PEM). Required for `https://` endpoints.
    pub ca_file: Option<PathBuf>,
    /// The client certificate (PEM), for etcd's `--client-cert-auth`; with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// An etcd user (with auth enabled); its password is read from `password_file`.
    pub user: Option<String>,
    /// The file holding the user's password (one line; a trailing newline is ignored).
    pub password_file: Option<PathBuf>,
}

impl Credentials {
    /// No credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `ca` (PEM) for etcd's server certificate.
    pub fn ca_file(mut self, ca: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(ca.into());
        self
    }

    /// Presents the client certificate `cert` with its key `key` (both PEM).
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert_file = Some(cert.into());
        self.key_file = Some(key.into());
        self
    }

    /// Authenticates as etcd user `user`, its password read from `password_file`.
    pub fn user(mut self, user: impl Into<String>, password_file: impl Into<PathBuf>) -> Self {
        self.user = Some(user.into());
        self.password_file = Some(password_file.into());
        self
    }

    /// Whether TLS is configured.
    pub fn uses_tls(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some()
    }

    /// `options` with these credentials, checked against `endpoints`.
    ///
    /// # Errors
    /// [`FleetError::Credentials`] naming the file or setting at fault (never a secret).
    pub(crate) fn apply(
        &self,
        endpoints: &[String],
        mut options: ConnectOptions,
    ) -> Result<ConnectOptions, FleetError> {
        let refuse = |message: String| FleetError::Credentials { message };
        let https = endpoints
            .iter()
            .filter(|e| e.starts_with("https://"))
            .count();
        if https != 0 && https != endpoints.len() {
            return Err(refuse(format!(
                "endpoints {} mix http:// and https://",
                endpoints.join(",")
            )));
        }
        if self.uses_tls() && https == 0 {
            return Err(refuse(format!(
                "a CA or client certificate is given but the endpoints {} are not https://",
                endpoints.join(",")
            )));
        }
        if https > 0 && self.ca_file.is_none() {
            return Err(refuse(format!(
                "the endpoints {} are https://: give the CA file that signed etcd's certificate",
                endpoints.join(",")
            )));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(refuse(
                "a client certificate needs both its certificate file and its key file".into(),
            ));
        }
        if let Some(ca) = &self.ca_file {
            let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read(ca, "CA")?));
            if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
                tls = tls.identity(Identity::from_pem(
                    read(cert, "client certificate")?,
                    read(key, "client key")?,
                ));
            }
            options = options.with_tls(tls);
        }
        match (&self.user, &self.password_file) {
            (Some(user), Some(file)) => {
                let password = String::from_utf8(read(file, "password")?).map_err(|_| {
                    refuse(format!("the password file {} is not UTF-8", file.display()))
                })?;
                let password = password.strip_suffix('\n').unwrap_or(&password);
                let password = password.strip_suffix('\r').unwrap_or(password);
                options = options
                    .with_user(user.clone(), password.to_string())
                    .with_auto_token_refresh(true);
            }
            (None, None) => {}
            _ => {
                return Err(refuse(
                    "an etcd user needs both its name and its password file".into(),
                ))
            }
        }
        Ok(options)
    }
}

/// A credentials file's bytes; the error names the file and what it is, never its content.
fn read(path: &Path, what: &str) -> Result<Vec<u8>, FleetError> {
    std::fs::read(path).map_err(|e| FleetError::Credentials {
        message: format!("cannot read the {what} file {}: {e}", path.display()),
    })
}
