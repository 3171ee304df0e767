//! The classes of real-world mail the fixtures never had, through the real
//! pipeline into a throwaway store (SQLite, and PostgreSQL in the second
//! pass): a caseless first mail that a numbered reply claims, a bounce that
//! belongs with the mail it returns, a case number only in quoted history.
//! Every arrival order is tried, one mail per import (the daemon, IMAP
//! catch-up) and all in one mbox (one batch).

use std::path::Path;
use std::sync::Arc;

use casebot_app::config::Config;
use casebot_app::mailbox::import;
use casebot_app::stages::filing::Pipeline;
use casebot_store::Store;

/// Each order of `items`, by Heap's algorithm.
fn orders<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    fn heap<T: Clone>(k: usize, v: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
        if k <= 1 {
            out.push(v.clone());
            return;
        }
        for i in 0..k {
            heap(k - 1, v, out);
            let j = if k.is_multiple_of(2) { i } else { 0 };
            v.swap(j, k - 1);
        }
    }
    let mut v = items.to_vec();
    let mut out = Vec::new();
    heap(v.len(), &mut v, &mut out);
    out
}

/// How the mails reach the desk.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    OneByOne,
    OneMbox,
}

/// Files `mails` (raw texts) in the given way into a new store.
async fn file(dir: &Path, name: &str, mails: &[&str], arrival: Arrival) -> Store {
    let store = Store::open(&super::store_url(&dir.join(format!("{name}.db"))))
        .await
        .unwrap();
    let pipeline = Pipeline::new(store.clone(), Arc::new(Config::default())).unwrap();
    let import_file = async |path: &Path| {
        let source = import::open(path, u64::MAX).unwrap();
        let counts = pipeline.run(source.mails, |_| {}).await.unwrap();
        assert_eq!(counts.quarantined, 0, "{name}");
    };
    match arrival {
        Arrival::OneByOne => {
            for (i, mail) in mails.iter().enumerate() {
                let path = dir.join(format!("{name}-{i}.eml"));
                std::fs::write(&path, mail.replace('\n', "\r\n")).unwrap();
                import_file(&path).await;
            }
        }
        Arrival::OneMbox => {
            let mut mbox = String::new();
            for mail in mails {
                mbox.push_str("From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n");
                mbox.push_str(mail);
                mbox.push('\n');
            }
            let path = dir.join(format!("{name}.mbox"));
            std::fs::write(&path, mbox).unwrap();
            import_file(&path).await;
        }
    }
    store
}

const CUSTOMER_FIRST: &str = "From: Li Lei <li.lei@example.cn>
To: support@example.com
Subject: KB5034441 安装失败
Date: Mon, 2 Mar 2026 09:00:00 +0800
Message-ID: <first@example.cn>
Content-Type: text/plain; charset=utf-8

您好，服务器安装 KB5034441 失败，错误 0x80070643。
";

const CUSTOMER_AGAIN: &str = "From: Li Lei <li.lei@example.cn>
To: support@example.com
Subject: Re: KB5034441 安装失败
Date: Mon, 2 Mar 2026 09:30:00 +0800
Message-ID: <again@example.cn>
In-Reply-To: <first@example.cn>
References: <first@example.cn>
Content-Type: text/plain; charset=utf-8

补充：重启后仍然失败。
";

const DESK_OPENS: &str = "From: Desk <support@example.com>
To: li.lei@example.cn
Subject: [案例号: CAS-20001-AB12CD ] % |P2|ACME| KB5034441 安装失败 % 初次响应
Date: Mon, 2 Mar 2026 10:00:00 +0800
Message-ID: <opens@example.com>
In-Reply-To: <again@example.cn>
References: <first@example.cn> <again@example.cn>
Content-Type: text/plain; charset=utf-8

您好，已为您创建案例，请上传日志。
";

/// The engineer opens the case with a fresh mail (no In-Reply-To) whose
/// References still name the customer's first mail.
const DESK_OPENS_FRESH: &str = "From: Desk <support@example.com>
To: li.lei@example.cn
Subject: [案例号: CAS-20002-EF34GH ] % |P3|ACME| KB5034441 % 初次响应
Date: Mon, 2 Mar 2026 10:00:00 +0800
Message-ID: <fresh@example.com>
References: <first@example.cn>
Content-Type: text/plain; charset=utf-8

您好，我是本案例的工程师。
";

#[tokio::test]
async fn a_caseless_first_mail_joins_the_case_its_reply_opens_in_every_order() {
    let dir = tempfile::tempdir().unwrap();
    for (opener, key) in [
        (DESK_OPENS, "CAS-20001-AB12CD"),
        (DESK_OPENS_FRESH, "CAS-20002-EF34GH"),
    ] {
        for arrival in [Arrival::OneByOne, Arrival::OneMbox] {
            for (n, order) in orders(&[CUSTOMER_FIRST, CUSTOMER_AGAIN, opener])
                .iter()
                .enumerate()
            {
                let name = format!("{key}-{arrival:?}-{n}");
                let store = file(dir.path(), &name, order, arrival).await;
                let cases = store.list_cases().await.unwrap();
                let keys: Vec<&str> = cases.iter().map(|c| c.key.as_str()).collect();
                assert_eq!(keys, [key], "{name}: {arrival:?} order {n}");
                assert_eq!(cases[0].message_count, 3, "{name}");
                // The desk answered last: the ball is with the customer.
                assert_eq!(cases[0].status.as_str(), "waiting_on_customer", "{name}");
            }
        }
    }
}

/// Postfix's DSN for a desk reply, with the returned mail's headers.
fn dsn(returned_id: &str, returned_refs: &str, returned_subject: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: support@example.com
Subject: Undelivered Mail Returned to Sender
Date: Mon, 2 Mar 2026 10:01:00 +0800
Message-ID: <dsn-{returned_id}>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"

--B
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.com.
Your message could not be delivered to one or more recipients.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; li.lei@example.cn
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <li.lei@example.cn>: Recipient address
    rejected: User unknown in virtual mailbox table

--B
Content-Type: text/rfc822-headers

From: Desk <support@example.com>
To: li.lei@example.cn
Subject: {returned_subject}
Message-ID: <{returned_id}>
References: {returned_refs}

--B--
"
    )
}

const DESK_REPLY_CASELESS: &str = "From: Desk <support@example.com>
To: li.lei@example.cn
Subject: Re: KB5034441 安装失败
Date: Mon, 2 Mar 2026 10:00:00 +0800
Message-ID: <reply@example.com>
In-Reply-To: <first@example.cn>
References: <first@example.cn>
Content-Type: text/plain; charset=utf-8

请上传 CBS.log。
";

#[tokio::test]
async fn a_bounce_is_filed_with_the_mail_it_returns_in_every_order() {
    let dir = tempfile::tempdir().unwrap();
    // Found by the returned Message-ID: no case number anywhere.
    let bounce = dsn(
        "reply@example.com",
        "<first@example.cn>",
        "Re: KB5034441 安装失败",
    );
    for arrival in [Arrival::OneByOne, Arrival::OneMbox] {
        for (n, order) in orders(&[CUSTOMER_FIRST, DESK_REPLY_CASELESS, bounce.as_str()])
            .iter()
            .enumerate()
        {
            let name = format!("bounce-{arrival:?}-{n}");
            let store = file(dir.path(), &name, order, arrival).await;
            let cases = store.list_cases().await.unwrap();
            assert_eq!(cases.len(), 1, "{name}: {cases:?}");
            let d = store
                .case_detail(
                    &cases[0].key,
                    casebot_store::cases::PageRequest::first_max(),
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(d.case.message_count, 3, "{name}");
            // A bounce is no answer: the desk's reply still waits on the customer.
            assert_eq!(d.case.status.as_str(), "waiting_on_customer", "{name}");
            let b = d
                .messages
                .iter()
                .find_map(|m| m.bounce.as_ref())
                .unwrap_or_else(|| panic!("{name}: no bounce in the thread"));
            assert_eq!(b.returned_message_id.as_deref(), Some("reply@example.com"));
            assert_eq!(b.recipients, ["li.lei@example.cn"]);
            assert!(
                b.reason.as_deref().unwrap_or("").contains("User unknown"),
                "{b:?}"
            );
            assert!(
                d.events.iter().any(|e| e.kind == "reply_bounced"
                    && e.detail["returned_message_id"] == "reply@example.com"),
                "{name}"
            );
        }
    }
    // Found by the returned mail's case number when its Message-ID is unknown.
    let bounce = dsn(
        "never-seen@example.com",
        "",
        "Re: [案例号: CAS-20001-AB12CD ] % |P2|ACME| KB5034441 安装失败 % 跟进",
    );
    for arrival in [Arrival::OneByOne, Arrival::OneMbox] {
        let name = format!("bounce-by-number-{arrival:?}");
        let store = file(dir.path(), &name, &[bounce.as_str(), DESK_OPENS], arrival).await;
        let cases = store.list_cases().await.unwrap();
        let keys: Vec<&str> = cases.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["CAS-20001-AB12CD"], "{name}");
        // The SLA does not count a bounce as the customer's answer.
        assert_eq!(cases[0].status.as_str(), "waiting_on_customer", "{name}");
    }
}

#[tokio::test]
async fn a_case_number_in_quoted_history_never_outranks_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    // The customer answers the desk's mail of case A (subject without the
    // number) and quotes an older mail of case B below.
    let answer = "From: Li Lei <li.lei@example.cn>
To: support@example.com
Subject: Re: 日志
Date: Mon, 2 Mar 2026 11:00:00 +0800
Message-ID: <answer@example.cn>
In-Reply-To: <opens@example.com>
References: <first@example.cn> <opens@example.com>
Content-Type: text/plain; charset=utf-8

日志已上传。

-----原始邮件-----
发件人: Desk <support@example.com>
发送时间: 2026年2月1日 10:00
主题: [案例号: CAS-29999-ZZ99ZZ ] % 旧案例 %

旧内容
";
    for arrival in [Arrival::OneByOne, Arrival::OneMbox] {
        let name = format!("quoted-{arrival:?}");
        let store = file(dir.path(), &name, &[DESK_OPENS, answer], arrival).await;
        let cases = store.list_cases().await.unwrap();
        let keys: Vec<&str> = cases.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["CAS-20001-AB12CD"], "{name}");
        let d = store
            .case_detail(
                "CAS-20001-AB12CD",
                casebot_store::cases::PageRequest::first_max(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.messages[1].thread_rule, "in_reply_to");
    }
}

/// A loopback HTTP server that answers each request with `body` only once
/// released, counting the requests it was sent.
fn held_server(
    body: Vec<u8>,
) -> (
    u16,
    Arc<std::sync::atomic::AtomicUsize>,
    std::sync::mpsc::Sender<()>,
) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (release, released) = std::sync::mpsc::channel::<()>();
    let seen = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Held like a slow download, until the test lets it go.
            let _ = released.recv_timeout(std::time::Duration::from_secs(120));
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Disposition: attachment; \
                 filename=\"logs.zip\"\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (port, requests, release)
}

#[tokio::test]
async fn a_slow_download_never_delays_the_draft_and_a_link_is_fetched_once_per_case() {
    use casebot_analysis::Analyzer;
    use casebot_app::stages::analysis::Worker;
    use casebot_app::stages::drafting::Drafter;
    use casebot_store::drafts::DraftFilter;
    use std::sync::atomic::Ordering;

    let zip = super::analysis::zip(&[("CBS.log", super::analysis::hard_link_log().as_bytes())]);
    let (port, requests, release) = held_server(zip);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.analysis.rules_dir = super::repo().join("rules");
    config.analysis.download.allowed_hosts = vec!["127.0.0.1".into()];
    config.analysis.download.allowed_networks = vec!["127.0.0.1/32".into()];
    let config = Arc::new(config);
    let store = Store::open(&super::store_url(&dir.path().join("links.db")))
        .await
        .unwrap();
    let pipeline = Pipeline::new(store.clone(), config.clone()).unwrap();
    let worker = Worker::new(
        store.clone(),
        Analyzer::new(&config.analysis, &config.base_dir).unwrap(),
        &config,
    )
    .unwrap();
    let drafter = Drafter::from_config(store.clone(), config.clone()).unwrap();
    let url = format!("http://127.0.0.1:{port}/share/logs.zip");
    let first = format!(
        "From: Li Lei <li.lei@example.cn>\nTo: support@example.com\n\
         Subject: [案例号: CAS-30001-LK12MN ] % |P2|ACME| KB5034441 安装失败 %\n\
         Date: Mon, 2 Mar 2026 09:00:00 +0800\nMessage-ID: <link-1@example.cn>\n\
         Content-Type: text/plain; charset=utf-8\n\n日志太大，请从这里下载：{url}\n"
    );
    let path = dir.path().join("first.eml");
    std::fs::write(&path, &first).unwrap();
    pipeline
        .run(import::open(&path, u64::MAX).unwrap().mails, |_| {})
        .await
        .unwrap();

    // Reading the mail does not wait for its link, nor does the draft.
    worker.run_pending().await.unwrap();
    let case = store.find_case("CAS-30001-LK12MN").await.unwrap().unwrap();
    let analyses = store.case_analyses(case.id).await.unwrap();
    assert_eq!(analyses[0].status.as_str(), "fetching");
    drafter.run().await.unwrap();
    let drafts = store
        .list_drafts(&DraftFilter {
            status: None,
            case_row: Some(case.id),
        })
        .await
        .unwrap();
    assert_eq!(drafts.len(), 1, "a reply is drafted while the link waits");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "nothing was fetched yet"
    );

    // The fetch queue downloads it (once released) and records the analysis.
    let fetching = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run_fetches().await }
    });
    release.send(()).unwrap();
    fetching.await.unwrap().unwrap();
    let analyses = store.case_analyses(case.id).await.unwrap();
    assert_eq!(
        analyses[0].status.as_str(),
        "done",
        "{:?}",
        analyses[0].error
    );
    assert_eq!(
        analyses[0].class.as_deref(),
        Some("access_denied_or_service_disabled")
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    // With the links in, the reply is drafted again, not piled up.
    let redrafted = drafter.run().await.unwrap();
    assert_eq!((redrafted.created, redrafted.updated), (0, 1));

    // The customer's next mail names the same link again (and quotes the
    // first): it is not fetched a second time.
    let second = format!(
        "From: Li Lei <li.lei@example.cn>\nTo: support@example.com\n\
         Subject: Re: [案例号: CAS-30001-LK12MN ] % |P2|ACME| KB5034441 安装失败 %\n\
         Date: Mon, 2 Mar 2026 11:00:00 +0800\nMessage-ID: <link-2@example.cn>\n\
         In-Reply-To: <link-1@example.cn>\nContent-Type: text/plain; charset=utf-8\n\n\
         还是同一个包：{url}\n\n> 日志太大，请从这里下载：{url}\n"
    );
    let path = dir.path().join("second.eml");
    std::fs::write(&path, &second).unwrap();
    pipeline
        .run(import::open(&path, u64::MAX).unwrap().mails, |_| {})
        .await
        .unwrap();
    release.send(()).ok();
    worker.run_all().await.unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 1, "fetched once per case");
    let analyses = store.case_analyses(case.id).await.unwrap();
    assert_eq!(analyses.len(), 2);
    assert_ne!(analyses[1].status.as_str(), "fetching");
}

#[test]
fn a_link_only_in_the_quoted_history_is_not_the_mail_s() {
    use casebot_core::domain::DeskConfig;
    use casebot_core::mail::parse::{IngestConfig, MailParser};
    use casebot_core::mail::subject::GrammarConfig;
    let parser = MailParser::new(
        &DeskConfig::default(),
        &GrammarConfig::default(),
        &IngestConfig::default(),
    )
    .unwrap();
    let raw = "From: a@example.cn\r\nSubject: Re: logs\r\nMessage-ID: <q@example.cn>\r\n\r\n\
               新日志：https://files.example.cn/new.zip\r\n\r\n-----原始邮件-----\r\n\
               发件人: a@example.cn\r\n发送时间: 2026年3月1日\r\n\r\n旧日志：https://files.example.cn/old.zip\r\n";
    let m = parser.parse(raw.as_bytes(), chrono::Utc::now()).unwrap();
    let urls: Vec<&str> = m.links.iter().map(|l| l.url.as_str()).collect();
    assert_eq!(urls, ["https://files.example.cn/new.zip"]);
}

#[tokio::test]
async fn a_mail_file_over_the_limit_is_quarantined_unread_with_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.ingest.max_message_bytes = 100_000;
    let limit = config.ingest.max_message_bytes;
    let store = Store::open(&super::store_url(&dir.path().join("big.db")))
        .await
        .unwrap();
    let pipeline = Pipeline::new(store.clone(), Arc::new(config)).unwrap();
    let path = dir.path().join("big.eml");
    let mut mail = CUSTOMER_FIRST.replace('\n', "\r\n").into_bytes();
    mail.resize(300_000, b'x');
    std::fs::write(&path, &mail).unwrap();
    let source = import::open(&path, limit).unwrap();
    let counts = pipeline.run(source.mails, |_| {}).await.unwrap();
    assert_eq!((counts.imported, counts.quarantined), (0, 1));
    let entries = store.quarantine_list(true).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0].reason.contains("300000 bytes") && entries[0].reason.contains("not read"),
        "{}",
        entries[0].reason
    );
    let (kept, _) = store
        .quarantined_bytes(entries[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept, mail[..casebot_app::mailbox::OVERSIZE_HEAD]);
    // A replay does not file the head as if it were the mail.
    let report = pipeline.replay(entries[0].id).await.unwrap().unwrap();
    assert_eq!(
        report.status,
        casebot_core::mail::filing::Status::Quarantined
    );
    assert!(store.list_cases().await.unwrap().is_empty());
}
