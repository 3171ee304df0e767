//! `casebot search`: the full-text search of the desk on the command line.

use std::sync::Arc;

use anyhow::anyhow;

use super::desk::parse_instant;
use super::{Failure, SearchArgs, fail, open_store, output};
use crate::config::Config;
use casebot_store::search::{SearchHit, SearchRequest};

pub async fn search_cmd(config: &Arc<Config>, args: SearchArgs) -> Result<u8, Failure> {
    let tz: chrono_tz::Tz = config
        .desk
        .time_zone
        .parse()
        .map_err(|_| fail(2, anyhow!("[desk] time_zone is not a time zone")))?;
    let instant = |text: &Option<String>| -> Result<Option<i64>, Failure> {
        text.as_deref()
            .map(|t| parse_instant(t, tz).map(|i| i.timestamp()))
            .transpose()
    };
    let store = open_store(config).await?;
    // An account's cases are owned by its name or its address.
    let owners = match args.owner.as_deref() {
        None => Vec::new(),
        Some(owner) => match store.user_for_owner(owner).await? {
            Some(user) => std::iter::once(user.name).chain(user.email).collect(),
            None => vec![owner.to_string()],
        },
    };
    let request = SearchRequest {
        text: args.words.join(" "),
        status: args.status,
        owners,
        priority: args.priority,
        customer: args.customer,
        from: instant(&args.since)?,
        until: instant(&args.before)?,
        limit: args.limit,
    };
    let Some(hits) = store.search(&request).await? else {
        return Err(fail(
            2,
            anyhow!("nothing to search for in {:?}", request.text),
        ));
    };
    if args.json {
        output::json(&hits)?;
    } else {
        print_hits(&hits);
    }
    Ok(0)
}

fn print_hits(hits: &[SearchHit]) {
    if hits.is_empty() {
        println!("no case matches");
        return;
    }
    for h in hits {
        println!(
            "{:<18} {:<3} {:<20} {}",
            h.case_key,
            h.priority.as_deref().unwrap_or("-"),
            h.status,
            output::short(h.title.as_deref().unwrap_or(""), 60)
        );
        if let Some(s) = &h.snippet {
            // The match between » «, so it shows without colour too.
            println!("    {}»{}«{}", s.before, s.hit, s.after);
        }
    }
}
