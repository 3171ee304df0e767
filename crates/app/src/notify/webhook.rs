//! Chat webhooks: the body each product's incoming webhook expects, its
//! signature, and what its answer means.
//!
//! WeCom (企业微信) and DingTalk (钉钉) robots take `{"msgtype": "text"}`;
//! DingTalk signs the URL (`timestamp`, `sign` = HMAC-SHA256 of
//! `timestamp\nsecret` keyed by the secret). Feishu/Lark takes
//! `{"msg_type": "text"}` and signs in the body (HMAC-SHA256 keyed by
//! `timestamp\nsecret` over nothing). Teams (Workflows) takes an Adaptive
//! Card. The generic hook gets casebot's own JSON and an
//! `X-Casebot-Signature: t=…,v1=…` header (HMAC-SHA256 of `t.body`).
//! All of them answer 200 for most errors and say what went wrong in the
//! body (`errcode`, `code`), so the body is read too.
//!
//! Mail text reaches these messages (a subject, a customer's name): it is
//! sent as plain text where the product has it, and where the product reads
//! markup (Feishu's `<at>`, Teams' Markdown) the markup characters are
//! neutralised, so a subject can never mention everyone or forge a link.

use std::time::Duration;

use base64::Engine;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use ring::hmac;

use super::Delivery;
use crate::config::{WebhookConfig, WebhookFormat};

/// A webhook request ready to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

/// What one message says: a heading and its lines (each with its link).
#[derive(Debug, Clone, Default)]
pub struct Text {
    pub heading: String,
    pub lines: Vec<String>,
    /// Machine-readable notices for the generic hook.
    pub notices: Vec<serde_json::Value>,
    pub person: String,
}

impl Text {
    fn plain(&self) -> String {
        let mut out = self.heading.clone();
        for line in &self.lines {
            out.push('\n');
            out.push_str(line);
        }
        out
    }
}

fn sign(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
        .as_ref()
        .to_vec()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// DingTalk's signature of `timestamp_ms` (what its robot recomputes).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    base64(&sign(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    ))
}

/// Feishu's signature of `timestamp` (seconds).
pub fn feishu_sign(secret: &str, timestamp: i64) -> String {
    base64(&sign(format!("{timestamp}\n{secret}").as_bytes(), b""))
}

/// The generic hook's signature header value.
pub fn generic_sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mac = sign(secret.as_bytes(), format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Feishu reads `<at user_id="all">` in text messages: the angle brackets
/// of mail text become their full-width look-alikes.
fn no_tags(text: &str) -> String {
    text.replace('<', "＜").replace('>', "＞")
}

/// Teams renders Markdown in a TextBlock: every Markdown character of mail
/// text is escaped.
fn no_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_{}[]()#+-.!|<>~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The request `text` becomes for `hook`, signed with `secret` at `now_ms`.
pub fn request(
    hook: &WebhookConfig,
    url: &str,
    secret: Option<&str>,
    text: &Text,
    now_ms: i64,
) -> Request {
    let now = now_ms.div_euclid(1000);
    let mut url = url.to_string();
    let mut headers = Vec::new();
    let body = match hook.format {
        WebhookFormat::Wecom => serde_json::json!({
            "msgtype": "text",
            "text": { "content": text.plain() },
        }),
        WebhookFormat::Dingtalk => {
            if let Some(secret) = secret {
                let sign = dingtalk_sign(secret, now_ms);
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&format!(
                    "timestamp={now_ms}&sign={}",
                    utf8_percent_encode(&sign, NON_ALPHANUMERIC)
                ));
            }
            serde_json::json!({
                "msgtype": "text",
                "text": { "content": text.plain() },
            })
        }
        WebhookFormat::Feishu => {
            let mut body = serde_json::json!({
                "msg_type": "text",
                "content": { "text": no_tags(&text.plain()) },
            });
            if let Some(secret) = secret {
                body["timestamp"] = serde_json::json!(now.to_string());
                body["sign"] = serde_json::json!(feishu_sign(secret, now));
            }
            body
        }
        WebhookFormat::Teams => {
            let mut blocks = vec![serde_json::json!({
                "type": "TextBlock", "text": no_markdown(&text.heading),
                "weight": "Bolder", "wrap": true,
            })];
            blocks.extend(text.lines.iter().map(
                |l| serde_json::json!({"type": "TextBlock", "text": no_markdown(l), "wrap": true}),
            ));
            serde_json::json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": blocks,
                    },
                }],
            })
        }
        WebhookFormat::Generic => serde_json::json!({
            "person": text.person,
            "text": text.plain(),
            "notices": text.notices,
        }),
    };
    let body = body.to_string();
    if let (WebhookFormat::Generic, Some(secret)) = (hook.format, secret) {
        headers.push(("x-casebot-signature", generic_sign(secret, now, &body)));
    }
    Request { url, body, headers }
}

/// Reads a webhook's answer: HTTP status, `Retry-After`, and the product's
/// own error code in the body.
pub fn outcome(
    format: WebhookFormat,
    status: u16,
    retry_after: Option<u64>,
    body: &str,
) -> Delivery {
    let said = || {
        let body: String = body.chars().take(300).collect();
        format!("HTTP {status}: {body}")
    };
    if status == 429 || status == 408 || status >= 500 {
        return Delivery::Retry {
            error: said(),
            after: retry_after,
        };
    }
    if !(200..300).contains(&status) {
        return Delivery::Failed(said());
    }
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let code = match format {
        WebhookFormat::Wecom | WebhookFormat::Dingtalk => json["errcode"].as_i64(),
        WebhookFormat::Feishu => json["code"].as_i64().or(json["StatusCode"].as_i64()),
        WebhookFormat::Teams | WebhookFormat::Generic => None,
    };
    match code {
        None | Some(0) => Delivery::Sent,
        // Sending too fast: WeCom 45009, DingTalk 130101, Feishu 9499/11232.
        Some(45009 | 130101 | 9499 | 11232) => Delivery::Retry {
            error: said(),
            after: retry_after,
        },
        Some(_) => Delivery::Failed(said()),
    }
}

/// Posts `req` (no redirects followed: a hook's URL is its whole address).
pub async fn post(client: &reqwest::Client, hook: &WebhookConfig, req: &Request) -> Delivery {
    let mut builder = client
        .post(&req.url)
        .timeout(Duration::from_secs(hook.timeout_secs.clamp(1, 120)))
        .header("content-type", "application/json; charset=utf-8")
        .body(req.body.clone());
    for (name, value) in &req.headers {
        builder = builder.header(*name, value);
    }
    let response = match builder.send().await {
        Ok(r) => r,
        Err(e) => {
            return Delivery::Retry {
                error: format!("webhook {}: {}", hook.name, without_url(&e)),
                after: None,
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // A hook's answer is a few bytes; more is not read.
    let body = match tokio::time::timeout(Duration::from_secs(10), response.bytes()).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned(),
        _ => String::new(),
    };
    match outcome(hook.format, status, retry_after, &body) {
        Delivery::Retry { error, after } => Delivery::Retry {
            error: format!("webhook {}: {error}", hook.name),
            after,
        },
        Delivery::Failed(error) => Delivery::Failed(format!("webhook {}: {error}", hook.name)),
        Delivery::Sent => Delivery::Sent,
    }
}

/// A reqwest error without the URL, which holds the group's key.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(format: WebhookFormat) -> WebhookConfig {
        WebhookConfig {
            name: "desk".into(),
            format,
            url_env: "X".into(),
            secret_env: String::new(),
            events: Vec::new(),
            timeout_secs: 5,
        }
    }

    fn text(line: &str) -> Text {
        Text {
            heading: "casebot".into(),
            lines: vec![line.into()],
            notices: Vec::new(),
            person: "alice".into(),
        }
    }

    #[test]
    fn dingtalk_signs_the_url_and_feishu_the_body() {
        // DingTalk's documented example recomputed: HMAC-SHA256 keyed by the
        // secret over "timestamp\nsecret".
        let req = request(
            &hook(WebhookFormat::Dingtalk),
            "https://oapi.example.com/robot/send?access_token=abc",
            Some("SECxyz"),
            &text("a"),
            1_700_000_000_123,
        );
        let expected = dingtalk_sign("SECxyz", 1_700_000_000_123);
        assert!(req.url.starts_with(
            "https://oapi.example.com/robot/send?access_token=abc&timestamp=1700000000123&sign="
        ));
        assert!(
            req.url
                .ends_with(&utf8_percent_encode(&expected, NON_ALPHANUMERIC).to_string())
        );
        let feishu = request(
            &hook(WebhookFormat::Feishu),
            "https://open.example.com/hook/x",
            Some("s3"),
            &text("a"),
            1_700_000_000_999,
        );
        let body: serde_json::Value = serde_json::from_str(&feishu.body).unwrap();
        assert_eq!(body["timestamp"], "1700000000");
        assert_eq!(body["sign"], feishu_sign("s3", 1_700_000_000));
        assert_ne!(
            feishu_sign("s3", 1_700_000_000),
            feishu_sign("s4", 1_700_000_000)
        );
    }

    #[test]
    fn mail_text_cannot_mention_everyone_or_forge_a_link() {
        let hostile = "<at user_id=\"all\"></at> [click](http://evil.example)";
        let feishu = request(&hook(WebhookFormat::Feishu), "u", None, &text(hostile), 0);
        assert!(!feishu.body.contains("<at"));
        let teams = request(&hook(WebhookFormat::Teams), "u", None, &text(hostile), 0);
        assert!(
            teams
                .body
                .contains(r"\\[click\\]\\(http://evil\\.example\\)")
        );
    }

    #[test]
    fn answers_are_read_from_the_status_and_the_body() {
        use WebhookFormat::*;
        assert_eq!(
            outcome(Wecom, 200, None, r#"{"errcode":0,"errmsg":"ok"}"#),
            Delivery::Sent
        );
        assert!(matches!(
            outcome(
                Wecom,
                200,
                None,
                r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#
            ),
            Delivery::Failed(_)
        ));
        assert!(matches!(
            outcome(Dingtalk, 200, None, r#"{"errcode":130101}"#),
            Delivery::Retry { .. }
        ));
        assert!(matches!(
            outcome(
                Feishu,
                200,
                None,
                r#"{"code":19021,"msg":"sign match fail"}"#
            ),
            Delivery::Failed(_)
        ));
        assert_eq!(outcome(Teams, 202, None, ""), Delivery::Sent);
        assert_eq!(
            outcome(Generic, 429, Some(7), ""),
            Delivery::Retry {
                error: "HTTP 429: ".into(),
                after: Some(7)
            }
        );
        assert!(matches!(
            outcome(Generic, 404, None, ""),
            Delivery::Failed(_)
        ));
    }
}
