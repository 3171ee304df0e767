//! Table tests for the subject grammar: every variant named in DOMAIN.md.

use super::*;

fn grammar() -> SubjectGrammar {
    SubjectGrammar::new(&GrammarConfig::default()).unwrap()
}

/// (subject, case_id, title, priority, customer, stage, internal_ref, prefixes)
type Row = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static [&'static str],
);

const TABLE: &[Row] = &[
    // The two shapes of the seed threads.
    (
        "Re: 回复: [案例号:CAS-08268-Z0X4W9] %戴尔OEM用户-某研究所用户反馈无法安装补丁% 案例重新分配 CMIT:0001568",
        Some("CAS-08268-Z0X4W9"),
        Some("戴尔OEM用户-某研究所用户反馈无法安装补丁"),
        None,
        None,
        Some("案例重新分配"),
        Some("CMIT:0001568"),
        &["Re", "回复"],
    ),
    (
        "回复: [案例号: CAS-08520-Q7Z9R6 ] % |P2|ICBC|工行用户反馈1月补丁KB5022286安装失败 % 初次响应 CMIT:0001077",
        Some("CAS-08520-Q7Z9R6"),
        Some("工行用户反馈1月补丁KB5022286安装失败"),
        Some("P2"),
        Some("ICBC"),
        Some("初次响应"),
        Some("CMIT:0001077"),
        &["回复"],
    ),
    // No prefix at all: the partner's first mail.
    (
        "[案例号:CAS-00001-AAAAAA] %标题% 初次响应 CMIT:0000001",
        Some("CAS-00001-AAAAAA"),
        Some("标题"),
        None,
        None,
        Some("初次响应"),
        Some("CMIT:0000001"),
        &[],
    ),
    // Full-width colon after the prefix.
    (
        "回复：[案例号:CAS-12345-ABC123] %补丁失败% 跟进 CMIT:0000002",
        Some("CAS-12345-ABC123"),
        Some("补丁失败"),
        None,
        None,
        Some("跟进"),
        Some("CMIT:0000002"),
        &["回复"],
    ),
    // Full-width brackets and colon inside the tag.
    (
        "回复：【案例号：CAS-23456-BCD234】 %更新失败% 初次响应 CMIT:0000003",
        Some("CAS-23456-BCD234"),
        Some("更新失败"),
        None,
        None,
        Some("初次响应"),
        Some("CMIT:0000003"),
        &["回复"],
    ),
    // Spaces everywhere inside the tag.
    (
        "RE: [ 案例号 : CAS-34567-CDE345 ] %x% CMIT:0000004",
        Some("CAS-34567-CDE345"),
        Some("x"),
        None,
        None,
        None,
        Some("CMIT:0000004"),
        &["RE"],
    ),
    // Lower-case case number is normalised.
    (
        "Re: [案例号:cas-45678-def456] %title% CMIT:0000005",
        Some("CAS-45678-DEF456"),
        Some("title"),
        None,
        None,
        None,
        Some("CMIT:0000005"),
        &["Re"],
    ),
    // Three stacked prefixes, mixed languages.
    (
        "RE: 答复: Fw: [案例号:CAS-56789-EFG567] %t% 跟进 CMIT:0000006",
        Some("CAS-56789-EFG567"),
        Some("t"),
        None,
        None,
        Some("跟进"),
        Some("CMIT:0000006"),
        &["RE", "答复", "Fw"],
    ),
    // Forward prefixes.
    (
        "FW: [案例号:CAS-67890-FGH678] %t% CMIT:0000007",
        Some("CAS-67890-FGH678"),
        Some("t"),
        None,
        None,
        None,
        Some("CMIT:0000007"),
        &["FW"],
    ),
    (
        "Fwd: [案例号:CAS-67891-FGH679] %t% CMIT:0000008",
        Some("CAS-67891-FGH679"),
        Some("t"),
        None,
        None,
        None,
        Some("CMIT:0000008"),
        &["Fwd"],
    ),
    (
        "转发: [案例号:CAS-67892-FGH670] %t% CMIT:0000009",
        Some("CAS-67892-FGH670"),
        Some("t"),
        None,
        None,
        None,
        Some("CMIT:0000009"),
        &["转发"],
    ),
    // Full-width colon after a stacked prefix.
    (
        "答复：回复：[案例号:CAS-11111-ZZZZZZ] %t% 案例升级 CMIT:0000010",
        Some("CAS-11111-ZZZZZZ"),
        Some("t"),
        None,
        None,
        Some("案例升级"),
        Some("CMIT:0000010"),
        &["答复", "回复"],
    ),
    // Priority P1 with another customer.
    (
        "[案例号:CAS-22222-YYYYYY] % |P1|ACME| 服务器补丁回滚 % 初次响应 CMIT:0000011",
        Some("CAS-22222-YYYYYY"),
        Some("服务器补丁回滚"),
        Some("P1"),
        Some("ACME"),
        Some("初次响应"),
        Some("CMIT:0000011"),
        &[],
    ),
    // Tags without spaces around.
    (
        "[案例号:CAS-22223-YYYYYX] %|P3|某银行|KB5031356 失败% CMIT:0000012",
        Some("CAS-22223-YYYYYX"),
        Some("KB5031356 失败"),
        Some("P3"),
        Some("某银行"),
        None,
        Some("CMIT:0000012"),
        &[],
    ),
    // Lower-case priority tag.
    (
        "[案例号:CAS-22224-YYYYYW] %|p4|Contoso|slow% CMIT:0000013",
        Some("CAS-22224-YYYYYW"),
        Some("slow"),
        Some("P4"),
        Some("Contoso"),
        None,
        Some("CMIT:0000013"),
        &[],
    ),
    // Full-width pipes and percent signs.
    (
        "[案例号:CAS-22225-YYYYYV] ％｜P2｜工行｜补丁％ 初次响应 CMIT：0000014",
        Some("CAS-22225-YYYYYV"),
        Some("补丁"),
        Some("P2"),
        Some("工行"),
        Some("初次响应"),
        Some("CMIT:0000014"),
        &[],
    ),
    // Customer tag without a priority.
    (
        "[案例号:CAS-22226-YYYYYU] %|Fabrikam|蓝屏% CMIT:0000015",
        Some("CAS-22226-YYYYYU"),
        Some("蓝屏"),
        None,
        Some("Fabrikam"),
        None,
        Some("CMIT:0000015"),
        &[],
    ),
    // Stage word 案例关闭.
    (
        "Re: [案例号:CAS-33333-XXXXXX] %t% 案例关闭 CMIT:0000016",
        Some("CAS-33333-XXXXXX"),
        Some("t"),
        None,
        None,
        Some("案例关闭"),
        Some("CMIT:0000016"),
        &["Re"],
    ),
    // No CMIT reference.
    (
        "Re: [案例号:CAS-33334-XXXXXW] %t% 跟进",
        Some("CAS-33334-XXXXXW"),
        Some("t"),
        None,
        None,
        Some("跟进"),
        None,
        &["Re"],
    ),
    // No stage, no CMIT.
    (
        "[案例号:CAS-33335-XXXXXV] %只有标题%",
        Some("CAS-33335-XXXXXV"),
        Some("只有标题"),
        None,
        None,
        None,
        None,
        &[],
    ),
    // CMIT with a space after the colon.
    (
        "[案例号:CAS-33336-XXXXXU] %t% 初次响应 CMIT: 0000017",
        Some("CAS-33336-XXXXXU"),
        Some("t"),
        None,
        None,
        Some("初次响应"),
        Some("CMIT:0000017"),
        &[],
    ),
    // Title without percent signs.
    (
        "Re: [案例号:CAS-44444-WWWWWW] 补丁无法安装 跟进 CMIT:0000018",
        Some("CAS-44444-WWWWWW"),
        Some("补丁无法安装"),
        None,
        None,
        Some("跟进"),
        Some("CMIT:0000018"),
        &["Re"],
    ),
    // A single percent sign (the closing one was cut by a mail client).
    (
        "Re: [案例号:CAS-44445-WWWWWV] %补丁无法安装 初次响应 CMIT:0000019",
        Some("CAS-44445-WWWWWV"),
        Some("补丁无法安装"),
        None,
        None,
        Some("初次响应"),
        Some("CMIT:0000019"),
        &["Re"],
    ),
    // A stage word inside the title is part of the title, not the stage.
    (
        "[案例号:CAS-44446-WWWWWU] %跟进补丁问题% CMIT:0000020",
        Some("CAS-44446-WWWWWU"),
        Some("跟进补丁问题"),
        None,
        None,
        None,
        Some("CMIT:0000020"),
        &[],
    ),
    // English label.
    (
        "RE: [Case No: CAS-55555-VVVVVV] %Update fails% CMIT:0000021",
        Some("CAS-55555-VVVVVV"),
        Some("Update fails"),
        None,
        None,
        None,
        Some("CMIT:0000021"),
        &["RE"],
    ),
    // A bracket holding only the case number.
    (
        "Re: [CAS-55556-VVVVVU] %t%",
        Some("CAS-55556-VVVVVU"),
        Some("t"),
        None,
        None,
        None,
        None,
        &["Re"],
    ),
    // A bare case number with no brackets, after Chinese text.
    (
        "Re: 关于CAS-55557-VVVVVT的日志",
        Some("CAS-55557-VVVVVT"),
        Some("关于CAS-55557-VVVVVT的日志"),
        None,
        None,
        None,
        None,
        &["Re"],
    ),
    // Not a case at all.
    (
        "Out of office: back Monday",
        None,
        Some("Out of office: back Monday"),
        None,
        None,
        None,
        None,
        &[],
    ),
    (
        "Re: 会议纪要",
        None,
        Some("会议纪要"),
        None,
        None,
        None,
        None,
        &["Re"],
    ),
    // Something that looks like a case number but is too short.
    (
        "Re: [案例号:CAS-0852-Q7Z9R6] %t%",
        None,
        Some("t"),
        None,
        None,
        None,
        None,
        &["Re"],
    ),
    // An ordinary word beginning with "Re" is not a prefix.
    (
        "Report: [案例号:CAS-66666-UUUUUU] %t%",
        Some("CAS-66666-UUUUUU"),
        Some("t"),
        None,
        None,
        None,
        None,
        &[],
    ),
    // Numbered reply prefix (Re[2]:) as some clients write it.
    (
        "Re[2]: [案例号:CAS-66667-UUUUUT] %t%",
        Some("CAS-66667-UUUUUT"),
        Some("t"),
        None,
        None,
        None,
        None,
        &["Re"],
    ),
    // Ideographic space inside the tag.
    (
        "回复:【案例号：\u{3000}CAS-66668-UUUUUS\u{3000}】%标题%初次响应 CMIT:0000022",
        Some("CAS-66668-UUUUUS"),
        Some("标题"),
        None,
        None,
        Some("初次响应"),
        Some("CMIT:0000022"),
        &["回复"],
    ),
    // Tabs and double spaces survive folding.
    (
        "RE:\t回复:  [案例号:  CAS-77777-TTTTTT  ]  %  |P2|  ICBC  |  标题  %  初次响应  CMIT:0000023",
        Some("CAS-77777-TTTTTT"),
        Some("标题"),
        Some("P2"),
        Some("ICBC"),
        Some("初次响应"),
        Some("CMIT:0000023"),
        &["RE", "回复"],
    ),
    // Empty subject.
    ("", None, None, None, None, None, None, &[]),
];

#[test]
fn table() {
    let g = grammar();
    assert!(TABLE.len() >= 30);
    for (subject, case_id, title, priority, customer, stage, internal_ref, prefixes) in TABLE {
        let p = g.parse(subject);
        let ctx = format!("subject {subject:?} parsed as {p:#?}");
        assert_eq!(p.case_id.as_deref(), *case_id, "case_id: {ctx}");
        assert_eq!(p.title.as_deref(), *title, "title: {ctx}");
        assert_eq!(p.priority.as_deref(), *priority, "priority: {ctx}");
        assert_eq!(p.customer.as_deref(), *customer, "customer: {ctx}");
        assert_eq!(p.stage.as_deref(), *stage, "stage: {ctx}");
        assert_eq!(
            p.internal_ref.as_deref(),
            *internal_ref,
            "internal_ref: {ctx}"
        );
        assert_eq!(&p.prefixes, prefixes, "prefixes: {ctx}");
    }
}

#[test]
fn base_subject_keeps_the_original_text_without_prefixes() {
    let p =
        grammar().parse("Re: 回复：【案例号：CAS-23456-BCD234】 %更新失败% 初次响应 CMIT:0000003");
    assert_eq!(
        p.base_subject,
        "【案例号：CAS-23456-BCD234】 %更新失败% 初次响应 CMIT:0000003"
    );
}

#[test]
fn kbs_are_collected_once() {
    let p = grammar()
        .parse("[案例号:CAS-11111-AAAAAA] %KB5022286 与 KB 5022840 失败, 重试KB5022286% CMIT:1");
    assert_eq!(p.kbs, ["KB5022286", "KB5022840"]);
}

#[test]
fn configured_pattern_is_used() {
    let config = GrammarConfig {
        case_number: r"INC\d{7}".into(),
        case_labels: vec!["Ticket".into()],
        ..GrammarConfig::default()
    };
    let g = SubjectGrammar::new(&config).unwrap();
    assert_eq!(
        g.parse("RE: [Ticket: inc0012345] broken")
            .case_id
            .as_deref(),
        Some("INC0012345")
    );
    assert_eq!(g.parse("RE: [案例号:CAS-08268-Z0X4W9] %t%").case_id, None);
}

#[test]
fn bad_pattern_is_an_error_naming_the_key() {
    let config = GrammarConfig {
        internal_ref: "CMIT(".into(),
        ..GrammarConfig::default()
    };
    let err = SubjectGrammar::new(&config).unwrap_err();
    assert_eq!(err.key, "grammar.internal_ref");
}

#[test]
fn english_stage_words_mean_what_the_chinese_ones_do() {
    use crate::domain::Stage::*;
    let g = grammar();
    let cases = [
        (
            "[案例号:CAS-10001-AAAAAA] %KB5034441 fails% First response CMIT:1",
            FirstResponse,
        ),
        (
            "RE: [Case No.: CAS-10001-AAAAAA] %KB5034441 fails% FIRST RESPONSE",
            FirstResponse,
        ),
        ("[Case #CAS-10001-AAAAAA] %t% Follow-up CMIT:2", FollowUp),
        ("[Case # CAS-10001-AAAAAA] %t% follow up", FollowUp),
        ("[Case Number: CAS-10001-AAAAAA] %t% FollowUp", FollowUp),
        (
            "[Case ID: CAS-10001-AAAAAA] %t% Case Reassigned CMIT:3",
            Reassigned,
        ),
        ("[Case: CAS-10001-AAAAAA] %t% case-escalated", Escalated),
        (
            "[Case No: CAS-10001-AAAAAA] title without percent Case closed",
            Closed,
        ),
        ("[案例號:CAS-10001-AAAAAA] %t% 案例關閉", Closed),
        ("[案例号:CAS-10001-AAAAAA] %t% 跟进 CMIT:9", FollowUp),
        ("[案例号:CAS-10001-AAAAAA] %t% 案例重新分配", Reassigned),
    ];
    for (subject, stage) in cases {
        let p = g.parse(subject);
        assert_eq!(p.case_id.as_deref(), Some("CAS-10001-AAAAAA"), "{subject}");
        assert_eq!(p.stage_kind, Some(stage), "{subject}: {p:#?}");
    }
    // Without `%…%` the stage word at the end is cut off the title.
    let p = g.parse("[Case No: CAS-10001-AAAAAA] title without percent Case closed");
    assert_eq!(p.title.as_deref(), Some("title without percent"));
    // A stage word inside the title is the title's.
    let p = g.parse("[Case No: CAS-10001-AAAAAA] %Follow-up on KB5034441% CMIT:1");
    assert_eq!(p.stage_kind, None);
    // "Followers" is no stage.
    assert_eq!(
        g.parse("[Case: CAS-10001-AAAAAA] %t% Followers").stage_kind,
        None
    );
}

#[test]
fn a_stage_is_configured_by_name_or_by_word() {
    use crate::domain::Stage;
    let words = StageWords::default();
    assert_eq!(words.stage_of("first_response"), Some(Stage::FirstResponse));
    assert_eq!(words.stage_of("初次响应"), Some(Stage::FirstResponse));
    assert_eq!(words.stage_of("case-reassigned"), Some(Stage::Reassigned));
    assert_eq!(words.stage_of("lunch"), None);
}

#[test]
fn external_mail_tags_and_mixed_prefixes_do_not_hide_the_case() {
    let g = grammar();
    for subject in [
        "RE: [EXTERNAL] RE: [案例号: CAS-10001-AAAAAA ] % |P2|ACME| t % 跟进",
        "【外部邮件】回复: [案例号: CAS-10001-AAAAAA ] % |P2|ACME| t % 跟进",
        "Re: 答复: 【案例号：CAS-10001-AAAAAA】％|P2|ACME|t％跟进",
        "转发: FW: Re: [Case #: CAS-10001-AAAAAA] %|P2|ACME| t% Follow-up",
        "Antw: RE: [案例号: cas-10001-aaaaaa ] % |P2|ACME| t % 跟进",
    ] {
        let p = g.parse(subject);
        assert_eq!(p.case_id.as_deref(), Some("CAS-10001-AAAAAA"), "{subject}");
        assert_eq!(p.priority.as_deref(), Some("P2"), "{subject}: {p:#?}");
        assert_eq!(p.customer.as_deref(), Some("ACME"), "{subject}: {p:#?}");
        assert_eq!(
            p.stage_kind,
            Some(crate::domain::Stage::FollowUp),
            "{subject}: {p:#?}"
        );
        // A reply carries the partner's subject, not the gateway's tag.
        assert!(p.base_subject.starts_with(['[', '【']), "{subject}: {p:#?}");
    }
}
