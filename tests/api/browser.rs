//! A headless Chromium driven through chromedriver's WebDriver API, spoken
//! directly over HTTP: enough to open pages, click buttons, read text and
//! take screenshots. `.ci/run` installs Debian's `chromium` and
//! `chromium-driver`; without them the browser tests fail and say so.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

/// One browser session, closed (and its chromedriver stopped) on drop.
pub struct Browser {
    driver: Child,
    client: reqwest::Client,
    session: String,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session with
    /// a window of `width` × `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromedriver = which("chromedriver").expect(
            "the browser tests need chromedriver and chromium (Debian: apt-get install chromium chromium-driver; .ci/run installs them)",
        );
        let chromium = which("chromium")
            .or_else(|| which("chromium-browser"))
            .expect("the browser tests need chromium (Debian: apt-get install chromium)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            let ready = client.get(format!("{base}/status")).send().await;
            if let Ok(answer) = ready
                && let Ok(status) = answer.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [
                            "--headless=new",
                            // Tests and CI run as root, where Chromium's sandbox cannot.
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--hide-scrollbars",
                            format!("--window-size={width},{height}"),
                        ],
                    },
                },
            },
        });
        let created: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a WebDriver answer");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_owned();
        let mut browser = Browser {
            driver,
            client,
            session: format!("{base}/session/{session}"),
        };
        browser.resize(width, height).await;
        browser
    }

    /// Sends a WebDriver command; the error WebDriver answered, if any.
    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a WebDriver answer");
        if answer["value"]["error"].is_string() {
            Err(answer["value"].clone())
        } else {
            Ok(answer["value"].clone())
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_command(method, path, body)
            .await
            .unwrap_or_else(|err| panic!("WebDriver {path}: {err}"))
    }

    /// Retries `attempt` while the page is still changing under it (an
    /// element not there yet, or gone with the page it was found on).
    async fn settled<F, Fut>(&self, what: &str, attempt: F) -> Value
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Value, Value>>,
    {
        let mut last = Value::Null;
        for _ in 0..50 {
            match attempt().await {
                Ok(value) => return value,
                // Chromium says a node "does not belong to the document"
                // when it was found on the page just replaced.
                Err(err)
                    if matches!(
                        err["error"].as_str(),
                        Some("stale element reference" | "no such element")
                    ) || err["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("does not belong to the document")) =>
                {
                    last = err;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("WebDriver {what}: {err}"),
            }
        }
        panic!("WebDriver {what}: {last}");
    }

    /// Sets the viewport to `width` × `height`.
    pub async fn resize(&mut self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.settled("the page's text", || async {
            let body = self.try_find("body").await?;
            self.try_command(reqwest::Method::GET, &format!("/element/{body}/text"), None)
                .await
        })
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn try_find(&self, css: &str) -> Result<String, Value> {
        let found = self
            .try_command(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        Ok(found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> String {
        self.settled(css, || async { self.try_find(css).await.map(Value::from) })
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks the first element matching `css`, once it is there.
    pub async fn click(&self, css: &str) {
        self.settled(css, || async {
            let element = self.try_find(css).await?;
            self.try_command(
                reqwest::Method::POST,
                &format!("/element/{element}/click"),
                Some(json!({})),
            )
            .await
        })
        .await;
    }

    /// Types `text` into the first element matching `css` (for a file
    /// input, a file's path chooses that file).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.settled(css, || async {
            let element = self.try_find(css).await?;
            self.try_command(
                reqwest::Method::POST,
                &format!("/element/{element}/value"),
                Some(json!({ "text": text })),
            )
            .await
        })
        .await;
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn execute(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Presses the Tab key once.
    pub async fn press_tab(&self) {
        self.command(
            reqwest::Method::POST,
            "/actions",
            Some(json!({ "actions": [{
                "type": "key",
                "id": "keyboard",
                "actions": [
                    { "type": "keyDown", "value": "\u{E004}" },
                    { "type": "keyUp", "value": "\u{E004}" },
                ],
            }] })),
        )
        .await;
    }

    /// The visible text of the first element matching `css`.
    pub async fn element_text(&self, css: &str) -> String {
        self.settled(css, || async {
            let element = self.try_find(css).await?;
            self.try_command(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                None,
            )
            .await
        })
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Waits until the page's text contains `words`, reloading as a person
    /// would; returns the text.
    pub async fn wait_for_text(&self, words: &str) -> String {
        let mut text = String::new();
        for _ in 0..60 {
            text = self.text().await;
            if text.contains(words) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("the page never said {words:?}; it says:\n{text}");
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshot folder");
        }
        std::fs::write(path, bytes).expect("the screenshot is written");
    }
}

impl Browser {
    /// Ends the session, which closes Chromium, and stops chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closed without `close` (a failed test): stop chromedriver at least.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn which(program: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
            .map(|path| path.to_string_lossy().into_owned())
    })
}

/// Where screenshots are kept for review: `target/screenshots/`.
pub fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots")
        .join(name)
}
