//! Whole fictional threads (shaped like the two seed threads) through the
//! real pipeline into a throwaway SQLite store.

use std::sync::Arc;

use casebot_app::config::Config;
use casebot_app::mailbox::import;
use casebot_app::stages::filing::{Counts, Pipeline};
use casebot_store::Store;
use casebot_store::cases::CaseDetail;

async fn store_in(dir: &tempfile::TempDir) -> (Store, Pipeline) {
    let store = Store::open(&super::store_url(&dir.path().join("t.db")))
        .await
        .unwrap();
    let pipeline = Pipeline::new(store.clone(), Arc::new(Config::default())).unwrap();
    (store, pipeline)
}

async fn import(pipeline: &Pipeline, path: &std::path::Path) -> Counts {
    let source = import::open(path, u64::MAX).unwrap();
    pipeline.run(source.mails, |_| {}).await.unwrap()
}

async fn detail(store: &Store, key: &str) -> CaseDetail {
    store
        .case_detail(key, casebot_store::cases::PageRequest::first_max())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no case {key}"))
}

#[tokio::test]
async fn hardlink_thread_ends_resolved_with_auto_reply_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (store, pipeline) = store_in(&dir).await;
    let counts = import(&pipeline, &super::example("threads/hardlink")).await;
    assert_eq!((counts.imported, counts.quarantined), (10, 0));
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 1, "{cases:?}");
    let d = detail(&store, "cas-10001-hl7q2m").await;
    assert_eq!(d.case.message_count, 10);
    assert_eq!(d.case.status.as_str(), "resolved");
    assert_eq!(d.case.stage.as_deref(), Some("案例重新分配"));
    assert_eq!(d.case.internal_ref.as_deref(), Some("CMIT:0002001"));
    let directions: Vec<&str> = d.messages.iter().map(|m| m.direction.as_str()).collect();
    assert_eq!(directions.iter().filter(|d| **d == "auto").count(), 1);
    // The confirmation lost its References; the case number carried it.
    let confirm = d.messages.iter().find(|m| m.resolution_signal).unwrap();
    assert_eq!(confirm.thread_rule, "subject_case_number");
    // The quoted "问题解决了吗？" in mail 6 must not count.
    assert_eq!(d.messages.iter().filter(|m| m.resolution_signal).count(), 1);
    assert!(d.events.iter().any(|e| e.kind == "case_opened"));
    assert!(
        d.events
            .iter()
            .any(|e| e.kind == "status_changed" && e.detail["to"] == "resolved")
    );
}

#[tokio::test]
async fn hashmismatch_thread_is_archived_with_its_tags() {
    let dir = tempfile::tempdir().unwrap();
    let (store, pipeline) = store_in(&dir).await;
    import(&pipeline, &super::example("threads/hashmismatch")).await;
    let d = detail(&store, "CAS-10002-HS4X6D").await;
    assert_eq!(d.case.status.as_str(), "archived");
    assert_eq!(
        (d.case.priority.as_deref(), d.case.customer.as_deref()),
        (Some("P2"), Some("ACME-BANK"))
    );
    assert_eq!(
        d.case.title.as_deref(),
        Some("示例银行用户反馈1月补丁KB5022286安装失败")
    );
    let customer = d
        .messages
        .iter()
        .find(|m| m.direction.as_str() == "customer")
        .unwrap();
    assert_eq!(
        customer.links[0].url,
        "https://files.example.cn/logs/cbs-0323.zip"
    );
    let unc = &d.messages[0].links;
    assert!(
        unc.iter()
            .any(|l| l.kind == "unc" && l.url == r"\\fileserver01\windows"),
        "{unc:?}"
    );
}

#[tokio::test]
async fn reimport_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (store, pipeline) = store_in(&dir).await;
    import(&pipeline, &super::example("threads")).await;
    let before = store.counts().await.unwrap();
    let again = import(&pipeline, &super::example("threads")).await;
    assert_eq!(again.imported, 0);
    assert_eq!(again.duplicate, before.1 as u64);
    assert_eq!(store.counts().await.unwrap(), before);
}

#[tokio::test]
async fn caseless_thread_arriving_child_first_is_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (store, pipeline) = store_in(&dir).await;
    // Import the replies first, in separate runs, then the root.
    for name in ["03.eml", "02.eml", "01.eml"] {
        import(
            &pipeline,
            &super::example(&format!("threads/caseless/{name}")),
        )
        .await;
    }
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert!(cases[0].key.starts_with("T-"));
    assert_eq!(cases[0].case_id, None);
    assert_eq!(cases[0].message_count, 3);
    // The last mail is the customer's bare "好的，谢谢！": the ball stays with them.
    assert_eq!(cases[0].status.as_str(), "waiting_on_customer");
}

#[tokio::test]
async fn two_case_numbers_never_merge_even_when_references_cross() {
    let dir = tempfile::tempdir().unwrap();
    let (store, pipeline) = store_in(&dir).await;
    import(&pipeline, &super::example("threads/hardlink/01.eml")).await;
    // A reply whose References point into case A but whose subject names B.
    let raw = "From: x@example.cn\r\nSubject: Re: [案例号:CAS-99999-ZZZZZZ] %other%\r\nMessage-ID: <cross@x>\r\nIn-Reply-To: <a1@desk.example.com>\r\nReferences: <a1@desk.example.com>\r\n\r\nhi\r\n";
    let path = dir.path().join("cross.eml");
    std::fs::write(&path, raw).unwrap();
    import(&pipeline, &path).await;
    assert_eq!(
        detail(&store, "CAS-10001-HL7Q2M").await.case.message_count,
        1
    );
    assert_eq!(
        detail(&store, "CAS-99999-ZZZZZZ").await.case.message_count,
        1
    );
}

#[tokio::test]
async fn other_bytes_under_a_known_message_id_are_kept_but_not_filed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (store, pipeline) = store_in(&dir).await;
    let first = dir.path().join("a.eml");
    let resent = dir.path().join("b.eml");
    let head = "From: x@example.cn\r\nSubject: Re: [案例号:CAS-55555-AAAAAA] %t%\r\nMessage-ID: <same@x>\r\n\r\n";
    std::fs::write(&first, format!("{head}hello\r\n")).unwrap();
    // A list server resent it with a footer: same Message-ID, other bytes.
    std::fs::write(&resent, format!("{head}hello\r\n--\r\nlist footer\r\n")).unwrap();
    assert_eq!(import(&pipeline, &first).await.imported, 1);
    let second = import(&pipeline, &resent).await;
    assert_eq!((second.imported, second.duplicate), (0, 1));
    let raws: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM raw_messages")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let sources: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM message_sources")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        (raws, sources),
        (2, 2),
        "both byte sequences and both deliveries are kept"
    );
    assert_eq!(store.counts().await.unwrap().1, 1, "one message");
    // Seeing the resend again changes nothing but the sightings.
    assert_eq!(import(&pipeline, &resent).await.duplicate, 1);
    let raws: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM raw_messages")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(raws, 2);
}

/// The desk's search finds a case by a KB or error code its logs named,
/// spelled as the reader stores it, in another case, or bare; a code no log
/// named finds nothing.
#[tokio::test]
async fn search_finds_cases_by_the_kbs_and_codes_in_their_logs() {
    use casebot_analysis::Analyzer;
    use casebot_app::stages::analysis::Worker;
    use casebot_store::cases::CaseQuery;

    let dir = tempfile::tempdir().unwrap();
    let (store, pipeline) = store_in(&dir).await;
    for thread in ["storecorrupt", "hardlink"] {
        import(&pipeline, &super::example(&format!("threads/{thread}"))).await;
    }
    let config = Config::default();
    let worker = Worker::new(
        store.clone(),
        Analyzer::new(&config.analysis, &config.base_dir).unwrap(),
        &config,
    )
    .unwrap();
    let analysed = worker.run_all().await.unwrap();
    assert!(analysed.analysed > 0, "{analysed:?}");
    // The queue lengths /metrics serves, on every backend: nothing left.
    let queues = store.queue_lengths().await.unwrap();
    assert_eq!(queues.analysis, 0, "{queues:?}");
    assert_eq!(queues.quarantined, 0, "{queues:?}");

    let search = |text: &str| {
        let store = store.clone();
        let query = CaseQuery {
            text: Some(text.to_string()),
            limit: 50,
            ..CaseQuery::default()
        };
        async move {
            let (rows, total) = store.search_cases(&query).await.unwrap();
            assert_eq!(rows.len() as i64, total);
            rows.into_iter().map(|r| r.key).collect::<Vec<_>>()
        }
    };
    let mut found_any = false;
    for case in store.list_cases().await.unwrap() {
        for analysis in store.case_analyses(case.id).await.unwrap() {
            for term in analysis.kbs.iter().chain(&analysis.error_codes) {
                found_any = true;
                for spelling in [term.clone(), term.to_uppercase(), term.to_lowercase()] {
                    let keys = search(&spelling).await;
                    assert!(
                        keys.contains(&case.key),
                        "{spelling} should find {}: {keys:?}",
                        case.key
                    );
                }
                let bare = term
                    .to_lowercase()
                    .trim_start_matches("kb")
                    .trim_start_matches("0x")
                    .to_string();
                let keys = search(&bare).await;
                assert!(
                    keys.contains(&case.key),
                    "{bare} should find {}: {keys:?}",
                    case.key
                );
            }
        }
    }
    assert!(found_any, "the example logs name at least one KB or code");
    assert!(search("0x8badf00d").await.is_empty());
    assert!(search("KB9999999").await.is_empty());
    // A title word still finds its case; several words are not a term.
    let hardlink = detail(&store, "cas-10001-hl7q2m").await;
    let title = hardlink.case.title.clone().unwrap();
    let word = title.split_whitespace().next().unwrap().to_string();
    assert!(search(&word).await.contains(&hardlink.case.key));
    // The case number, whole or by its middle, and the internal reference.
    assert_eq!(
        search("CAS-10001-HL7Q2M").await,
        vec![hardlink.case.key.clone()]
    );
    assert_eq!(search("10001").await, vec![hardlink.case.key.clone()]);
    let reference = hardlink.case.internal_ref.clone().unwrap();
    assert_eq!(search(&reference).await, vec![hardlink.case.key.clone()]);

    // A store filed before the index existed is indexed when opened.
    sqlx::query("DELETE FROM case_terms")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(search("10001").await.is_empty());
    let (store, _) = store_in(&dir).await;
    let query = CaseQuery {
        text: Some("10001".into()),
        limit: 5,
        ..CaseQuery::default()
    };
    assert_eq!(store.search_cases(&query).await.unwrap().1, 1);
}
