//! Name resolution without a thread per request.
//!
//! ureq resolves the host on every request, pooled connection or not, and its default
//! resolver does so on a new thread whenever a timeout is set. The agent talks to one host:
//! this resolver looks it up in the calling thread and keeps the addresses for a while. A
//! failed refresh keeps the last good addresses, so a DNS hiccup does not fail a cycle.

use std::net::ToSocketAddrs;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use log::warn;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

#[derive(Debug)]
pub struct CachingResolver {
    ttl: Duration,
    cache: Mutex<Option<Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    host_port: String,
    resolved: Instant,
    addrs: Vec<std::net::SocketAddr>,
}

impl CachingResolver {
    pub fn new(ttl: Duration) -> CachingResolver {
        CachingResolver {
            ttl,
            cache: Mutex::new(None),
        }
    }
}

fn host_port(uri: &Uri) -> Option<String> {
    let authority = uri.authority()?;
    let port = authority.port_u16().or(match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    })?;
    Some(format!("{}:{port}", authority.host()))
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = host_port(uri).ok_or(ureq::Error::HostNotFound)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = cache
            .as_ref()
            .filter(|e| e.host_port == key && e.resolved.elapsed() < self.ttl)
            .cloned();
        let entry = match fresh {
            Some(entry) => entry,
            None => match key.to_socket_addrs() {
                Ok(found) => {
                    let entry = Entry {
                        host_port: key,
                        resolved: Instant::now(),
                        addrs: found.collect(),
                    };
                    *cache = Some(entry.clone());
                    entry
                }
                Err(e) => match cache.as_ref().filter(|e| e.host_port == key) {
                    Some(stale) => {
                        warn!("cannot resolve {key} again ({e}); keeping its last addresses");
                        stale.clone()
                    }
                    None => return Err(e.into()),
                },
            },
        };
        let mut result = self.empty();
        for addr in config
            .ip_family()
            .keep_wanted(entry.addrs.into_iter())
            .take(16)
        {
            result.push(addr);
        }
        if result.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_literals_and_caches() {
        let resolver = CachingResolver::new(Duration::from_secs(30));
        let config = Config::default();
        let uri: Uri = "http://127.0.0.1:9090/api/v1/query".parse().unwrap();
        let addrs = resolver
            .resolve(&uri, &config, NextTimeout::default())
            .unwrap();
        assert_eq!(addrs[0], "127.0.0.1:9090".parse().unwrap());
        let uri: Uri = "http://localhost/x".parse().unwrap();
        let addrs = resolver
            .resolve(&uri, &config, NextTimeout::default())
            .unwrap();
        assert!(addrs.iter().all(|a| a.port() == 80));
        assert_eq!(
            resolver.cache.lock().unwrap().as_ref().unwrap().host_port,
            "localhost:80"
        );
    }
}
