//! `casebot bench`: measured figures, printed, never asserted in tests.
//!
//! `bench ingest` makes up N realistic mails on the fly (threads of five in
//! the partner's subject grammar, mixed UTF-8 / GB2312 / GBK / Big5 bodies,
//! RFC 2047 subjects folded over two lines, HTML-only mails, log
//! attachments, a thread that lost its References) and runs them through
//! the real pipeline into a throwaway SQLite store. Generation happens inside
//! the timed run, so the figure is a lower bound for parse + thread + store.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{TimeZone, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::ingest::Pipeline;
use crate::mailbox::{RawMail, ReadResult, Source};
use crate::store::Store;

/// Messages per generated thread.
const THREAD_LEN: u64 = 5;

/// A small deterministic PRNG: the same N gives the same mails.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

#[derive(Clone, Copy)]
enum Charset {
    Utf8Qp,
    Gb2312B64,
    Gbk8bit,
    Big5B64,
}

fn case_number(thread: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let mut h = mix(thread);
    let suffix: String = (0..6)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect();
    format!("CAS-{:05}-{suffix}", thread % 100_000)
}

fn message_id(i: u64) -> String {
    format!("<bench.{i}.{:x}@mail.example.cn>", mix(i) & 0xffff_ffff)
}

/// RFC 2047 B-encoding split into two encoded words on folded lines.
fn encoded_subject(charset: &str, bytes: &[u8]) -> String {
    let cut = bytes.len() / 2;
    // Split on a character boundary of the multi-byte charset: even offset for
    // the two-byte CJK encodings, a UTF-8 boundary for UTF-8.
    let cut = if charset == "UTF-8" {
        (cut..bytes.len())
            .find(|&i| (bytes[i] & 0xC0) != 0x80)
            .unwrap_or(bytes.len())
    } else {
        let mut i = 0;
        while i < cut {
            i += if bytes[i] >= 0x80 { 2 } else { 1 };
        }
        i.min(bytes.len())
    };
    format!(
        "=?{charset}?B?{}?=\r\n =?{charset}?B?{}?=",
        B64.encode(&bytes[..cut]),
        B64.encode(&bytes[cut..])
    )
}

fn wrap76(s: &str) -> String {
    s.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn qp_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    let mut line = 0;
    for &b in bytes {
        let piece = if b == b'\n' {
            line = 0;
            out.push_str("\r\n");
            continue;
        } else if b == b'\r' {
            continue;
        } else if (33..=126).contains(&b) && b != b'=' || b == b' ' {
            (b as char).to_string()
        } else {
            format!("={b:02X}")
        };
        if line + piece.len() > 75 {
            out.push_str("=\r\n");
            line = 0;
        }
        line += piece.len();
        out.push_str(&piece);
    }
    out
}

/// Just enough simplified → traditional mapping for the generator's texts.
fn to_traditional(s: &str) -> String {
    const MAP: &[(char, char)] = &[
        ('复', '復'),
        ('号', '號'),
        ('户', '戶'),
        ('馈', '饋'),
        ('补', '補'),
        ('装', '裝'),
        ('败', '敗'),
        ('响', '響'),
        ('应', '應'),
        ('进', '進'),
        ('问', '問'),
        ('题', '題'),
        ('义', '義'),
        ('动', '動'),
        ('请', '請'),
        ('志', '誌'),
        ('并', '並'),
        ('传', '傳'),
        ('师', '師'),
        ('况', '況'),
        ('旧', '舊'),
        ('显', '顯'),
        ('务', '務'),
        ('邮', '郵'),
        ('发', '發'),
        ('时', '時'),
        ('间', '間'),
        ('骤', '驟'),
        ('后', '後'),
        ('决', '決'),
        ('谢', '謝'),
        ('结', '結'),
        ('经', '經'),
        ('认', '認'),
        ('确', '確'),
        ('总', '總'),
        ('检', '檢'),
        ('陈', '陳'),
        ('刘', '劉'),
        ('张', '張'),
        ('伟', '偉'),
        ('该', '該'),
    ];
    s.chars()
        .map(|c| {
            MAP.iter()
                .find(|(from, _)| *from == c)
                .map(|(_, to)| *to)
                .unwrap_or(c)
        })
        .collect()
}

/// The `i`-th generated mail.
pub fn generate_mail(i: u64) -> Vec<u8> {
    let thread = i / THREAD_LEN;
    let pos = i % THREAD_LEN;
    let case = case_number(thread);
    let charset = match thread % 4 {
        0 => Charset::Utf8Qp,
        1 => Charset::Gb2312B64,
        2 => Charset::Gbk8bit,
        _ => Charset::Big5B64,
    };
    let engineer = pos.is_multiple_of(2);
    let customer_name = ["王小明", "陈静", "刘洋", "Zhang Wei"][(thread % 4) as usize];
    let (from, to) = if engineer {
        (
            "\"Desk Engineer\" <engineer@desk.example.com>".to_string(),
            format!("customer{}@example.cn", thread % 97),
        )
    } else {
        (
            format!("customer{}@example.cn", thread % 97),
            "support@example.com".to_string(),
        )
    };
    let kb = 5_022_000 + thread % 900;
    let subject_text = format!(
        "{}[案例号: {case} ] % |P{}|客户{}|用户反馈补丁KB{kb}安装失败 % {} CMIT:{:07}",
        if pos == 0 { "" } else { "回复: " },
        1 + thread % 4,
        thread % 50,
        if pos == 0 { "初次响应" } else { "跟进" },
        thread
    );
    let body_text = match pos {
        0 => format!(
            "{customer_name}，您好：\n问题定义:\n用户反馈补丁KB{kb}安装失败，提示0x800f0985。\n下一步动作：\n请使用日志收集工具收集日志并上传到 https://upload.example.com/case/{thread}\n"
        ),
        1 => "老师，您好\n日志已上传，请查收附件。情况依旧。\n祝好\n________________________________\n示例科技有限公司\nTel: +86-10-55500000\n"
            .to_string(),
        2 => format!(
            "您好：\n日志显示：\n2023-02-22 15:21:21, Error                 CSI    00000026 (F) STATUS_CANNOT_DELETE #5665019# from Windows::Rtl::SystemImplementation::CDirectory::DeleteExistingFile(...)[gle=0xd0000121]\n请检查 Windows Modules Installer 服务。\n\n-----原始邮件-----\n发件人: customer{}@example.cn\n发送时间: 2023年2月22日\n主题: 回复: {case}\n\n日志已上传\n",
            thread % 97
        ),
        3 => "您好\n按步骤操作后问题解决了，更新已安装成功。谢谢！\n> 请检查服务\n".to_string(),
        _ => format!("您好：\n案例总结：\nCase No：{case}\n问题总结：经用户确认，已成功安装补丁。\n"),
    };
    let (cs_name, subject_bytes, body_bytes): (&str, Vec<u8>, Vec<u8>) = match charset {
        Charset::Utf8Qp => (
            "UTF-8",
            subject_text.clone().into_bytes(),
            body_text.clone().into_bytes(),
        ),
        Charset::Gb2312B64 | Charset::Gbk8bit => {
            let name = if matches!(charset, Charset::Gb2312B64) {
                "GB2312"
            } else {
                "GBK"
            };
            let (s, _, _) = encoding_rs::GBK.encode(&subject_text);
            let (b, _, _) = encoding_rs::GBK.encode(&body_text);
            (name, s.into_owned(), b.into_owned())
        }
        Charset::Big5B64 => {
            // Big5 has no simplified characters: Big5 writers write traditional.
            let (subject, body) = (to_traditional(&subject_text), to_traditional(&body_text));
            let s = encoding_rs::BIG5.encode(&subject).0.into_owned();
            let b = encoding_rs::BIG5.encode(&body).0.into_owned();
            ("Big5", s, b)
        }
    };
    let mut headers = String::new();
    let date = Utc
        .timestamp_opt(1_676_000_000 + (thread * 3600 + pos * 600) as i64, 0)
        .single()
        .unwrap_or_default();
    headers.push_str(&format!(
        "From: {from}\r\nTo: {to}\r\nCc: partner-cases@example.net\r\n"
    ));
    headers.push_str(&format!(
        "Subject: {}\r\n",
        encoded_subject(cs_name, &subject_bytes)
    ));
    headers.push_str(&format!(
        "Date: {}\r\n",
        date.with_timezone(
            &chrono::FixedOffset::east_opt(8 * 3600)
                .unwrap_or(chrono::FixedOffset::east_opt(0).expect("zero offset"))
        )
        .to_rfc2822()
    ));
    headers.push_str(&format!("Message-ID: {}\r\n", message_id(i)));
    // Every seventh thread lost its References: the case number must carry it.
    if pos > 0 && !thread.is_multiple_of(7) {
        headers.push_str(&format!("In-Reply-To: {}\r\n", message_id(i - 1)));
        let refs: Vec<String> = (thread * THREAD_LEN..i).map(message_id).collect();
        headers.push_str(&format!("References: {}\r\n", refs.join("\r\n ")));
    }
    headers.push_str("MIME-Version: 1.0\r\n");

    let (cte, encoded_body) = match charset {
        Charset::Utf8Qp => ("quoted-printable", qp_encode(&body_bytes)),
        Charset::Gbk8bit => ("8bit", String::new()),
        _ => ("base64", wrap76(&B64.encode(&body_bytes))),
    };
    let mut text_part = format!(
        "Content-Type: text/plain; charset={cs_name}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    )
    .into_bytes();
    if matches!(charset, Charset::Gbk8bit) {
        text_part.extend_from_slice(&body_bytes);
    } else {
        text_part.extend_from_slice(encoded_body.as_bytes());
    }
    text_part.extend_from_slice(b"\r\n");

    let mut out = headers.into_bytes();
    if i % 11 == 5 {
        // HTML only, with the link only in an href.
        let html = format!(
            "<html><body><p>{}</p><p><a href=\"https://logs.example.com/d?id={i}&amp;t=x\">下载日志</a></p></body></html>",
            body_text.replace('\n', "<br>")
        );
        out.extend_from_slice(
            format!(
                "Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                wrap76(&B64.encode(html.as_bytes()))
            )
            .as_bytes(),
        );
    } else if pos == 1 {
        let boundary = format!("=_bench_{i}");
        out.extend_from_slice(
            format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(&text_part);
        let mut attachment = Vec::with_capacity(6000);
        let mut h = mix(i);
        for _ in 0..750 {
            h = mix(h);
            attachment.extend_from_slice(&h.to_le_bytes());
        }
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/zip; name=\"CBS_{thread}.zip\"\r\nContent-Disposition: attachment; filename=\"CBS_{thread}.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--{boundary}--\r\n",
                wrap76(&B64.encode(&attachment))
            )
            .as_bytes(),
        );
    } else {
        out.extend_from_slice(&text_part);
    }
    out
}

/// Peak resident memory of this process, in MiB (Linux), or 0.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[derive(Debug, Serialize)]
pub struct IngestFigures {
    pub mails_per_sec: f64,
    pub peak_rss_mb: f64,
    pub count: u64,
    pub seconds: f64,
    pub imported: u64,
    pub duplicate: u64,
    pub quarantined: u64,
    pub cases: i64,
    pub store_mb: f64,
}

/// Runs the ingest benchmark into a throwaway store under `dir`.
pub async fn ingest(
    count: u64,
    dir: &std::path::Path,
    progress: impl Fn(u64) + Send,
) -> Result<IngestFigures> {
    let db = dir.join("bench.db");
    let store = Store::open(&format!("sqlite://{}", db.display())).await?;
    let config = Arc::new(Config::default());
    let pipeline = Pipeline::new(store.clone(), config)?;
    let arrival = Utc::now();
    let mails: Box<dyn Iterator<Item = ReadResult> + Send> = Box::new((0..count).map(move |i| {
        Ok(RawMail {
            bytes: generate_mail(i),
            source: Source::Generated { index: i },
            arrival,
        })
    }));
    let start = Instant::now();
    let mut done = 0u64;
    let counts = pipeline
        .run(mails, |_| {
            done += 1;
            if done.is_multiple_of(1000) {
                progress(done);
            }
        })
        .await?;
    let seconds = start.elapsed().as_secs_f64();
    let (cases, _, _) = store.counts().await?;
    let store_mb = std::fs::metadata(&db)
        .map(|m| m.len() as f64 / 1048576.0)
        .unwrap_or(0.0)
        + std::fs::metadata(dir.join("bench.db-wal"))
            .map(|m| m.len() as f64 / 1048576.0)
            .unwrap_or(0.0);
    Ok(IngestFigures {
        mails_per_sec: count as f64 / seconds.max(1e-9),
        peak_rss_mb: peak_rss_mb(),
        count,
        seconds,
        imported: counts.imported,
        duplicate: counts.duplicate,
        quarantined: counts.quarantined,
        cases,
        store_mb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::direction::Direction;
    use crate::ingest::parse::MailParser;

    /// The generator must produce what it claims, or the benchmark measures nothing real.
    #[test]
    fn generated_mails_parse_as_intended() {
        let parser = MailParser::new(&Config::default()).unwrap();
        for i in 0..40 {
            let m = parser.parse(&generate_mail(i), Utc::now()).unwrap();
            assert_eq!(
                m.subject_info.case_id.as_deref(),
                Some(case_number(i / THREAD_LEN).as_str()),
                "mail {i}: {:?}",
                m.subject
            );
            assert!(
                m.subject.contains("安装失败") || m.subject.contains("安裝失敗"),
                "mail {i}: {}",
                m.subject
            );
            assert!(
                !m.subject.contains("&#") && !m.body.new_text.contains("&#"),
                "mail {i}: {}",
                m.subject
            );
            assert!(
                !m.body.new_text.is_empty() && !m.body.new_text.contains('\u{FFFD}'),
                "mail {i}: {:?}",
                m.body
            );
            let expected = if (i % THREAD_LEN).is_multiple_of(2) {
                Direction::Engineer
            } else {
                Direction::Customer
            };
            assert_eq!(m.direction, expected, "mail {i}");
            if i % THREAD_LEN == 1 && i % 11 != 5 {
                assert_eq!(m.attachments.len(), 1, "mail {i}");
            }
        }
    }
}
