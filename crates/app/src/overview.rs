//! The read model of one case: what `casebot show` prints and the web
//! desk's case page shows (the thread, every analysis and the newest
//! conclusion, the drafts, similar closed cases). It reads; it changes
//! nothing.

use anyhow::Result;
use serde::Serialize;

use casebot_analysis::conclude::Conclusion;
use casebot_analysis::rules::RuleSet;
use casebot_core::domain::Lang;
use casebot_drafting::context::SimilarCase;
use casebot_drafting::knowledge;
use casebot_store::Store;
use casebot_store::analyses::AnalysisView;
use casebot_store::drafts::DraftRow;

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
}

/// Gathers a case's overview; `None` when there is no such case.
pub async fn case_overview(
    store: &Store,
    rules: &RuleSet,
    lang: Lang,
    key: &str,
) -> Result<Option<CaseOverview>> {
    let Some(detail) = store.case_detail(key).await? else {
        return Ok(None);
    };
    let analyses = store.case_analyses(detail.case.id).await?;
    let report =
        casebot_store::analyses::newest_conclusion(&analyses).and_then(|a| a.report.clone());
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
    Ok(Some(CaseOverview {
        detail,
        analyses,
        analysis: report.unwrap_or_default(),
        drafts,
        similar,
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
