//! A TCP forwarder standing in for `kubectl port-forward`: the browser talks to its port,
//! it relays every connection to the agent. Stopping it drops every connection at once and
//! frees the port, as killing a port-forward does; starting it again on the same port is
//! the researcher re-running the port-forward.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Forward {
    port: u16,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

impl Forward {
    /// Listens on `127.0.0.1:port` (0: any free port) and relays to `target`.
    pub fn start(port: u16, target: SocketAddr) -> Forward {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("forwarder cannot listen on {port}: {e}"));
        let port = listener.local_addr().expect("local address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let stop = Arc::clone(&stop);
            let connections = Arc::clone(&connections);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => relay(client, target, &connections),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        Forward {
            port,
            stop,
            connections,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes the listening port and every relayed connection.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        for stream in connections.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connects to `target` and copies both ways on two threads; a refused target drops the
/// client, as a port-forward does when the pod is gone.
fn relay(client: TcpStream, target: SocketAddr, connections: &Mutex<Vec<TcpStream>>) {
    let _ = client.set_nonblocking(false);
    let Ok(upstream) = TcpStream::connect(target) else {
        return;
    };
    let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    {
        let mut list = connections.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|s| s.peer_addr().is_ok());
        for s in [&client, &upstream] {
            if let Ok(s) = s.try_clone() {
                list.push(s);
            }
        }
    }
    std::thread::spawn(move || copy(client, upstream));
    std::thread::spawn(move || copy(upstream2, client2));
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
