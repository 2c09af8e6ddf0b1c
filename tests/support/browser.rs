//! A real headless Chromium driven over the DevTools protocol (CDP), enough to open a page,
//! evaluate JavaScript in it and take a screenshot.
//!
//! Chromium is started with `--remote-debugging-port=0` and writes the port it chose into
//! `DevToolsActivePort` in its profile directory. The test talks to the browser endpoint over
//! one WebSocket (tungstenite) and to its one tab through a flattened session
//! (`Target.attachToTarget`), so commands are plain JSON requests with an `id` and replies
//! are matched by that `id`; events in between are only kept for console output.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use super::prometheus::{TempDir, log_tail, wait_for};

/// Debian's package puts it on the PATH; `CHROMIUM_BIN` overrides it.
fn chromium_binary() -> String {
    let binary = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "chromium".into());
    let found = Command::new(&binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "\n\n{binary} not found: these tests run a real headless Chromium. Run `scripts/setup` \
         (it installs the Debian package `chromium`), or point CHROMIUM_BIN at a Chromium.\n"
    );
    binary
}

/// How long one command may take (page loads and screenshots included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium process, killed when dropped, also when a test panics half-way through
/// starting it.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Browser {
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    console: Vec<String>,
    log: PathBuf,
    // Dropped after the socket, in this order: the process, then its profile directory.
    process: Process,
    _profile: TempDir,
}

impl Browser {
    /// Starts Chromium with one blank tab of `width`×`height` CSS pixels.
    pub fn start(width: u32, height: u32) -> Browser {
        let binary = chromium_binary();
        let profile = TempDir::new("chromium");
        let log = profile.path().join("chromium.log");
        // Without the background-networking switches Chromium keeps calling home, which a
        // machine without internet access answers with refusals and delays.
        let child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--mute-audio",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("cannot create chromium.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let mut process = Process(child);
        let active = profile.path().join("DevToolsActivePort");
        let endpoint = wait_for(Duration::from_secs(30), || {
            if let Ok(Some(status)) = process.0.try_wait() {
                panic!(
                    "chromium exited at start ({status}):\n{}",
                    log_tail(&log, 30)
                );
            }
            let text = fs::read_to_string(&active).ok()?;
            let mut lines = text.lines();
            let port: u16 = lines.next()?.trim().parse().ok()?;
            let path = lines.next()?.trim().to_string();
            Some((port, path))
        });
        let Some((port, path)) = endpoint else {
            panic!(
                "chromium did not open its DevTools port within 30 s:\n{}",
                log_tail(&log, 30)
            );
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("DevTools port");
        // A handshake must not be cut by the short timeout used for reading replies.
        stream
            .set_read_timeout(Some(COMMAND_TIMEOUT))
            .expect("read timeout");
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (socket, _) = tungstenite::client(url.as_str(), stream)
            .unwrap_or_else(|e| panic!("DevTools WebSocket {url}: {e}"));
        socket
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let mut browser = Browser {
            socket,
            session: String::new(),
            next_id: 0,
            console: Vec::new(),
            log,
            process,
            _profile: profile,
        };
        let target = browser
            .command("Target.createTarget", json!({"url": "about:blank"}))
            .expect("Target.createTarget");
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = browser
            .command(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .expect("Target.attachToTarget");
        browser.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        for method in ["Page.enable", "Runtime.enable"] {
            browser
                .command(method, json!({}))
                .unwrap_or_else(|e| panic!("{method}: {e}"));
        }
        browser.set_viewport(width, height);
        browser
    }

    /// Sends one command (to the tab once attached) and waits for its result.
    pub fn command(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            request["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::text(request.to_string()))
            .map_err(|e| format!("{method}: cannot send: {e}"))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            if Instant::now() > deadline {
                return Err(format!("{method}: no answer within {COMMAND_TIMEOUT:?}"));
            }
            let message = match self.socket.read() {
                Ok(Message::Text(text)) => text,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("{method}: DevTools connection: {e}")),
            };
            let Ok(message) = serde_json::from_str::<Value>(message.as_str()) else {
                continue;
            };
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    return Err(format!("{method}: {error}"));
                }
                return Ok(message["result"].clone());
            }
            self.event(&message);
        }
    }

    /// Keeps what the page printed or threw, for failure messages.
    fn event(&mut self, message: &Value) {
        let params = &message["params"];
        match message["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| match &a["value"] {
                        Value::String(s) => s.clone(),
                        Value::Null => a["description"].as_str().unwrap_or("").to_string(),
                        v => v.to_string(),
                    })
                    .collect();
                self.console
                    .push(format!("console.{}: {}", params["type"], args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                self.console.push(format!(
                    "exception: {} {}",
                    details["text"].as_str().unwrap_or(""),
                    details["exception"]["description"].as_str().unwrap_or("")
                ));
            }
            _ => {}
        }
    }

    pub fn set_viewport(&mut self, width: u32, height: u32) {
        self.command(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .expect("Emulation.setDeviceMetricsOverride");
    }

    /// Opens `url` in the tab and waits for its load event's worth of parsing.
    pub fn navigate(&mut self, url: &str) {
        let result = self
            .command("Page.navigate", json!({"url": url}))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(error) = result["errorText"].as_str() {
            panic!("cannot open {url}: {error}");
        }
        wait_for(Duration::from_secs(30), || {
            (self.eval("document.readyState").ok()? == "complete").then_some(())
        })
        .unwrap_or_else(|| panic!("{url} did not finish loading:\n{}", self.diagnostics()));
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its JSON value.
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let result = self.command(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(details) = result.get("exceptionDetails") {
            return Err(format!(
                "{expression}: {}",
                details["exception"]["description"]
                    .as_str()
                    .or(details["text"].as_str())
                    .unwrap_or("exception")
            ));
        }
        Ok(result["result"]["value"].clone())
    }

    /// A PNG of the whole page (the viewport grown to the page's height), written to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let result = self
            .command(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let data = result["data"].as_str().expect("screenshot data");
        let png = base64_decode(data).expect("screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Console output and exceptions of the page, and the end of Chromium's log.
    pub fn diagnostics(&self) -> String {
        format!(
            "page console:\n{}\nchromium log:\n{}",
            self.console.join("\n"),
            log_tail(&self.log, 20)
        )
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

impl Drop for Browser {
    /// Asks Chromium to quit, so that all its processes are gone before the profile directory
    /// is removed; `Process` kills it if it does not within 5 s.
    fn drop(&mut self) {
        let close = json!({"id": 0, "method": "Browser.close"}).to_string();
        if self.socket.send(Message::text(close)).is_ok() {
            wait_for(Duration::from_secs(5), || {
                self.process.0.try_wait().ok().flatten()
            });
        }
        let _ = self.socket.close(None);
    }
}

/// Standard base64 (RFC 4648 with padding), as CDP sends binary data.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&three[..3 - pad]);
    }
    Some(out)
}
