//! Parse tests on the hand-written fixture mails (tests/fixtures/mail).

use casebot_app::config::Config;
use casebot_core::domain::Direction;
use casebot_core::mail::parse::{DateSource, MailParser, ParsedMail};
use chrono::Utc;

fn parse(name: &str) -> ParsedMail {
    let raw = std::fs::read(super::fixture(&format!("mail/{name}"))).unwrap();
    let parser = MailParser::new(
        &Config::default().desk,
        &Config::default().grammar,
        &Config::default().ingest,
    )
    .unwrap();
    parser
        .parse(&raw, Utc::now())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn gb2312_subject_folded_over_two_encoded_words_and_body() {
    let m = parse("gb2312_body.eml");
    assert_eq!(m.subject_info.case_id.as_deref(), Some("CAS-10001-HL7Q2M"));
    assert_eq!(m.subject_info.stage.as_deref(), Some("案例重新分配"));
    assert_eq!(m.subject_info.internal_ref.as_deref(), Some("CMIT:0002001"));
    assert_eq!(m.subject_info.prefixes, ["回复"]);
    assert_eq!(
        m.from.as_ref().and_then(|f| f.name.as_deref()),
        Some("王小明")
    );
    assert!(m.body.new_text.contains("还是同样的错误"), "{:?}", m.body);
    assert_eq!(m.date.to_rfc3339(), "2023-02-22T14:39:54+00:00");
    assert_eq!(m.date_offset_minutes, Some(480));
}

#[test]
fn gbk_8bit_and_big5_bodies() {
    let m = parse("gbk_8bit.eml");
    // 镕 is in GBK but not in GB2312: proves the GBK table is used.
    assert!(
        m.body.new_text.contains("第二次上传完毕") && m.body.new_text.contains('镕'),
        "{:?}",
        m.body
    );
    let m = parse("big5_body.eml");
    assert_eq!(m.subject_info.case_id.as_deref(), Some("CAS-10003-TW8K2P"));
    assert!(m.body.new_text.contains("問題解決了"));
    assert!(m.resolution_phrase.is_some());
}

#[test]
fn q_and_b_encoded_words_folded_in_utf8() {
    let m = parse("folded_subject.eml");
    let s = &m.subject_info;
    assert_eq!(s.case_id.as_deref(), Some("CAS-10004-QX9W3R"));
    assert_eq!(
        (s.priority.as_deref(), s.customer.as_deref()),
        (Some("P2"), Some("ACME-BANK"))
    );
    assert_eq!(s.title.as_deref(), Some("用户反馈1月补丁KB5022286安装失败"));
    assert_eq!(s.kbs, ["KB5022286"]);
    assert_eq!(s.stage.as_deref(), Some("初次响应"));
    assert_eq!(m.date_offset_minutes, Some(0));
}

#[test]
fn html_only_mail_gives_text_and_href_links_without_script() {
    let m = parse("html_only.eml");
    assert!(m.body.new_text.contains("日志太大"));
    assert!(!m.body.new_text.contains("alert"), "{:?}", m.body.new_text);
    assert_eq!(m.links.len(), 1);
    assert_eq!(m.links[0].url, "https://files.example.cn/share?id=42&k=abc");
}

#[test]
fn utf8_declared_as_gb2312_in_subject_and_body() {
    let m = parse("wrong_charset.eml");
    assert_eq!(m.subject, "回复: [案例号:CAS-10001-HL7Q2M] %更新%");
    assert_eq!(
        m.body.new_text,
        "李老师，您好\n问题解决了。更新已安装成功。非常感谢！"
    );
    assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
    assert!(m.resolution_phrase.is_some());
}

#[test]
fn missing_message_id_and_malformed_date() {
    let a = parse("no_message_id.eml");
    assert!(a.message_id_synthesized && a.message_id == parse("no_message_id.eml").message_id);
    let m = parse("malformed_date.eml");
    assert_eq!(m.date_source, DateSource::Received);
    assert_eq!(m.date.to_rfc3339(), "2023-03-21T03:41:49+00:00");
}

#[test]
fn auto_reply_and_bounce_are_never_the_customer() {
    let m = parse("auto_reply.eml");
    assert_eq!(m.direction, Direction::Auto);
    // It says 问题解决了, but an auto-reply never confirms a fix.
    assert_eq!(m.resolution_phrase, None);
    let m = parse("bounce.eml");
    assert_eq!(m.direction, Direction::Bounce);
    assert_eq!(m.subject_info.case_id, None);
}

#[test]
fn zip_attachment_with_encoded_name() {
    let m = parse("zip_attachment.eml");
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(a.filename.as_deref(), Some("日志_CBS.zip"));
    assert_eq!(a.content_type, "application/x-zip-compressed");
    assert!(a.size > 100);
    assert_eq!(m.body.new_text, "日志见附件。");
}
