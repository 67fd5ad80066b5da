//! POS handlers.

use super::{Params, only_params};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::input::parse_object;
use crate::services::{pos, refund as refunds};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::Value;

const POS_ROLES: &[Role] = &[Role::Admin, Role::Pos];

async fn run(state: AppState, auth: Auth, body: Bytes, mode: pos::Mode) -> ApiResult<Json<Value>> {
    auth.require(POS_ROLES)?;
    let req = pos::parse(&auth, parse_object(&body)?)?;
    pos::run(&state, &auth, req, mode).await.map(Json)
}

pub async fn quote(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    run(s, auth, body, pos::Mode::Quote).await
}

pub async fn reserve(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    run(s, auth, body, pos::Mode::Reserve).await
}

pub async fn checkout(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    run(s, auth, body, pos::Mode::Checkout).await
}

pub async fn cancel(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    auth.require(POS_ROLES)?;
    let req = pos::parse_cancel(&auth, parse_object(&body)?)?;
    pos::cancel(&s, &auth, req).await.map(Json)
}

pub async fn refund(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    auth.require(POS_ROLES)?;
    let req = refunds::parse(&auth, parse_object(&body)?)?;
    refunds::refund(&s, &auth, req).await.map(Json)
}

pub async fn receipt(State(s): State<AppState>, auth: Auth, Path(receipt_id): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    only_params(&q, &["till_id", "store_id"])?;
    let store = q.get("store_id").cloned().filter(|s| !s.is_empty());
    let till = q.get("till_id").cloned();
    let (store, till) = match auth.role {
        Role::Analyst => (
            store.ok_or_else(|| ApiError::field("store_id", "is required for a key that is not bound to a store"))?,
            till.unwrap_or_default(),
        ),
        Role::Admin => (
            store.ok_or_else(|| ApiError::field("store_id", "is required for a key that is not bound to a store"))?,
            till.unwrap_or_default(),
        ),
        Role::Pos => pos::bind_store(&auth, store, till)?,
    };
    pos::read(&s, &auth, &receipt_id, &till, &store).await.map(Json)
}
