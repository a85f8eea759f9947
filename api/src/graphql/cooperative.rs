//! Yield points in an execution that never waits on anything.
//!
//! The read models answer synchronously, so a query of many fields runs
//! to its end in one poll and the request timeout (a deadline around the
//! request's future) could not end it: a probe's 22 s query answered 200.
//! [`Cooperative`] spends one unit of the task's Tokio budget per field
//! resolved and yields once the budget is gone (every 128 fields), so the
//! deadline is checked as the execution goes and other tasks on the same
//! worker get their turn. A mutation cut off this way is answered as the
//! timeout says (it may have been recorded; retry with the same
//! `commandId`), as a cut-off write already was.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value};

/// The extension that makes every field resolution a yield point once
/// the task's budget is spent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cooperative;

impl ExtensionFactory for Cooperative {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CooperativeResolve)
    }
}

struct CooperativeResolve;

#[async_trait::async_trait]
impl Extension for CooperativeResolve {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        tokio::task::coop::consume_budget().await;
        next.run(ctx, info).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::GraphqlLimits;

    /// A thousand root fields, none of which waits on anything, are cut
    /// off by a deadline that has passed; without the yield points the
    /// execution finished in its first poll, whatever the deadline.
    #[tokio::test]
    async fn a_long_execution_can_be_cut_off_by_a_deadline() {
        let fields: Vec<String> = (0..1_000)
            .map(|i| format!("a{i}: me {{ tenant }}"))
            .collect();
        let query = format!("{{ {} }}", fields.join(" "));
        let schema = super::super::build(None, &GraphqlLimits::default());
        let ran = tokio::time::timeout(Duration::ZERO, schema.execute(query.as_str())).await;
        assert!(ran.is_err(), "the execution ran to its end in one poll");
        // The same execution, given time, finishes.
        let ran =
            tokio::time::timeout(Duration::from_secs(60), schema.execute(query.as_str())).await;
        assert!(ran.is_ok());
    }
}
