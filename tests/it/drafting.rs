//! Drafted replies from import to the mail a real SMTP server receives: the
//! fictional case goes scope → next steps (from its attached CBS.log) →
//! closure, each approved on the command line and sent through Postfix's
//! smtp-sink; then a new case with the same failure is offered the fix.
//! Plus the gate's audit, no send without approval, an SMTP outage, and a
//! sender killed mid-send.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
use serde_json::Value;

use super::mailstack::{Received, SmtpSink};
use super::{casebot, repo, stderr, stdout};

const CASE: &str = "CAS-20001-AB12CD";
const SUBJECT: &str = "[案例号: CAS-20001-AB12CD ] % |P2|ACME|示例用户反馈补丁KB5022840安装失败 % 初次响应 CMIT:0003001";
const CUSTOMER: &str = "赵明 <zhao.ming@example.cn>";
const PARTNER: &str = "cases@partner.example.net";

/// A desk in a temporary folder: config.toml, store, mail to import.
struct Desk {
    dir: tempfile::TempDir,
}

impl Desk {
    fn new(smtp_port: Option<u16>) -> Desk {
        let dir = tempfile::tempdir().unwrap();
        let transport = match smtp_port {
            Some(port) => format!(
                "transport = \"smtp\"\n[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"plain\"\ntimeout_secs = 10\nusername_env = \"CASEBOT_TEST_NO_SMTP_USER\"\n"
            ),
            None => "transport = \"file\"\ndir = \"outbox\"\n".into(),
        };
        let config = format!(
            r#"[desk]
engineer_addresses = ["support@example.com"]
engineer_domains = ["desk.example.com"]

[analysis]
rules_dir = "{rules}"

[drafting]
templates_dir = "{templates}"
engineer_name = "Li Desk"
signature_lines = ["Example Servicing Desk", "Tel: +86-10-5550-0000"]
log_collector = "LogCollectorV3.zip"

[drafting.portal]
url = "https://upload.example.com/"
username = "u-{{case}}"
secret_env = "CASEBOT_TEST_PORTAL_SECRET"

[outbox]
from = "support@example.com"
from_name = "Example Servicing Desk"
retry_initial_secs = 1
retry_max_secs = 2
max_attempts = 5
{transport}"#,
            rules = repo().join("rules").display(),
            templates = repo().join("templates").display(),
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Desk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn db(&self) -> PathBuf {
        self.path().join("casebot.db")
    }

    fn run(&self, args: &[&str]) -> Output {
        casebot(&self.db(), self.path(), args)
    }

    /// Runs a command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "casebot {args:?} failed: {}",
            stderr(&o)
        );
        stdout(&o)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// Writes `mail` under a fresh name and imports it.
    fn deliver(&self, name: &str, mail: &[u8]) {
        let folder = self.path().join("incoming").join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{name}.eml")), mail).unwrap();
        self.ok(&["import", folder.to_str().unwrap()]);
    }

    fn drafts(&self) -> Vec<Value> {
        self.json(&["drafts", "--json"]).as_array().unwrap().clone()
    }

    fn pending(&self) -> Vec<Value> {
        self.drafts()
            .into_iter()
            .filter(|d| d["status"] == "pending")
            .collect()
    }
}

/// A customer mail; `attachment` is (file name, bytes).
fn customer_mail(
    subject: &str,
    message_id: &str,
    parent: Option<&str>,
    date: &str,
    text: &str,
    attachment: Option<(&str, Vec<u8>)>,
) -> Vec<u8> {
    let b = thread_mail(
        CUSTOMER,
        "support@example.com",
        subject,
        message_id,
        parent,
        date,
    )
    .cc(PARTNER.parse().unwrap());
    let body = SinglePart::plain(text.to_string());
    let m = match attachment {
        Some((name, bytes)) => b
            .multipart(
                MultiPart::mixed().singlepart(body).singlepart(
                    Attachment::new(name.to_string())
                        .body(bytes, ContentType::parse("application/zip").unwrap()),
                ),
            )
            .unwrap(),
        None => b.singlepart(body).unwrap(),
    };
    m.formatted()
}

/// The headers every test mail has; `parent` makes it a reply.
fn thread_mail(
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    parent: Option<&str>,
    date: &str,
) -> lettre::message::MessageBuilder {
    let b = lettre::Message::builder()
        .from(from.parse().unwrap())
        .to(to.parse().unwrap())
        .subject(subject)
        .message_id(Some(format!("<{message_id}>")))
        .date(
            chrono::DateTime::parse_from_rfc3339(date)
                .unwrap()
                .with_timezone(&chrono::Utc)
                .into(),
        );
    match parent {
        Some(parent) => b
            .in_reply_to(format!("<{parent}>"))
            .references(format!("<{parent}>")),
        None => b,
    }
}

/// A date `minutes` from now: mails that interleave with replies sent now.
fn soon(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339()
}

fn log_zip() -> Vec<u8> {
    let log = super::analysis::hard_link_log();
    super::analysis::zip(&[("Logs/CBS/CBS.log", log.as_bytes())])
}

fn assert_contains_all(body: &str, parts: &[&str], what: &str) {
    for part in parts {
        assert!(body.contains(part), "{what} {part:?}:\n{body}");
    }
}

/// The one pending draft; panics unless there is exactly one.
fn only_pending(desk: &Desk) -> Value {
    let pending = desk.pending();
    assert_eq!(pending.len(), 1, "{pending:#?}");
    pending[0].clone()
}

fn id_of(d: &Value) -> String {
    d["id"].as_i64().unwrap().to_string()
}

/// Approves and sends the pending draft; returns what the server received.
fn approve_and_send(desk: &Desk, sink: &SmtpSink, expect_total: usize) -> (Value, Received) {
    let d = only_pending(desk);
    let id = id_of(&d);
    desk.ok(&["approve", &id, "--as", "Li Desk"]);
    desk.ok(&["send"]);
    let got = sink.wait_for(expect_total, 10);
    assert_eq!(got.len(), expect_total, "messages at the server");
    let shown = desk.json(&["draft", "show", &id, "--json"]);
    assert_eq!(shown["status"], "sent", "{shown:#}");
    (shown, got.last().unwrap().clone())
}

/// Checks that `got` is `draft`, exactly, in the thread.
fn assert_sent_as_approved(draft: &Value, got: &Received, parent: &str) {
    let m = got.parsed();
    assert_eq!(got.mail_from, "<support@example.com>");
    assert_eq!(
        got.rcpt_to,
        ["<zhao.ming@example.cn>", &format!("<{PARTNER}>")],
        "the customer and the partner's system, never the desk"
    );
    assert_eq!(
        m.subject(),
        Some(format!("Re: {}", SUBJECT.trim()).as_str())
    );
    assert_eq!(
        got.header("In-Reply-To").as_deref(),
        Some(format!("<{parent}>").as_str())
    );
    let references = got.header("References").unwrap_or_default();
    assert!(references.ends_with(&format!("<{parent}>")), "{references}");
    let mid = draft["message_id"].as_str().unwrap();
    assert!(mid.ends_with("@example.com"), "{mid}");
    assert_eq!(m.message_id(), Some(mid));
    assert!(
        got.header("Auto-Submitted").is_none(),
        "a person approved it"
    );
    assert_eq!(
        m.from().and_then(|f| f.first()).and_then(|a| a.address()),
        Some("support@example.com")
    );
    // Text travels in canonical form (CRLF line ends, RFC 2046 §4.1.1).
    let body = m.body_text(0).unwrap().replace("\r\n", "\n");
    assert_eq!(
        body.trim_end(),
        draft["body"].as_str().unwrap().trim_end(),
        "the sent text is exactly the approved text"
    );
}

/// Runs the fictional case from its first mail to its closure; returns the
/// desk, the sink and the closure draft.
fn resolved_case() -> (Desk, SmtpSink, Value) {
    let sink = SmtpSink::start(&[]);
    let desk = Desk::new(Some(sink.port));

    // 1. The customer opens the case: the desk never answered → scope.
    desk.deliver(
        "c1",
        &customer_mail(
            SUBJECT,
            "c1@mail.example.cn",
            None,
            &soon(-60),
            "您好，\n用户安装KB5022840失败，提示无法安装此更新，请协助分析。\n赵明",
            None,
        ),
    );
    let scope = only_pending(&desk);
    assert_eq!(scope["kind"], "scope");
    assert_eq!(scope["case_id"], CASE);
    let body = scope["body"].as_str().unwrap();
    assert_contains_all(
        body,
        &[
            "赵明，您好",
            "问题定义",
            "问题范围",
            "下一步动作",
            "LogCollectorV3.zip",
            "https://upload.example.com/",
            "u-cas-20001-ab12cd",
            "Li Desk",
        ],
        "scope lacks",
    );
    let (sent, got) = approve_and_send(&desk, &sink, 1);
    assert_sent_as_approved(&sent, &got, "c1@mail.example.cn");
    let case = desk.json(&["show", CASE, "--json"]);
    assert_eq!(
        case["status"], "waiting_on_customer",
        "the sent reply is filed in the thread"
    );
    assert!(desk.pending().is_empty());

    // 2. Logs arrive, in reply to our mail → next steps from the analysis.
    let ours = sent["message_id"].as_str().unwrap().to_string();
    desk.deliver(
        "c2",
        &customer_mail(
            &format!("回复: Re: {SUBJECT}"),
            "c2@mail.example.cn",
            Some(&ours),
            &soon(5),
            "您好，日志已收集，见附件。删除SoftwareDistribution后重试还是同样的错误。",
            Some(("CMGELogs.zip", log_zip())),
        ),
    );
    let next = only_pending(&desk);
    assert_eq!(next["kind"], "next_steps");
    let body = next["body"].as_str().unwrap();
    assert!(
        body.contains("2023-02-22 15:21:21, Error")
            && body.contains("(F) STATUS_CANNOT_DELETE")
            && body.contains("HardLinkFile"),
        "the decisive lines, with their time stamps:\n{body}"
    );
    assert!(body.contains("0xd0000121"), "{body}");
    assert!(body.contains("1. "), "numbered steps:\n{body}");
    assert!(
        body.contains("仍然安装失败"),
        "what to send back if it still fails:\n{body}"
    );
    let (sent, got) = approve_and_send(&desk, &sink, 2);
    assert_sent_as_approved(&sent, &got, "c2@mail.example.cn");
    let references = got.header("References").unwrap();
    assert!(
        references.contains("<c1@mail.example.cn>") && references.contains(&format!("<{ours}>")),
        "References carry the whole chain: {references}"
    );

    // 3. The customer confirms the fix → closure.
    desk.deliver(
        "c3",
        &customer_mail(
            &format!("回复: Re: {SUBJECT}"),
            "c3@mail.example.cn",
            sent["message_id"].as_str(),
            &soon(10),
            "李老师，您好\n问题解决了，更新已安装成功。\n原因是 TrustedInstaller 服务（Windows Modules Installer）被禁用了，启用该服务后安装成功。\n祝好",
            None,
        ),
    );
    let closure = only_pending(&desk);
    assert_eq!(closure["kind"], "closure");
    let body = closure["body"].as_str().unwrap();
    assert_contains_all(
        body,
        &[
            "Case No：CAS-20001-AB12CD",
            "问题描述",
            "问题分析",
            "问题总结",
            "TrustedInstaller",
        ],
        "closure lacks",
    );
    let (sent, got) = approve_and_send(&desk, &sink, 3);
    assert_sent_as_approved(&sent, &got, "c3@mail.example.cn");
    let case = desk.json(&["show", CASE, "--json"]);
    assert_eq!(case["status"], "resolved");
    assert!(
        desk.pending().is_empty(),
        "a closed case has no pending draft"
    );
    (desk, sink, sent)
}

#[test]
fn fictional_case_from_import_to_three_sent_replies_and_knowledge_for_the_next() {
    let (desk, sink, _closure) = resolved_case();

    // The approved closure left knowledge.
    let known = desk.json(&["knowledge", "list", "--json"]);
    let known = known.as_array().unwrap();
    assert_eq!(known.len(), 1, "{known:#?}");
    assert_eq!(known[0]["case_key"], CASE);
    assert_eq!(known[0]["class"], "access_denied_or_service_disabled");
    assert!(
        known[0]["resolution"]
            .as_str()
            .unwrap()
            .contains("TrustedInstaller"),
        "{:#}",
        known[0]
    );

    // A new case with the same hard-link failure is offered the fix.
    let other =
        "[案例号:CAS-20002-ZZ99YY] % |P3|OTHERCO|另一用户补丁安装失败 % 初次响应 CMIT:0003002";
    desk.deliver(
        "n1",
        &customer_mail(
            other,
            "n1@mail.example.cn",
            None,
            &soon(20),
            "您好，又一台电脑安装更新失败，日志见附件。",
            Some(("logs.zip", log_zip())),
        ),
    );
    let draft = only_pending(&desk);
    assert_eq!(draft["case_id"], "CAS-20002-ZZ99YY");
    let body = draft["body"].as_str().unwrap();
    assert!(
        body.contains(CASE) && body.contains("TrustedInstaller"),
        "{body}"
    );
    let shown = desk.json(&["show", "CAS-20002-ZZ99YY", "--json"]);
    assert_eq!(shown["similar"][0]["case"], CASE, "{:#}", shown["similar"]);
    let text = desk.ok(&["show", "CAS-20002-ZZ99YY"]);
    assert!(
        text.contains("Similar resolved cases") && text.contains(CASE),
        "{text}"
    );

    // An engineer corrects the entry; the correction is what is offered.
    let id = known[0]["id"].as_i64().unwrap().to_string();
    desk.ok(&[
        "knowledge",
        "edit",
        &id,
        "--as",
        "Lead",
        "--resolution",
        "启用 Windows Modules Installer 服务后重试安装。",
    ]);
    let entry = desk.json(&["knowledge", "show", CASE, "--json"]);
    assert_eq!(
        entry["resolution"],
        "启用 Windows Modules Installer 服务后重试安装。"
    );
    assert_eq!(entry["updated_by"], "Lead");
    let shown = desk.json(&["show", "CAS-20002-ZZ99YY", "--json"]);
    assert_eq!(
        shown["similar"][0]["resolution"],
        "启用 Windows Modules Installer 服务后重试安装。"
    );
    drop(sink);
}

#[test]
fn new_evidence_updates_the_pending_draft_and_a_desk_reply_withdraws_it() {
    let desk = Desk::new(None);
    let first = customer_mail(
        SUBJECT,
        "e1@mail.example.cn",
        None,
        "2024-03-04T09:00:00+08:00",
        "您好，安装KB5022840失败。",
        None,
    );
    desk.deliver("e1", &first);
    let d = only_pending(&desk);
    assert_eq!(
        (d["kind"].as_str(), d["revision"].as_i64()),
        (Some("scope"), Some(1))
    );

    // More from the customer before the desk answered: the same draft, updated.
    let second = customer_mail(
        &format!("回复: {SUBJECT}"),
        "e2@mail.example.cn",
        Some("e1@mail.example.cn"),
        "2024-03-04T10:00:00+08:00",
        "补充：日志见附件。",
        Some(("logs.zip", log_zip())),
    );
    desk.deliver("e2", &second);
    let d2 = only_pending(&desk);
    assert_eq!(d2["id"], d["id"], "updated, not piled up");
    assert_eq!(d2["revision"], 2);
    assert_eq!(d2["in_reply_to"], "e2@mail.example.cn");
    assert!(
        d2["body"]
            .as_str()
            .unwrap()
            .contains("STATUS_CANNOT_DELETE"),
        "the scope now quotes the logs"
    );
    assert_eq!(desk.drafts().len(), 1);

    // A backfill of the same two mails into a fresh store drafts the same.
    let fresh = Desk::new(None);
    let folder = fresh.path().join("both");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("1.eml"), &first).unwrap();
    std::fs::write(folder.join("2.eml"), &second).unwrap();
    fresh.ok(&["import", folder.to_str().unwrap()]);
    let b = only_pending(&fresh);
    for field in [
        "kind",
        "status",
        "subject",
        "to",
        "cc",
        "in_reply_to",
        "references",
        "body",
    ] {
        assert_eq!(
            b[field], d2[field],
            "{field} differs between watching and backfill"
        );
    }

    // An engineer answers from their own mail client: nothing is owed.
    let reply = thread_mail(
        "Li Desk <li.desk@desk.example.com>",
        CUSTOMER,
        &format!("Re: {SUBJECT}"),
        "r1@desk.example.com",
        Some("e2@mail.example.cn"),
        "2024-03-04T11:00:00+08:00",
    )
    .body("已收到日志，我们会尽快分析。".to_string())
    .unwrap()
    .formatted();
    desk.deliver("r1", &reply);
    assert!(desk.drafts().is_empty(), "withdrawn: {:#?}", desk.drafts());
    let case = desk.json(&["show", CASE, "--json"]);
    let kinds: Vec<&str> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for kind in ["draft_created", "draft_updated", "draft_withdrawn"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // An auto-reply after that never draws a draft.
    let ooo = thread_mail(
        CUSTOMER,
        "support@example.com",
        &format!("自动回复: Re: {SUBJECT}"),
        "ooo@mail.example.cn",
        Some("r1@desk.example.com"),
        "2024-03-04T11:05:00+08:00",
    )
    .header(AutoSubmitted)
    .body("我正在休假。".to_string())
    .unwrap()
    .formatted();
    desk.deliver("ooo", &ooo);
    assert!(desk.drafts().is_empty(), "{:#?}", desk.drafts());
}

/// `Auto-Submitted: auto-replied`, as an out-of-office reply carries it.
#[derive(Clone)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-replied".into())
    }
}

#[test]
fn edit_approve_reject_are_audited_and_guarded() {
    let desk = Desk::new(None);
    desk.deliver(
        "a1",
        &customer_mail(
            SUBJECT,
            "a1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，安装失败。",
            None,
        ),
    );
    let d = only_pending(&desk);
    let id = id_of(&d);

    // Edit from a file (what $EDITOR would save).
    let edited = format!(
        "{}\n补充：请同时提供系统事件日志。\n",
        d["body"].as_str().unwrap()
    );
    let file = desk.path().join("edited.txt");
    std::fs::write(&file, &edited).unwrap();
    desk.ok(&[
        "draft",
        "edit",
        &id,
        "--as",
        "Wang Desk",
        "--file",
        file.to_str().unwrap(),
    ]);
    // $EDITOR too: an "editor" that appends a line.
    let editor = desk.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nprintf 'EDITOR_LINE\\n' >> \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
        .args(["draft", "edit", &id, "--as", "Wang Desk"])
        .current_dir(desk.path())
        .env("CASEBOT_DB", super::store_url(&desk.db()))
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = desk.json(&["draft", "show", &id, "--json"]);
    assert_eq!(shown["revision"], 3);
    assert_eq!(shown["edited_by"], "Wang Desk");
    let text = shown["body"].as_str().unwrap().to_string();
    assert!(
        text.starts_with(&edited) && text.ends_with("EDITOR_LINE\n"),
        "{text}"
    );

    // An approval of an older revision is refused (someone changed it since).
    let o = desk.run(&["approve", &id, "--as", "Li Desk", "--revision", "2"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    desk.ok(&["approve", &id, "--as", "Li Desk", "--revision", "3"]);
    let shown = desk.json(&["draft", "show", &id, "--json"]);
    assert_eq!(shown["status"], "approved");
    assert_eq!(shown["approved_by"], "Li Desk");
    assert!(shown["approved_at"].is_string());
    assert_eq!(shown["body"].as_str().unwrap(), text, "approved as edited");

    // Approved text is frozen; a second approval or a rejection is refused.
    let o = desk.run(&[
        "draft",
        "edit",
        &id,
        "--as",
        "X",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        desk.run(&["approve", &id, "--as", "X"]).status.code(),
        Some(4)
    );
    assert_eq!(
        desk.run(&["reject", &id, "--as", "X", "--reason", "late"])
            .status
            .code(),
        Some(4)
    );
    assert_eq!(
        desk.run(&["approve", "999", "--as", "X"]).status.code(),
        Some(3)
    );

    let case = desk.json(&["show", CASE, "--json"]);
    let events = case["events"].as_array().unwrap();
    let approved = events
        .iter()
        .find(|e| e["kind"] == "draft_approved")
        .expect("approval event");
    assert_eq!(approved["detail"]["by"], "Li Desk");
    assert_eq!(
        approved["detail"]["body"].as_str().unwrap(),
        text,
        "the exact text approved"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "draft_edited")
            .count(),
        2
    );

    // Rejection, with its reason, on another case.
    desk.deliver(
        "b1",
        &customer_mail(
            "[案例号:CAS-20003-RJ00AA] %另一个问题%",
            "b1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，又一个问题。",
            None,
        ),
    );
    let other = desk.pending();
    assert_eq!(other.len(), 1);
    let rid = id_of(&other[0]);
    assert_eq!(
        desk.run(&["reject", &rid, "--as", "Li Desk", "--reason", " "])
            .status
            .code(),
        Some(2)
    );
    desk.ok(&[
        "reject",
        &rid,
        "--as",
        "Li Desk",
        "--reason",
        "客户已电话沟通，无需邮件",
    ]);
    let r = desk.json(&["draft", "show", &rid, "--json"]);
    assert_eq!(
        (r["status"].as_str(), r["rejected_by"].as_str()),
        (Some("rejected"), Some("Li Desk"))
    );
    assert_eq!(r["reject_reason"], "客户已电话沟通，无需邮件");
    // Re-running the pipeline does not bring the rejected draft back.
    desk.ok(&["import", desk.path().join("incoming/b1").to_str().unwrap()]);
    assert!(desk.pending().is_empty());
}

#[test]
fn nothing_is_sent_without_approval() {
    let sink = SmtpSink::start(&[]);
    let desk = Desk::new(Some(sink.port));
    desk.deliver(
        "p1",
        &customer_mail(
            SUBJECT,
            "p1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，安装失败。",
            None,
        ),
    );
    assert_eq!(desk.pending().len(), 1);
    desk.ok(&["send"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(sink.received().is_empty(), "a pending draft went out");
    assert_eq!(desk.pending().len(), 1);
    let rejected = id_of(&desk.pending()[0]);
    desk.ok(&["reject", &rejected, "--as", "Li", "--reason", "wrong"]);
    desk.ok(&["send"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.received().is_empty(), "a rejected draft went out");
}

#[test]
fn smtp_down_then_up_retries_with_backoff_and_sends_once() {
    let port = super::mailstack::free_port();
    let desk = Desk::new(Some(port));
    desk.deliver(
        "s1",
        &customer_mail(
            SUBJECT,
            "s1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，安装失败。",
            None,
        ),
    );
    let id = id_of(&only_pending(&desk));
    desk.ok(&["approve", &id, "--as", "Li Desk"]);

    // Nobody listens: the draft stays approved, the failure is visible.
    desk.ok(&["send"]);
    let d = desk.json(&["draft", "show", &id, "--json"]);
    assert_eq!(d["status"], "approved", "{d:#}");
    assert_eq!(d["attempts"], 1);
    assert!(
        d["last_error"].as_str().unwrap().contains("connect"),
        "{d:#}"
    );
    assert!(d["next_attempt_at"].is_string());
    let listed = desk.ok(&["drafts"]);
    assert!(listed.contains("attempt 1 failed"), "{listed}");

    // Before the backoff ends nothing is tried; after it, the server is up.
    let sink = SmtpSink::start_on(port, &[]);
    std::thread::sleep(Duration::from_millis(2100));
    desk.ok(&["send"]);
    let got = sink.wait_for(1, 10);
    assert_eq!(got.len(), 1);
    let d = desk.json(&["draft", "show", &id, "--json"]);
    assert_eq!(d["status"], "sent");
    assert_eq!(d["attempts"], 2);
    desk.ok(&["send"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.received().len(), 1, "sent once");
}

#[test]
fn a_sender_killed_mid_send_never_sends_twice() {
    // The server waits 3 s before answering DATA: the sender is killed
    // while it waits, with the approval recorded and nothing transmitted.
    let sink = SmtpSink::start(&["-w", "3"]);
    let desk = Desk::new(Some(sink.port));
    desk.deliver(
        "k1",
        &customer_mail(
            SUBJECT,
            "k1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，安装失败。",
            None,
        ),
    );
    let id = id_of(&only_pending(&desk));
    desk.ok(&["approve", &id, "--as", "Li Desk"]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
        .arg("send")
        .current_dir(desk.path())
        .env("CASEBOT_DB", super::store_url(&desk.db()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let d = desk.json(&["draft", "show", &id, "--json"]);
    assert_eq!(d["status"], "approved", "the approval survives: {d:#}");
    assert!(
        d["sending"].as_bool().unwrap(),
        "the dead sender's claim is still there"
    );

    // The next sender sees the claim's owner is gone and sends it, once.
    desk.ok(&["send"]);
    desk.ok(&["send"]);
    let got = sink.wait_for(1, 15);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.received().len(), 1, "{got:?}");
    let d = desk.json(&["draft", "show", &id, "--json"]);
    assert_eq!(d["status"], "sent");
    let case = desk.json(&["show", CASE, "--json"]);
    assert!(
        case["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "draft_send_interrupted")
    );
}

#[test]
fn a_send_cut_off_during_the_message_data_waits_for_an_engineer() {
    // Simulated at the store: a sender that died after the server said 354.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let desk = Desk::new(None);
    desk.deliver(
        "u1",
        &customer_mail(
            SUBJECT,
            "u1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，安装失败。",
            None,
        ),
    );
    let id = only_pending(&desk)["id"].as_i64().unwrap();
    desk.ok(&["approve", &id.to_string(), "--as", "Li Desk"]);
    rt.block_on(async {
        let store = casebot_store::Store::open(&super::store_url(&desk.db()))
            .await
            .unwrap();
        let claimed = store
            .claim_next_send("gone-host:1:1", 600, casebot_store::now_ts())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, id);
        store
            .mark_send_phase(id, "gone-host:1:1", "data")
            .await
            .unwrap();
        // Its owner is known dead: the draft fails instead of going again.
        assert_eq!(store.recover_send_claims(|_| true).await.unwrap(), 1);
        let d = store.draft(id).await.unwrap().unwrap();
        assert_eq!(d.status.as_str(), "failed");
        assert!(d.last_error.unwrap().contains("may have been delivered"));
    });
    // The engineer checks and retries: the same approval, the same Message-ID.
    let before = desk.json(&["draft", "show", &id.to_string(), "--json"]);
    desk.ok(&["draft", "retry", &id.to_string(), "--as", "Li Desk"]);
    desk.ok(&["send"]);
    let after = desk.json(&["draft", "show", &id.to_string(), "--json"]);
    assert_eq!(after["status"], "sent");
    assert_eq!(after["message_id"], before["message_id"]);
    let files: Vec<_> = std::fs::read_dir(desk.path().join("outbox"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1, "the file transport wrote one .eml");
}

#[test]
fn templates_check_names_the_template_and_the_missing_variable() {
    let dir = tempfile::tempdir().unwrap();
    super::copy_dir(&repo().join("templates"), &dir.path().join("templates"));
    let o = casebot(
        &dir.path().join("db.sqlite"),
        dir.path(),
        &["templates", "check"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("OK"));
    let scope = dir.path().join("templates/en/scope.hbs");
    let text = std::fs::read_to_string(&scope)
        .unwrap()
        .replace("{{portal.url}}", "{{portal.link}}");
    std::fs::write(&scope, text).unwrap();
    let o = casebot(
        &dir.path().join("db.sqlite"),
        dir.path(),
        &["templates", "check", "--json"],
    );
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], false);
    let first = &v["errors"][0];
    assert_eq!(first["template"], "en/scope.hbs");
    assert!(
        first["message"].as_str().unwrap().contains("portal.link"),
        "{first:#}"
    );
    // The broken template stops drafting too: no draft with a hole in it.
    std::fs::write(
        dir.path().join("config.toml"),
        "[drafting]\ntemplates_dir = \"templates\"\nlanguage = \"en\"\n",
    )
    .unwrap();
    let mail = customer_mail(
        SUBJECT,
        "t1@mail.example.cn",
        None,
        "2024-03-04T09:00:00+08:00",
        "Hello, the update fails.",
        None,
    );
    std::fs::write(dir.path().join("t1.eml"), mail).unwrap();
    let o = casebot(
        &dir.path().join("db.sqlite"),
        dir.path(),
        &["import", "t1.eml"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("portal.link"), "{}", stderr(&o));
}

#[test]
fn an_english_customer_gets_an_english_draft() {
    let desk = Desk::new(None);
    desk.deliver(
        "en1",
        &customer_mail(
            SUBJECT,
            "en1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "Hello,\nthe cumulative update fails on our servers. Could you help?\nMing",
            None,
        ),
    );
    let d = only_pending(&desk);
    assert_eq!(d["language"], "en");
    let body = d["body"].as_str().unwrap();
    assert!(body.starts_with("Dear 赵明,"), "{body}");
    assert_contains_all(
        body,
        &[
            "Problem definition:",
            "Scope:",
            "Next steps:",
            "Best regards,",
        ],
        "the English draft lacks",
    );
    assert!(!body.contains("问题"), "no Chinese template text:\n{body}");
}

#[test]
fn a_traditional_chinese_customer_gets_a_traditional_chinese_draft() {
    let desk = Desk::new(None);
    desk.deliver(
        "tw1",
        &customer_mail(
            SUBJECT,
            "tw1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，\n這台伺服器的累積更新一直安裝失敗，錯誤代碼 0x800f081f，請協助處理。\n謝謝",
            None,
        ),
    );
    let d = only_pending(&desk);
    assert_eq!(d["language"], "zh-TW");
    let body = d["body"].as_str().unwrap();
    // The zh-TW templates' own words, and what casebot composed, converted.
    assert_contains_all(
        body,
        &["感謝您聯絡我們", "問題定義：", "問題範圍："],
        "the Traditional Chinese draft lacks",
    );
    for simplified in ["问题", "联系", "范围", "日志"] {
        assert!(
            !body.contains(simplified),
            "Simplified {simplified} in:\n{body}"
        );
    }
}

#[test]
fn the_daemon_drafts_and_sends_on_its_own() {
    let desk = Desk::new(None);
    let new = desk.path().join("mail/new");
    std::fs::create_dir_all(&new).unwrap();
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
        .arg("serve")
        .current_dir(desk.path())
        .env("CASEBOT_DB", super::store_url(&desk.db()))
        .env("CASEBOT_LISTEN", "")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mail = customer_mail(
        SUBJECT,
        "d1@mail.example.cn",
        None,
        &soon(-1),
        "您好，安装失败，请协助。",
        None,
    );
    std::fs::write(new.join("1700000000.d1.host"), mail).unwrap();
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait("a draft", &|| desk.pending().len() == 1);
    let id = id_of(&desk.pending()[0]);
    desk.ok(&["approve", &id, "--as", "Li Desk"]);
    let outbox = desk.path().join("outbox");
    wait("the sent file", &|| {
        std::fs::read_dir(&outbox)
            .map(|d| d.count() == 1)
            .unwrap_or(false)
    });
    wait("the case to wait on the customer", &|| {
        desk.json(&["show", CASE, "--json"])["status"] == "waiting_on_customer"
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let status = serve.wait().unwrap();
    assert!(status.success(), "serve stops cleanly on SIGTERM: {status}");
    let d = desk.json(&["draft", "show", &id, "--json"]);
    assert_eq!(d["status"], "sent");
}

#[test]
fn seed_shaped_fixture_threads_are_answered_in_their_thread() {
    let sink = SmtpSink::start(&[]);
    let desk = Desk::new(Some(sink.port));
    let threads = super::example("threads");
    // The hard-link thread up to the customer's "uploaded" mail, and the
    // hash-mismatch thread up to the partner's "still failing" mail.
    for (thread, upto) in [("hardlink", 2), ("hashmismatch", 3)] {
        let folder = desk.path().join(thread);
        std::fs::create_dir_all(&folder).unwrap();
        for n in 1..=upto {
            let name = format!("{n:02}.eml");
            std::fs::copy(threads.join(thread).join(&name), folder.join(&name)).unwrap();
        }
        desk.ok(&["import", folder.to_str().unwrap()]);
    }
    let pending = desk.pending();
    assert_eq!(pending.len(), 2, "{pending:#?}");
    for d in &pending {
        assert_eq!(d["kind"], "next_steps", "both were answered before: {d:#}");
        desk.ok(&["approve", &id_of(d), "--as", "Li Desk"]);
    }
    desk.ok(&["send"]);
    let got = sink.wait_for(2, 10);
    assert_eq!(got.len(), 2);
    let subjects: Vec<String> = got
        .iter()
        .map(|r| r.parsed().subject().unwrap_or("").to_string())
        .collect();
    assert!(
        subjects.contains(&"Re: [案例号:CAS-10001-HL7Q2M] %示例电脑OEM用户-某研究院用户反馈无法安装补丁% 案例重新分配 CMIT:0002001".to_string()),
        "{subjects:#?}"
    );
    assert!(
        subjects.contains(&"Re: [案例号: CAS-10002-HS4X6D ] % |P2|ACME-BANK|示例银行用户反馈1月补丁KB5022286安装失败 % 初次响应 CMIT:0002002".to_string()),
        "one prefix, the partner's tags as written: {subjects:#?}"
    );
    let to_partner = got
        .iter()
        .find(|r| r.parsed().subject().unwrap_or("").contains("CAS-10002"))
        .unwrap();
    assert_eq!(to_partner.rcpt_to[0], "<xu@acme-bank.example.cn>");
    assert_eq!(
        to_partner.header("In-Reply-To").as_deref(),
        Some("<b-cust-1@acme-bank.example.cn>")
    );
}

#[test]
fn starttls_required_but_not_offered_fails_without_sending() {
    let sink = SmtpSink::start(&[]);
    let desk = Desk::new(Some(sink.port));
    let config = std::fs::read_to_string(desk.path().join("config.toml"))
        .unwrap()
        .replace("security = \"plain\"", "security = \"starttls\"");
    std::fs::write(desk.path().join("config.toml"), config).unwrap();
    desk.deliver(
        "t1",
        &customer_mail(
            SUBJECT,
            "t1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，安装失败。",
            None,
        ),
    );
    let id = id_of(&only_pending(&desk));
    desk.ok(&["approve", &id, "--as", "Li Desk"]);
    let o = desk.run(&["send"]);
    assert_eq!(o.status.code(), Some(1), "a draft failed for good");
    let d = desk.json(&["draft", "show", &id, "--json"]);
    assert_eq!(d["status"], "failed");
    assert!(
        d["last_error"].as_str().unwrap().contains("STARTTLS"),
        "{d:#}"
    );
    assert!(sink.received().is_empty(), "never downgraded to plain text");
}

/// Nothing unrendered reaches a customer: a fill-in its template asked for
/// and template syntax refuse an approval, with the place named; a missing
/// signature refuses it until the engineer accepts the warning, which the
/// approval records.
#[test]
fn approval_refuses_unrendered_text_and_records_accepted_warnings() {
    let desk = Desk::new(None);
    // The desk's own templates: the scope asks for the error's time.
    let templates = desk.path().join("templates");
    super::copy_dir(&repo().join("templates"), &templates);
    let scope = templates.join("zh-CN/scope.hbs");
    let text = std::fs::read_to_string(&scope).unwrap();
    assert!(text.contains("问题定义："));
    std::fs::write(
        &scope,
        text.replace("问题定义：", "问题定义（报错时间：<ERROR_TIME>）："),
    )
    .unwrap();
    let config_path = desk.path().join("config.toml");
    let config = std::fs::read_to_string(&config_path).unwrap().replace(
        &format!("templates_dir = \"{}\"", repo().join("templates").display()),
        "templates_dir = \"templates\"",
    );
    std::fs::write(&config_path, config).unwrap();
    desk.deliver(
        "c1",
        &customer_mail(
            SUBJECT,
            "c1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，安装失败。",
            None,
        ),
    );
    let d = only_pending(&desk);
    let id = id_of(&d);
    let body = d["body"].as_str().unwrap().to_string();
    assert!(body.contains("<ERROR_TIME>"), "{body}");
    let fill_line = body
        .lines()
        .position(|l| l.contains("<ERROR_TIME>"))
        .unwrap()
        + 1;
    let approve = |extra: &[&str]| {
        desk.run(&[&["approve", id.as_str(), "--as", "Li Desk"][..], extra].concat())
    };

    let o = approve(&[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("line {fill_line}, column "))
            && stderr(&o).contains("<ERROR_TIME> is not filled in"),
        "{}",
        stderr(&o)
    );
    let edit = |text: &str| {
        let file = desk.path().join("edited.txt");
        std::fs::write(&file, text).unwrap();
        desk.ok(&[
            "draft",
            "edit",
            &id,
            "--as",
            "Li Desk",
            "--file",
            file.to_str().unwrap(),
        ]);
    };
    let filled = body.replace("<ERROR_TIME>", "2024-03-04 09:00");
    edit(&filled.replace("感谢您联系我们。", "感谢您联系我们 {{case.number}}。"));
    let o = approve(&[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("template syntax `{{` left in the text"),
        "{}",
        stderr(&o)
    );

    // Unsigned: a warning; refused until accepted.
    let unsigned: String = filled
        .lines()
        .filter(|l| {
            !l.contains("Li Desk") && !l.contains("Example Servicing Desk") && !l.contains("Tel:")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    edit(&unsigned);
    let o = approve(&[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: no signature"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--accept-warnings"), "{}", stderr(&o));
    assert_eq!(
        desk.json(&["draft", "show", &id, "--json"])["status"],
        "pending"
    );
    let o = approve(&["--accept-warnings", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let approved: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(approved["status"], "approved");
    let case = desk.json(&["show", CASE, "--json"]);
    let event = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "draft_approved")
        .expect("the approval's event");
    let accepted = event["detail"]["accepted_warnings"].to_string();
    assert!(accepted.contains("no signature"), "{event}");
}

/// A case that has waited on the customer for five business days gets the
/// archive notice drafted by itself, once; the customer's next mail replaces
/// it with what the case then calls for.
#[test]
fn a_long_wait_on_the_customer_proposes_the_archive_notice_and_a_reply_withdraws_it() {
    let desk = Desk::new(None);
    desk.deliver(
        "w1",
        &customer_mail(
            SUBJECT,
            "w1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，安装失败。",
            None,
        ),
    );
    let engineer = thread_mail(
        "Li Desk <li.desk@desk.example.com>",
        CUSTOMER,
        &format!("回复: {SUBJECT}"),
        "w2@desk.example.com",
        Some("w1@mail.example.cn"),
        "2024-03-04T10:00:00+08:00",
    )
    .singlepart(SinglePart::plain(
        "您好：\n请收集日志并上传。\nLi Desk".to_string(),
    ))
    .unwrap()
    .formatted();
    desk.deliver("w2", &engineer);
    assert_eq!(
        desk.json(&["show", CASE, "--json"])["status"],
        "waiting_on_customer"
    );
    assert!(
        desk.pending().is_empty(),
        "nothing to draft while the customer has the ball"
    );

    // The daemon's drafting stage looks for long waits when it starts.
    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
        .arg("serve")
        .current_dir(desk.path())
        .env("CASEBOT_DB", super::store_url(&desk.db()))
        .env("CASEBOT_LISTEN", "")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while desk.pending().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no archive notice proposed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Another pass finds it already proposed for this wait.
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let mut serve = serve;
    serve.wait().unwrap();
    let proposed = only_pending(&desk);
    assert_eq!(proposed["kind"], "archive", "{proposed:#}");
    assert_contains_all(
        proposed["body"].as_str().unwrap(),
        &["归档"],
        "the archive notice",
    );

    // The customer answers: the notice gives way to a reply to them.
    desk.deliver(
        "w3",
        &customer_mail(
            &format!("回复: {SUBJECT}"),
            "w3@mail.example.cn",
            Some("w2@desk.example.com"),
            "2024-03-20T09:00:00+08:00",
            "您好，日志已上传，情况依旧。",
            Some(("logs.zip", log_zip())),
        ),
    );
    let after = only_pending(&desk);
    assert_ne!(after["kind"], "archive", "{after:#}");
    assert_eq!(
        after["id"], proposed["id"],
        "the same pending draft, now another kind"
    );
}

/// `casebot user add NAME --role engineer …` with a password on stdin.
fn add_engineer(desk: &Desk, args: &[&str]) {
    let url = super::store_url(&desk.db());
    let args = [&["user", "add"][..], args].concat();
    let out = super::casebot_with_password(&url, desk.path(), &args, "a long enough password");
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The outbox's newest .eml.
fn newest_sent(desk: &Desk) -> String {
    let mut files: Vec<_> = std::fs::read_dir(desk.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let raw = std::fs::read(files.last().expect("a sent reply")).unwrap();
    // The text part is quoted-printable or base64: read it as mail does.
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    parsed.body_text(0).unwrap().into_owned()
}

/// Engineers sign their own replies: the case owner's name and lines sign
/// the reply; with `sign_as = "approver"` another engineer who approves it
/// signs it instead, recorded as an edit.
#[test]
fn replies_are_signed_by_the_owner_or_with_sign_as_approver_by_the_approver() {
    let desk = Desk::new(None);
    add_engineer(
        &desk,
        &[
            "wang.wei",
            "--role",
            "engineer",
            "--email",
            "wang.wei@desk.example.com",
            "--display-name",
            "王伟 Wang Wei",
            "--signature-line",
            "示例服务台 一组",
            "--phone",
            "+86-10-5550-0101",
        ],
    );
    add_engineer(
        &desk,
        &[
            "zhao.lin",
            "--role",
            "engineer",
            "--display-name",
            "赵琳 Zhao Lin",
        ],
    );
    let edited = desk.json(&[
        "user",
        "edit",
        "zhao.lin",
        "--phone",
        "+86-10-5550-0202",
        "--json",
    ]);
    assert_eq!(edited["phone"], "+86-10-5550-0202");
    desk.deliver(
        "s1",
        &customer_mail(
            SUBJECT,
            "s1@mail.example.cn",
            None,
            "2024-03-04T09:00:00+08:00",
            "您好，安装失败。",
            None,
        ),
    );
    desk.ok(&["assign", CASE, "wang.wei", "--as", "Zhou Lead"]);
    let id = id_of(&only_pending(&desk));
    // An approver without an account: the owner signs.
    desk.ok(&["approve", &id, "--as", "Zhou Lead", "--send"]);
    let sent = newest_sent(&desk);
    assert_contains_all(
        &sent,
        &["王伟 Wang Wei", "示例服务台 一组", "+86-10-5550-0101"],
        "the owner's signature",
    );
    assert!(!sent.contains("Li Desk"), "{sent}");

    // sign_as = "approver": zhao.lin approves the next reply and signs it.
    let config_path = desk.path().join("config.toml");
    let config = std::fs::read_to_string(&config_path).unwrap().replace(
        "engineer_name = \"Li Desk\"",
        "engineer_name = \"Li Desk\"\nsign_as = \"approver\"",
    );
    std::fs::write(&config_path, config).unwrap();
    desk.deliver(
        "s2",
        &customer_mail(
            &format!("回复: {SUBJECT}"),
            "s2@mail.example.cn",
            None,
            // After the reply just sent (dated now).
            &soon(2),
            "您好，日志已上传，情况依旧。",
            Some(("logs.zip", log_zip())),
        ),
    );
    let d = only_pending(&desk);
    assert!(
        d["body"].as_str().unwrap().contains("王伟 Wang Wei"),
        "drafted in the owner's name"
    );
    let id = id_of(&d);
    desk.ok(&["approve", &id, "--as", "zhao.lin", "--send"]);
    let sent = newest_sent(&desk);
    assert_contains_all(
        &sent,
        &["赵琳 Zhao Lin", "+86-10-5550-0202"],
        "the approver's signature",
    );
    assert!(!sent.contains("王伟 Wang Wei"), "{sent}");
    let draft = desk.json(&["draft", "show", &id, "--json"]);
    assert_eq!(
        draft["edited_by"], "zhao.lin",
        "the re-signing is a recorded edit: {draft:#}"
    );
}
