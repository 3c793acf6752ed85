//! URL helpers shared by the layers that must not import each other (`api` validation and the
//! `search` client).

use url::Url;

/// `host:port` of a URL, with the scheme's default port filled in.
pub fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_fills_default_ports() {
        assert_eq!(
            host_port(&Url::parse("https://es.example.com").unwrap()),
            "es.example.com:443"
        );
        assert_eq!(
            host_port(&Url::parse("http://127.0.0.1:9200").unwrap()),
            "127.0.0.1:9200"
        );
    }
}
