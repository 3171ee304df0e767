//! Order-keeping parallel map for CPU-bound batch work (parsing a batch of
//! mails, analysing a batch of logs): the items are cut into one run per
//! core and mapped on scoped threads. Callers run it on a blocking thread.

/// Maps `items` with `f` on every core, keeping their order. A panic in `f`
/// is re-raised here, never turned into a shorter result: a mail must not
/// vanish because a thread died.
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if threads < 2 || items.len() < 2 {
        return items.into_iter().map(f).collect();
    }
    let run = items.len().div_ceil(threads);
    let mut runs: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut iter = items.into_iter().peekable();
    while iter.peek().is_some() {
        runs.push(iter.by_ref().take(run).collect());
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|run| scope.spawn(move || run.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_every_item() {
        let out = super::map((0..1001).collect(), |i: u32| i * 2);
        assert_eq!(out, (0..1001).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_panic_is_not_a_shorter_result() {
        let caught = std::panic::catch_unwind(|| {
            super::map((0..100).collect(), |i: u32| {
                assert!(i != 77, "item 77");
                i
            })
        });
        assert!(caught.is_err());
    }
}
