//! Built-in TLS (rustls with the ring provider): the certificate and key read at start-up,
//! HTTP/2 or HTTP/1.1 chosen by ALPN, and whether a request came over HTTPS.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types};

/// A TLS connection as the server holds it.
pub type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// ALPN protocol id of HTTP/2.
pub const H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
pub const HTTP1: &[u8] = b"http/1.1";

/// Marks a request that reached the server over HTTPS: on its own TLS, or through a trusted
/// proxy that says so (`X-Forwarded-Proto: https`). Cookies it is answered with are `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Https;

/// A certificate or key that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM.
    #[error("TLS {what} {path}: {reason}")]
    File {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("TLS: {0}")]
    Refused(#[from] rustls::Error),
}

/// Reads a PEM certificate chain and its private key and makes the acceptor every TLS
/// connection is handshaken with; the client picks HTTP/2 or HTTP/1.1 by ALPN.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    use pki_types::pem::PemObject;
    fn file_error(what: &'static str, path: &Path) -> impl Fn(pki_types::pem::Error) -> TlsError {
        move |e| TlsError::File {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        }
    }
    let chain = pki_types::CertificateDer::pem_file_iter(cert)
        .map_err(file_error("certificate", cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(file_error("certificate", cert))?;
    if chain.is_empty() {
        return Err(TlsError::File {
            what: "certificate",
            path: cert.to_owned(),
            reason: "no CERTIFICATE block in the file".into(),
        });
    }
    let key = pki_types::PrivateKeyDer::from_pem_file(key).map_err(file_error("key", key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![H2.to_vec(), HTTP1.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Whether a request is HTTPS as far as its cookies go: its connection is TLS, or it came
/// from a trusted proxy whose last `X-Forwarded-Proto` says `https`.
pub fn is_https<'a>(
    tls: bool,
    from_trusted_proxy: bool,
    mut headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> bool {
    tls || from_trusted_proxy
        && headers.any(|(name, value)| {
            name.eq_ignore_ascii_case("x-forwarded-proto")
                && value
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"https"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_proxy_can_say_the_request_was_https() {
        let https = [("X-Forwarded-Proto", &b"https"[..])];
        assert!(is_https(true, false, std::iter::empty()));
        assert!(is_https(false, true, https.into_iter()));
        assert!(!is_https(false, false, https.into_iter()));
        let chain = [("x-forwarded-proto", &b"https, http"[..])];
        assert!(!is_https(false, true, chain.into_iter()));
        assert!(!is_https(false, true, std::iter::empty()));
    }

    #[test]
    fn a_missing_or_empty_certificate_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("stentor-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = acceptor(&dir.join("missing.pem"), &empty).err().unwrap();
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let e = acceptor(&empty, &empty).err().unwrap();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
