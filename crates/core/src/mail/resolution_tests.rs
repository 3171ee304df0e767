//! Table tests: how customers confirm a fix, and how they say it is not
//! fixed, in Simplified and Traditional Chinese and in English; and the
//! desk's closure mail.

use super::*;

/// (new text, whether it confirms the fix)
const CUSTOMER: &[(&str, bool)] = &[
    // Simplified: confirmed.
    ("问题解决了，谢谢！", true),
    ("李老师您好，已经可以正常安装了。", true),
    ("补丁装上了，非常感谢", true),
    ("重启以后就没问题了", true),
    ("按您的步骤操作后，问题没有再出现", true),
    ("更新已安装成功。", true),
    ("KB5034441 已成功安装，可以关闭案例了", true),
    ("这个案例可以结案了", true),
    ("两台服务器都装好了", true),
    ("今天观察了一天，一切正常", true),
    ("执行 DISM 修复后恢复正常了", true),
    ("升级成功了，辛苦了", true),
    ("补丁打上了，感谢支持", true),
    ("已经正常了，谢谢老师", true),
    ("测试通过，可以关单", true),
    ("之前一直失败的补丁，今天终于装好了", true),
    ("搞定了！", true),
    ("问题已修复，请关闭案例", true),
    ("如上所述，问题已解决", true),
    ("用户反馈再也没有出现过这个错误", true),
    // Traditional: confirmed.
    ("問題解決了，謝謝", true),
    ("已經可以正常安裝了", true),
    ("補丁裝上了", true),
    ("重開機後就沒問題了", true),
    ("問題沒有再出現", true),
    ("更新已安裝成功", true),
    ("可以關閉案例了", true),
    ("已恢復正常，感謝協助", true),
    ("可以結案", true),
    ("修補程式已安裝成功", true),
    // English: confirmed.
    ("The update installed fine after the reboot.", true),
    ("All good now, thanks!", true),
    ("You can close it.", true),
    ("It works now.", true),
    ("Problem solved, thank you.", true),
    ("The patch installed successfully on all servers.", true),
    ("That did the trick.", true),
    ("The error no longer appears.", true),
    ("It hasn't come back since Monday.", true),
    ("Feel free to close the case.", true),
    ("Issue resolved.", true),
    ("We're good, please close the ticket.", true),
    ("KB5034441 is installed now and working fine.", true),
    ("Confirmed: install succeeded on the second try.", true),
    ("After running DISM the issue is fixed.", true),
    // Simplified: not confirmed.
    ("还是没有解决", false),
    ("是否已经解决？", false),
    ("问题没有解决，情况依旧", false),
    ("仍未解决", false),
    ("安装还是失败，错误 0x800f0922", false),
    ("补丁还是装不上", false),
    ("问题依旧", false),
    ("没有安装成功", false),
    ("未能安装成功，日志见附件", false),
    ("问题解决了吗？", false),
    ("重启后又出现了同样的错误", false),
    ("请先不要关闭案例，我们还在观察", false),
    ("如果解决了我会告诉您", false),
    ("等安装成功了再通知您", false),
    ("第一台装好了，第二台还是失败", false),
    ("昨天装好了，今天又报错了", false),
    ("请问这个问题怎么解决？", false),
    ("已上传日志，请帮忙分析", false),
    ("没问题，我明天上传日志", false),
    ("有没有可能是网络问题？", false),
    // Traditional: not confirmed.
    ("還是沒有解決", false),
    ("問題依舊", false),
    ("是否已經解決？", false),
    ("安裝還是失敗", false),
    ("請不要關閉案例", false),
    ("尚未解決", false),
    // English: not confirmed.
    ("Not resolved yet.", false),
    ("The update still fails with 0x80070643.", false),
    ("Is it resolved?", false),
    ("Has it been fixed on your side?", false),
    ("It didn't install.", false),
    ("The issue is not fixed.", false),
    ("Still unresolved.", false),
    ("It doesn't work.", false),
    ("No luck, same error.", false),
    ("Please don't close the case yet.", false),
    ("The error came back after the reboot.", false),
    ("It failed again last night.", false),
    ("We are still seeing the same error.", false),
    ("The problem persists.", false),
    ("I'll let you know once it works.", false),
    ("If it is resolved, I will close it myself.", false),
    ("Hopefully it works now.", false),
    (
        "It installed fine on one server but still fails on the other.",
        false,
    ),
];

#[test]
fn customers_confirm_the_fix_in_many_ways_and_deny_it_in_more() {
    assert!(CUSTOMER.len() >= 80, "{} phrasings", CUSTOMER.len());
    let phrases = default_resolution_phrases();
    let wrong: Vec<String> = CUSTOMER
        .iter()
        .filter(|(text, confirms)| resolution_phrase(text, &phrases).is_some() != *confirms)
        .map(|(text, confirms)| {
            format!(
                "{text:?}: expected {confirms}, matched {:?}",
                resolution_phrase(text, &phrases)
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_desk_closes_with_a_summary_not_with_a_question_or_a_warning() {
    let phrases = default_closure_phrases();
    for (text, closes) in [
        ("案例总结\n问题描述：KB5034441 安装失败\n问题分析：…", true),
        ("客户确认问题已解决，我们将关闭此案例。", true),
        (
            "Case summary: the update failed because the recovery partition was too small.",
            true,
        ),
        ("As you confirmed, we will close this case.", true),
        ("案例總結：…", true),
        ("请问是否可以关闭此案例？", false),
        ("如果三天内没有回复，我们将关闭此案例。", false),
        (
            "If we do not hear from you, we will close the case on Friday.",
            false,
        ),
        ("Can we close this case?", false),
        ("请上传 CBS.log", false),
    ] {
        assert_eq!(closure_phrase(text, &phrases).is_some(), closes, "{text}");
    }
}
