//! The read model of one case: what `casebot show` prints and the web
//! desk's case page shows (a page of the thread with its analyses, the
//! newest conclusion, the drafts, similar closed cases). It reads; it
//! changes nothing. What it holds is bounded whatever the case: a page of
//! messages, the newest events, and reports whose file lists are cut at
//! [`MAX_VIEW_ITEMS`].

use anyhow::Result;
use serde::Serialize;

use casebot_analysis::conclude::Conclusion;
use casebot_analysis::rules::RuleSet;
use casebot_core::domain::Lang;
use casebot_drafting::context::SimilarCase;
use casebot_drafting::knowledge;
use casebot_store::Store;
use casebot_store::analyses::AnalysisView;
use casebot_store::cases::PageRequest;
use casebot_store::drafts::DraftRow;

/// Files listed per analysis report in a view (a bundle may list 20,000).
pub const MAX_VIEW_ITEMS: usize = 200;

/// Similar closed cases quoted in a reply or shown with a case.
const MAX_SIMILAR: usize = 3;

/// A case as `casebot show --json` and the web desk's case page present
/// it: the thread, every analysis and the newest conclusion, the drafts,
/// and the closed cases whose failure looks alike.
#[derive(Debug, Clone, Serialize)]
pub struct CaseOverview {
    #[serde(flatten)]
    pub detail: casebot_store::cases::CaseDetail,
    pub analyses: Vec<AnalysisView>,
    /// The newest conclusion's report, or null.
    pub analysis: serde_json::Value,
    pub drafts: Vec<casebot_store::drafts::DraftView>,
    pub similar: Vec<SimilarCase>,
    /// The desk's internal notes (the newest 200), never sent.
    pub notes: Vec<casebot_store::notes::NoteView>,
}

/// Gathers a case's overview; `None` when there is no such case.
pub async fn case_overview(
    store: &Store,
    rules: &RuleSet,
    lang: Lang,
    key: &str,
    page: PageRequest,
) -> Result<Option<CaseOverview>> {
    let Some(detail) = store.case_detail(key, page).await? else {
        return Ok(None);
    };
    let on_page: Vec<i64> = detail.messages.iter().map(|m| m.id).collect();
    let mut analyses = store.analyses_of_messages(detail.case.id, &on_page).await?;
    for a in &mut analyses {
        if let Some(report) = a.report.as_mut() {
            cut_items(report);
        }
    }
    let mut report = store
        .case_conclusion(detail.case.id)
        .await?
        .and_then(|a| a.report);
    if let Some(report) = report.as_mut() {
        cut_items(report);
    }
    let conclusion: Option<Conclusion> =
        report.clone().and_then(|r| serde_json::from_value(r).ok());
    let similar = match &conclusion {
        Some(c) => similar_cases(store, rules, c, detail.case.id, lang).await?,
        None => Vec::new(),
    };
    let drafts = store
        .list_drafts(&casebot_store::drafts::DraftFilter {
            case_row: Some(detail.case.id),
            ..Default::default()
        })
        .await?
        .iter()
        .map(DraftRow::view)
        .collect();
    let notes = store.case_notes(detail.case.id).await?;
    Ok(Some(CaseOverview {
        detail,
        analyses,
        analysis: report.unwrap_or_default(),
        drafts,
        similar,
        notes,
    }))
}

/// Closed cases (other than `case_row`) whose failure looks like
/// `conclusion`, best first, named in `lang`.
pub async fn similar_cases(
    store: &Store,
    rules: &RuleSet,
    conclusion: &Conclusion,
    case_row: i64,
    lang: Lang,
) -> Result<Vec<SimilarCase>> {
    let Some(sig) = knowledge::signature(conclusion) else {
        return Ok(Vec::new());
    };
    let mut scored: Vec<(u32, casebot_store::knowledge::KnowledgeEntry)> = store
        .knowledge_of_class(&sig.class)
        .await?
        .into_iter()
        .filter(|k| k.case_row != case_row)
        .map(|k| {
            let known = knowledge::Signature {
                class: k.class.clone(),
                rule: k.rule.clone(),
                codes: k.error_codes.clone(),
                component: k.component.clone(),
                package: k.package.clone(),
            };
            (knowledge::similarity(&known, &sig), k)
        })
        .filter(|(score, _)| *score >= knowledge::SIMILAR_AT)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.id.cmp(&a.1.id)));
    Ok(scored
        .into_iter()
        .take(MAX_SIMILAR)
        .map(|(_, k)| SimilarCase {
            class_name: rules
                .classes
                .get(&k.class)
                .map(|c| c.name.get(lang).to_string())
                .unwrap_or(k.class.clone()),
            case: k.case_key,
            resolution: k.resolution.replace('\n', " "),
        })
        .collect())
}

/// Cuts a report's file list to [`MAX_VIEW_ITEMS`], saying how many there
/// were (`items_total`).
fn cut_items(report: &mut serde_json::Value) {
    let Some(items) = report.get_mut("items").and_then(|i| i.as_array_mut()) else {
        return;
    };
    let total = items.len();
    if total > MAX_VIEW_ITEMS {
        items.truncate(MAX_VIEW_ITEMS);
        report["items_total"] = serde_json::Value::from(total);
    }
}
