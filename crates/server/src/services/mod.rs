//! Use cases. Each takes parsed input, runs one transaction (retried when the database
//! asks for it), and returns the answer or a business error.

pub mod accounts;
pub mod campaigns;
pub mod cards;
pub mod check;
pub mod checkout_batch;
pub mod demo;
pub mod enrol;
pub mod events;
pub mod group_commit;
pub mod import;
pub mod ledger;
pub mod members;
pub mod notify;
pub mod offers;
pub mod otp;
pub mod pos;
pub mod program;
pub mod redeem_auth;
pub mod refund;
pub mod rewards;
pub mod templates;

use crate::error::ApiError;
use kopilka_store::StoreError;
use std::future::Future;

/// Run `f` again while it fails with a retryable database error (serialisation failure,
/// deadlock, busy database, or a unique race that a second attempt resolves by reading).
pub async fn with_retry<T, F, Fut>(mut f: F) -> Result<T, ApiError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut attempt = 0u32;
    loop {
        match f(attempt).await {
            Ok(v) => return Ok(v),
            Err(Failure::Api(e)) => return Err(e),
            Err(Failure::Store(StoreError::Retry(m))) | Err(Failure::Store(StoreError::Unique(m))) if attempt < 8 => {
                tracing::debug!(attempt, cause = %m, "retrying transaction");
                metrics::counter!("kopilka_tx_retries_total").increment(1);
                let backoff_ms = 2u64 << attempt.min(6);
                tokio::time::sleep(std::time::Duration::from_millis(backoff_ms + (rand::random::<u64>() % backoff_ms))).await;
                attempt += 1;
            }
            Err(Failure::Store(e)) => return Err(e.into()),
        }
    }
}

/// A use case's failure: a finished answer for the client, or a database error that may
/// be retried.
#[derive(Debug)]
pub enum Failure {
    Api(ApiError),
    Store(StoreError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure::Api(ApiError::internal(e))
    }
}

pub type Fallible<T> = Result<T, Failure>;
